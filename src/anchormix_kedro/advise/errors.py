"""The error of ``anchormix advise``: a problem with the user's input, shown as one line."""

from __future__ import annotations


class CliError(Exception):
    """A problem with the user's input; its message is shown as one line, without traceback."""
