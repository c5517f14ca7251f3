"""`anchormix advise`: gain advice for your own stems.

    anchormix advise SONG [--anchor drums] [--genre GENRE] [--stem GROUP=FILE ...]
                          [--model ADAPTER_OR_MLFLOW_URI] [--decoding {median,greedy}]
                          [--json] [--verbose]

SONG is a folder of stem files or session tracks (mapped to MUSDB18's four stems by their
names, see :mod:`.session`) or a Native Instruments ``.stem.mp4``. For every stem other
than the anchor it measures the stem's loudness relative to the anchor in a few windows
spread across the song where both play, and places it among the professional mixes of
MUSDB18 (percentile, usual range, graded verdict); with ``--model`` a fine-tuned model's
advice is shown beside the measurement, disagreements marked.

Errors are one line on stderr (``anchormix: error: ...``) and exit status 2; warnings go
to stderr (and into the ``warnings`` list of ``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from pathlib import Path

from tqdm import tqdm

from anchormix_kedro.advise.analysis import (
    analyse,
    match_genre,
)
from anchormix_kedro.advise.model_advice import load_model_advisor
from anchormix_kedro.advise.printable import printable
from anchormix_kedro.advise.quiet import library_output
from anchormix_kedro.advise.render import render_text
from anchormix_kedro.advise.session import (
    DEFAULT_STEM_WORDS,
    parse_stem_override,
    read_stem_words,
)
from anchormix_kedro.advise.songs import (
    load_song,
)
from anchormix_kedro.errors import CliError
from anchormix_kedro.evaluation.dsp_baseline import shipped_conventions
from anchormix_kedro.evaluation.professional_range import (
    RANGE_MIN_SONGS,
    Bands,
    shipped_levels,
)
from anchormix_kedro.instruction_data.conventions import ALL_GENRES
from anchormix_kedro.instruction_data.excerpts import ExcerptSettings
from anchormix_kedro.instruction_data.musdb import UNKNOWN_GENRE, genre_of, shipped_genres
from anchormix_kedro.vocabulary import BALANCED_TOLERANCE_DB

PROG = "anchormix"


# --------------------------------------------------------------------------- command


#: The analysed windows' length without a model (long enough for a stable loudness).
DSP_WINDOW_SECONDS = 10.0
#: Window lengths accepted: a second (a stable loudness) to a day (longer is the whole song).
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 1.0, 86400.0


def _window_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and MIN_WINDOW_SECONDS <= value <= MAX_WINDOW_SECONDS):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds from {MIN_WINDOW_SECONDS:g} to "
            f"{MAX_WINDOW_SECONDS:g} (a day), got {text!r}"
        )
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


def _percentiles(text: str) -> tuple[float, float]:
    low, separator, high = text.partition(",")
    try:
        values = (float(low), float(high))
    except ValueError:
        values = None
    if not separator or values is None or not (0 < values[0] < values[1] < 100):
        raise argparse.ArgumentTypeError(
            f"expected LOW,HIGH percentiles between 0 and 100 (e.g. 10,90), got {text!r}"
        )
    return values


def known_genres() -> list[str]:
    """The genres with shipped conventions (without ``all``), for --help and messages."""
    return sorted(set(shipped_conventions()["genre"]) - {ALL_GENRES})


def add_commands(commands) -> None:
    """The ``advise`` command, on the ``anchormix`` parser."""
    command = commands.add_parser(
        "advise",
        help="gain advice for the stems of one song",
        description=(
            "Measure every stem's loudness relative to the anchor where both play, place it "
            "among professional mixes (percentile and usual range) and say whether it is "
            "within the usual range, on the loud or quiet side, or too loud or too soft, and "
            "which fader move brings it back."
        ),
    )
    command.add_argument(
        "song",
        metavar="SONG",
        type=Path,
        help="a folder of stems or session tracks (wav, flac, mp3, ogg, m4a; e.g. vocals.wav "
        "or 'Lead Vox.wav', 'Kick.wav') or an NI .stem.mp4",
    )
    command.add_argument("--anchor", default="drums", help="the anchor stem (default: drums)")
    command.add_argument(
        "--genre",
        help=f"the song's genre, one of: {', '.join(known_genres())} (case does not matter; "
        "default: from MUSDB18's track list when the song is in it, else all genres)",
    )
    command.add_argument(
        "--stem",
        metavar="GROUP=FILE",
        action="append",
        type=parse_stem_override,
        default=[],
        help="put FILE of the song folder in stem GROUP (drums, bass, other, vocals), e.g. "
        '--stem vocals="Lead Vox.wav"; repeatable',
    )
    command.add_argument(
        "--stem-words",
        metavar="YAML",
        type=Path,
        help="extra words naming each stem group in file names ({vocals: [leadvox], ...})",
    )
    command.add_argument(
        "--usual-percentiles",
        type=_percentiles,
        default=(25.0, 75.0),
        metavar="LOW,HIGH",
        help="the usual range of professional mixes (default: 25,75)",
    )
    command.add_argument(
        "--outer-percentiles",
        type=_percentiles,
        default=(10.0, 90.0),
        metavar="LOW,HIGH",
        help="beyond these a stem is too loud or too soft (default: 10,90)",
    )
    command.add_argument(
        "--genre-ranges",
        action="store_true",
        help=f"use the genre's own mixes for a pair when it has at least {RANGE_MIN_SONGS} "
        "songs (default: the mixes of every genre; see docs/cli.md)",
    )
    command.add_argument(
        "--model",
        metavar="ADAPTER_OR_MLFLOW_URI",
        help="also ask a fine-tuned adapter: a local directory or runs:/..., models:/..., "
        "mlflow-artifacts:/... (its advice is shown beside the measurement)",
    )
    command.add_argument(
        "--decoding",
        choices=("median", "greedy"),
        default="median",
        help="with --model: how the model words its advice; median states the middle of its "
        "belief over every sentence it was taught, greedy its likeliest word at each step "
        "(default: median; see docs/recipes.md)",
    )
    command.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI for --model URIs (default: MLFLOW_TRACKING_URI or MLflow's)",
    )
    command.add_argument(
        "--json", action="store_true", help="print one machine-readable JSON object"
    )
    command.add_argument(
        "--verbose",
        action="store_true",
        help="show the machine-learning libraries' own warnings and progress (with --model)",
    )
    command.add_argument(
        "--window-seconds",
        type=_window_seconds,
        default=None,
        help="length of each analysed window (default: what the --model hears, e.g. 5 s for "
        "the tiny model and 30 s for Qwen2-Audio; 10 without --model)",
    )
    command.add_argument(
        "--windows",
        type=_positive_int,
        default=3,
        help="how many windows across the song (default: 3)",
    )
    command.add_argument(
        "--tolerance-db",
        type=_tolerance,
        default=BALANCED_TOLERANCE_DB,
        help="with --model: a model's move within ±this is balanced when it states no verdict "
        f"(default: {BALANCED_TOLERANCE_DB})",
    )
    command.set_defaults(handler=advise)


def choose_genre(asked: str | None, song_name: str) -> tuple[str, str, str | None]:
    """``(genre, where it came from, warning)``: ``--genre``, MUSDB18's track list, or all."""
    genres = sorted(set(shipped_conventions()["genre"]))
    if asked is not None:
        genre, warning = match_genre(asked, genres)
        return genre, "--genre", warning
    listed = genre_of(song_name, shipped_genres())
    if listed == UNKNOWN_GENRE:
        return ALL_GENRES, "default", None
    genre, warning = match_genre(listed, genres)
    if warning:
        warning = f"{song_name} is a MUSDB18 {listed} song: {warning}"
    return genre, "MUSDB18 track list", warning


def advise(args: argparse.Namespace) -> int:
    """Run ``anchormix advise``; returns the exit status.

    File names in messages and in the text report are escaped for the terminal
    (:func:`.printable.printable`); the JSON keeps them as they are (JSON escapes them)."""
    try:
        return _advise(args)
    except CliError as exc:
        raise CliError(printable(str(exc))) from None


def _advise(args: argparse.Namespace) -> int:
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        # tqdm.write keeps a running progress bar intact below the message.
        tqdm.write(f"{PROG}: warning: {printable(message)}", file=sys.stderr)

    try:
        bands = Bands(usual=args.usual_percentiles, outer=args.outer_percentiles)
    except ValueError as exc:
        raise CliError(f"--usual-percentiles and --outer-percentiles: {exc}") from None
    stem_words = read_stem_words(args.stem_words) if args.stem_words else DEFAULT_STEM_WORDS
    # Load the model first: a bad --model should fail before minutes of decoding.
    advisor = None
    if args.model:
        with library_output(args.verbose, capture_stderr=True) as printed:
            try:
                advisor = load_model_advisor(args.model, args.tracking_uri, args.decoding)
            except CliError:
                sys.stderr.write(printed.getvalue())  # what the libraries said may explain it
                raise
    song = load_song(
        args.song, warn, args.stem, stem_words, progress=not args.json and sys.stderr.isatty()
    )
    anchor = args.anchor.strip().lower()
    if anchor not in song.stems:
        raise CliError(
            f"{args.song}: no stem named '{args.anchor}'; stems found: "
            f"{', '.join(sorted(song.stems))} (choose the anchor with --anchor, or map a "
            "file to it with --stem)"
        )
    if len(song.stems) < 2:
        raise CliError(f"{args.song}: only one stem ({anchor}); need the anchor and another stem")
    if song.seconds < 0.4:
        raise CliError(
            f"{args.song}: {song.seconds:.2f} s of audio; need at least 0.4 s to measure loudness"
        )
    genre, genre_source, genre_warning = choose_genre(args.genre, song.name)
    if genre_warning:
        warn(genre_warning)
    if args.window_seconds is None:
        args.window_seconds = advisor.listening_seconds if advisor else DSP_WINDOW_SECONDS
    elif advisor and args.window_seconds > advisor.listening_seconds:
        warn(
            f"the model hears {advisor.listening_seconds:g} s of each {args.window_seconds:g} s "
            "window while the levels are measured on all of it; leave --window-seconds out "
            "to use the model's window"
        )
    settings = ExcerptSettings(seconds=args.window_seconds)
    levels = shipped_levels(RANGE_MIN_SONGS if args.genre_ranges else None)
    with library_output(args.verbose or advisor is None):
        reports = analyse(
            song,
            anchor,
            genre,
            settings,
            args.windows,
            levels,
            bands,
            warn,
            advisor=advisor,
            tolerance_db=args.tolerance_db,
            progress=not args.json and sys.stderr.isatty(),
        )
    result = {
        "song": song.name,
        "anchor": anchor,
        "genre": genre,
        "genre_source": genre_source,
        "model": args.model,
        "usual_percentiles": list(bands.usual),
        "outer_percentiles": list(bands.outer),
        "sample_rate": song.sample_rate,
        "seconds": round(song.seconds, 2),
        "window_seconds": args.window_seconds,
        "tolerance_db": args.tolerance_db,
        "files": song.files,
        "stem_files": song.sources,
        "not_stems": song.not_stems,
        "targets": [r.as_dict() for r in reports],
        "warnings": warnings,
    }
    if args.json:
        text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
        if not text.isascii() and not _encodable(text, sys.stdout):
            # A file name that is not UTF-8: JSON's \u escapes keep it exactly.
            text = json.dumps(result, indent=2) + "\n"
        write_output(text)
    else:
        write_output(render_text(result))
    return 0


def _encodable(text: str, stream) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_output(text: str) -> None:
    """Write the report to stdout; a full disk or a closed pipe is one line, not a traceback.

    After a failure stdout is pointed at ``/dev/null`` so that Python's own flush at exit
    does not fail a second time with a traceback. A terminal that cannot show a character
    of a file name (``PYTHONIOENCODING=ascii``) gets it as an escape."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    if not _encodable(text, sys.stdout):
        text = text.encode(encoding, "backslashreplace").decode(encoding)
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        if isinstance(exc, BrokenPipeError):
            raise CliError("the standard output was closed before the report was written") from None
        raise CliError(
            f"cannot write the report to the standard output ({exc}); free some space or "
            "write elsewhere"
        ) from None
