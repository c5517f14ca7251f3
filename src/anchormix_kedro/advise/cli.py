"""The ``anchormix`` command: gain advice for your own stems.

    anchormix advise SONG [--anchor drums] [--genre GENRE] [--model ADAPTER_OR_MLFLOW_URI] [--json]

SONG is a folder of stem files (one per stem, named by the file: ``vocals.wav``) or a
Native Instruments ``.stem.mp4``. For every stem other than the anchor it measures the
stem's loudness relative to the anchor in a few windows spread across the song where both
play, and judges it with the DSP baseline against the shipped genre conventions, or with a
fine-tuned model (``--model``).

Errors are one line on stderr (``anchormix: error: ...``) and exit status 2; warnings go
to stderr (and into the ``warnings`` list of ``--json``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from anchormix_kedro import __version__
from anchormix_kedro.advise.analysis import (
    NOT_TOGETHER,
    TargetReport,
    analyse,
    best_window,
    choose_windows,
    match_genre,
    plan_windows,
    stem_activity,
)
from anchormix_kedro.advise.errors import CliError
from anchormix_kedro.advise.model_advice import MLFLOW_URI_SCHEMES, load_model_advisor
from anchormix_kedro.advise.render import format_fader_move, render_text
from anchormix_kedro.advise.songs import (
    AUDIO_EXTENSIONS,
    LENGTH_TOLERANCE_S,
    NOT_STEMS,
    Song,
    load_song,
)
from anchormix_kedro.evaluation.dsp_baseline import shipped_conventions
from anchormix_kedro.instruction_data.excerpts import ExcerptSettings
from anchormix_kedro.vocabulary import BALANCED_TOLERANCE_DB, DSP_BASELINE

# The command's pieces live in songs, analysis, model_advice and render; they stay importable
# from here, where scripts and tests have always found them.
__all__ = [
    "AUDIO_EXTENSIONS",
    "EXIT_ERROR",
    "LENGTH_TOLERANCE_S",
    "MLFLOW_URI_SCHEMES",
    "NOT_STEMS",
    "NOT_TOGETHER",
    "PROG",
    "CliError",
    "Song",
    "TargetReport",
    "advise",
    "analyse",
    "best_window",
    "build_parser",
    "choose_windows",
    "format_fader_move",
    "load_model_advisor",
    "load_song",
    "main",
    "match_genre",
    "plan_windows",
    "render_text",
    "stem_activity",
]

PROG = "anchormix"
EXIT_ERROR = 2


# --------------------------------------------------------------------------- command


def _window_seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 1.0):
        raise argparse.ArgumentTypeError(f"must be at least 1 s, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _tolerance(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of dB, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="AnchorMix: anchor-conditioned gain-balancing advice."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    advise = commands.add_parser(
        "advise",
        help="gain advice for the stems of one song",
        description=(
            "Measure every stem's loudness relative to the anchor where both play and say "
            "whether it is too loud, too soft or balanced, and which fader move fixes it."
        ),
    )
    advise.add_argument(
        "song",
        metavar="SONG",
        type=Path,
        help="a folder of stem files (wav, flac, mp3, ogg, m4a; the stem is the file name) "
        "or an NI .stem.mp4",
    )
    advise.add_argument("--anchor", default="drums", help="the anchor stem (default: drums)")
    advise.add_argument("--genre", help="use this genre's conventions (default: all genres pooled)")
    advise.add_argument(
        "--model",
        metavar="ADAPTER_OR_MLFLOW_URI",
        help="a fine-tuned adapter: a local directory or runs:/..., models:/..., "
        "mlflow-artifacts:/... (default: the DSP baseline)",
    )
    advise.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI for --model URIs (default: MLFLOW_TRACKING_URI or MLflow's)",
    )
    advise.add_argument(
        "--json", action="store_true", help="print one machine-readable JSON object"
    )
    advise.add_argument(
        "--window-seconds",
        type=_window_seconds,
        default=10.0,
        help="length of each analysed window (default: 10)",
    )
    advise.add_argument(
        "--windows",
        type=_positive_int,
        default=3,
        help="how many windows across the song (default: 3)",
    )
    advise.add_argument(
        "--tolerance-db",
        type=_tolerance,
        default=BALANCED_TOLERANCE_DB,
        help=f"within ±this of the convention is balanced (default: {BALANCED_TOLERANCE_DB})",
    )
    return parser


def advise(args: argparse.Namespace) -> int:
    """Run ``anchormix advise``; returns the exit status."""
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        # tqdm.write keeps a running progress bar intact below the message.
        tqdm.write(f"{PROG}: warning: {message}", file=sys.stderr)

    # Load the model first: a bad --model should fail before minutes of decoding.
    advisor = load_model_advisor(args.model, args.tracking_uri) if args.model else None
    song = load_song(args.song, warn)
    anchor = args.anchor.strip().lower()
    if anchor not in song.stems:
        raise CliError(
            f"{args.song}: no stem named '{args.anchor}'; stems found: "
            f"{', '.join(sorted(song.stems))} (choose the anchor with --anchor)"
        )
    if len(song.stems) < 2:
        raise CliError(f"{args.song}: only one stem ({anchor}); need the anchor and another stem")
    if song.seconds < 0.4:
        raise CliError(
            f"{args.song}: {song.seconds:.2f} s of audio; need at least 0.4 s to measure loudness"
        )
    conventions_genres = sorted(set(shipped_conventions()["genre"]))
    genre, genre_warning = match_genre(args.genre, conventions_genres)
    if genre_warning:
        warn(genre_warning)
    settings = ExcerptSettings(seconds=args.window_seconds)
    reports = analyse(
        song,
        anchor,
        genre,
        settings,
        args.windows,
        args.tolerance_db,
        warn,
        advisor=advisor,
        progress=not args.json and sys.stderr.isatty(),
    )
    result = {
        "song": song.name,
        "anchor": anchor,
        "genre": genre,
        "model": args.model or DSP_BASELINE,
        "sample_rate": song.sample_rate,
        "seconds": round(song.seconds, 2),
        "window_seconds": args.window_seconds,
        "tolerance_db": args.tolerance_db,
        "files": song.files,
        "targets": [r.as_dict() for r in reports],
        "warnings": warnings,
    }
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``anchormix`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on usage errors
        return int(exc.code or 0)
    try:
        if args.command == "advise":
            return advise(args)
    except CliError as exc:
        one_line = " ".join(str(exc).split())  # FFmpeg messages can span lines
        sys.stderr.write(f"{PROG}: error: {one_line}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    return EXIT_ERROR  # argparse accepts only known commands
