"""The error every ``anchormix`` command raises for a problem with the user's input."""

from __future__ import annotations


class CliError(Exception):
    """A problem with the user's input; its message is shown as one line, without traceback."""
