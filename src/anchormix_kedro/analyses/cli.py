"""``anchormix analyse NAME``: the analyses the documentation cites as evidence.

Each reads what a run of the project wrote, through its Kedro catalog (``--project``,
default the current folder, in environment ``--env``), or MUSDB18 itself, and writes its
tables and figures to ``data/08_reporting/analyses/NAME/`` (the ``data_root`` global's
folder). A missing input is one line that says what to run first.

    belief-separation     what any decision rule on a package's belief can reach
    seed-ensemble         the averaged belief of packages trained with other seeds
    level-measures        how far each anchor-level measure sits from BS.1770 loudness
    verdict-stability     does ``advise --model`` judge the balance or the session level
    verdict-tradeoff      the outer band of ``advise``'s verdict on held-out songs
    wording-policy        how much of a text metric one optional sentence earns
    shipped-conventions   measure the genre conventions and levels shipped with the package

Heavy libraries are imported by the handlers, when an analysis runs.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path


def _lazy_handler(name: str):
    """The handler of analysis ``name``: its module (``belief-separation`` ->
    :mod:`.belief_separation`) is imported when it runs, with its heavy libraries."""

    def handler(args) -> int:
        module = importlib.import_module(f"anchormix_kedro.analyses.{name.replace('-', '_')}")
        return module.command(args)

    return handler


def add_commands(commands) -> None:
    """The ``analyse`` command and its analyses, on the ``anchormix`` parser."""
    analyse = commands.add_parser(
        "analyse",
        help="the analyses the docs cite: belief-separation, seed-ensemble, level-measures, "
        "verdict-stability, verdict-tradeoff, wording-policy, shipped-conventions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    names = analyse.add_subparsers(dest="analysis", required=True, metavar="NAME")

    project = argparse.ArgumentParser(add_help=False)
    project.add_argument(
        "--project",
        type=Path,
        default=None,
        metavar="DIR",
        help="the Kedro project (default: the current folder)",
    )
    run = argparse.ArgumentParser(add_help=False, parents=[project])
    run.add_argument("--env", help="Kedro configuration environment (default: local)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="folder for the outputs (default: data/08_reporting/analyses/NAME)",
    )
    musdb = argparse.ArgumentParser(add_help=False)
    musdb.add_argument(
        "--musdb-root",
        type=Path,
        metavar="DIR",
        help="a MUSDB18 root (default: the project's musdb_root, MUSDB_PATH)",
    )

    def analysis(name: str, parents: list, help_text: str) -> argparse.ArgumentParser:
        parser = names.add_parser(name, parents=parents, help=help_text, description=help_text)
        parser.set_defaults(handler=_lazy_handler(name))
        return parser

    split = argparse.ArgumentParser(add_help=False)
    split.add_argument("--split", default="valid", help="valid (default) or test")
    split.add_argument("--variant", default="advisor", help="the package's variant (advisor)")

    analysis(
        "belief-separation",
        [run, split, output],
        "How well a package's belief tells a balanced target from a clear imbalance: the "
        "trade-off of any threshold on its direction certainty (table and plot).",
    )
    ensemble = analysis(
        "seed-ensemble",
        [run, split, output],
        "What averaging the beliefs of packages trained with other seeds reaches: every "
        "member and their mixture, scored on the split (outputs in --project's data).",
    )
    ensemble.add_argument(
        "--member",
        type=Path,
        action="append",
        metavar="PROJECT_DIR",
        help="a project whose run trained one member; repeat for each (at least two)",
    )
    levels = analysis(
        "level-measures",
        [run, output],
        "How far each anchor-level measure read off the log-mel frames sits from the "
        "stems' BS.1770 loudness, per stem and per anchor-to-target relation.",
    )
    levels.add_argument("--anchor", default="drums", help="the stem the others are set against")
    stability = analysis(
        "verdict-stability",
        [run, output],
        "Does `anchormix advise --model` judge the balance or the session's level: its "
        "verdicts on test songs at other session levels against those as delivered.",
    )
    stability.add_argument(
        "--model", help="a package folder or models:/ URI (default: the run's latest --variant)"
    )
    stability.add_argument("--variant", default="advisor", help="the package's variant (advisor)")
    stability.add_argument(
        "--musdb", type=Path, metavar="DIR", help="a MUSDB18 root (default: MUSDB_PATH)"
    )
    stability.add_argument("--songs", type=int, default=8, help="test songs used (the first 8)")
    stability.add_argument(
        "--gains", type=float, nargs="+", default=[-12.0, 6.0], help="session gains (-12 6)"
    )
    stability.add_argument("--anchors", nargs="+", default=["drums"], help="anchors (drums)")
    tradeoff = analysis(
        "verdict-tradeoff",
        [project, musdb, output],
        "The trade-off of the outer band of `anchormix advise`'s verdict on MUSDB18 songs "
        "not used for the percentiles (tables and plot).",
    )
    tradeoff.add_argument("--plot", type=Path, help="where to write the plot (default: --output)")
    tradeoff.add_argument(
        "--genre-ranges",
        action="store_true",
        help="a genre's own range where it has enough songs for a pair (as anchormix advise "
        "--genre-ranges); default: every genre's songs",
    )
    analysis(
        "wording-policy",
        [run, output],
        "How much of each text metric the optional sentence (the genre convention) earns: "
        "each system's advice as written, the same judgements without it, and the cores.",
    )
    shipped = analysis(
        "shipped-conventions",
        [project, musdb],
        "Measure the genre conventions and professional levels shipped with the package "
        "on MUSDB18's training songs, with the project's base configuration.",
    )
    shipped.add_argument(
        "--output",
        type=Path,
        metavar="FILE",
        help="the conventions' CSV (default: data/08_reporting/analyses/shipped-conventions/"
        "genre_conventions.csv)",
    )
    shipped.add_argument(
        "--levels-output",
        type=Path,
        metavar="FILE",
        help="the songs' levels' CSV (default: beside it, professional_levels.csv)",
    )
