"""The ``anchormix`` command: one parser, each wing adding its own subcommands.

    anchormix advise SONG ...        gain advice for the stems of one song (advise wing)
    anchormix study ACTION ...       the listening study (study wing)

Each wing's ``cli`` module offers ``add_commands(subparsers)`` and sets a ``handler`` on
its parsers; this module only builds the parser and turns a :class:`CliError` into one
line on stderr (``anchormix: error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from anchormix_kedro import __version__
from anchormix_kedro.advise import cli as advise_cli
from anchormix_kedro.analyses import cli as analyses_cli
from anchormix_kedro.errors import CliError
from anchormix_kedro.study import cli as study_cli

PROG = "anchormix"
EXIT_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="AnchorMix: anchor-conditioned gain-balancing advice."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    study_cli.add_commands(commands)
    advise_cli.add_commands(commands)
    analyses_cli.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``anchormix`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    try:
        return args.handler(args)
    except CliError as exc:
        one_line = " ".join(str(exc).split())  # FFmpeg messages can span lines
        sys.stderr.write(f"{PROG}: error: {one_line}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
