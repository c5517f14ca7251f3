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
import importlib
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from anchormix_kedro import __version__
from anchormix_kedro.evaluation.dsp_baseline import (
    DEFAULT_TOLERANCE_DB,
    DSP_BASELINE_ID,
    judge_pair,
    shipped_conventions,
)
from anchormix_kedro.instruction_data.audio import (
    AudioError,
    align_stems,
    check_finite,
    decode_stem_mp4,
    frame_rms_db,
    integrated_loudness,
    read_audio_file,
    resample,
)
from anchormix_kedro.instruction_data.conventions import (
    ALL_GENRES,
    convention_index,
    lookup_convention,
)
from anchormix_kedro.instruction_data.excerpts import (
    ACTIVE,
    FRAME_S,
    SILENT,
    ExcerptSettings,
    choose_excerpt_start,
)
from anchormix_kedro.instruction_data.musdb import MUSDB_STREAM_IDS, STEM_MP4_SUFFIX
from anchormix_kedro.vocabulary import STEM_NAMES, label_for_gain

PROG = "anchormix"
EXIT_ERROR = 2
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
#: Files of a song folder that are not stems.
NOT_STEMS = ("mixture",)
MLFLOW_URI_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")
#: Status of a target that never plays while the anchor does: nothing to compare, no advice.
NOT_TOGETHER = "not_together"
#: Resampling can leave stems a sample or two apart: only larger differences are reported.
LENGTH_TOLERANCE_S = 0.01
#: A genre's convention needs this many songs; fewer fall back to all genres (as templating).
CONVENTION_MIN_SONGS = 3


class CliError(Exception):
    """A problem with the user's input; its message is shown as one line, without traceback."""


# --------------------------------------------------------------------------- loading


@dataclass
class Song:
    """A song's stems, aligned: same rate, same length, ``(samples, channels)`` float32."""

    name: str
    stems: dict[str, np.ndarray]
    sample_rate: int
    files: dict[str, str]  # stem -> the file (or stream) it came from, for messages

    @property
    def seconds(self) -> float:
        return next(iter(self.stems.values())).shape[0] / self.sample_rate


def load_song(path: Path, warn: Callable[[str], None]) -> Song:
    """Load a folder of stem files or a ``.stem.mp4``; warnings are passed to ``warn``."""
    if not path.exists():
        raise CliError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_stem_folder(path, warn)
    if path.name.lower().endswith(STEM_MP4_SUFFIX):
        return _load_stem_mp4(path, warn)
    raise CliError(
        f"{path}: SONG must be a folder of stem files "
        f"({', '.join(AUDIO_EXTENSIONS)}) or an NI {STEM_MP4_SUFFIX} file"
    )


def _load_stem_mp4(path: Path, warn: Callable[[str], None]) -> Song:
    streams = {stem: MUSDB_STREAM_IDS[stem] for stem in STEM_NAMES}
    try:
        decoded, rate = decode_stem_mp4(path, streams)
        check_finite(decoded, str(path))
        aligned = align_stems(decoded, dict.fromkeys(decoded, rate), str(path), math.inf)
    except AudioError as exc:
        raise CliError(str(exc)) from None
    for note in aligned.warnings:
        warn(note)
    return Song(
        name=path.name[: -len(STEM_MP4_SUFFIX)],
        stems=aligned.stems,
        sample_rate=aligned.sample_rate,
        files={stem: f"{path.name} stream {sid}" for stem, sid in streams.items()},
    )


def _stem_files(folder: Path, warn: Callable[[str], None]) -> dict[str, Path]:
    """``{stem name: file}`` of a song folder; other files are listed in a warning."""
    files: dict[str, Path] = {}
    unsupported: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if entry.suffix.lower() not in AUDIO_EXTENSIONS:
            unsupported.append(entry.name)
            continue
        stem = entry.stem.lower()
        if stem in NOT_STEMS:
            continue
        if stem in files:
            raise CliError(
                f"{folder}: two files for stem '{stem}' ({files[stem].name}, {entry.name}); "
                "keep one"
            )
        files[stem] = entry
    if unsupported:
        warn(
            f"{folder}: ignored files that are not audio stems ({', '.join(unsupported)}); "
            f"stems are {', '.join(AUDIO_EXTENSIONS)} files"
        )
    if not files:
        raise CliError(
            f"{folder}: no stem files found; put one {'/'.join(AUDIO_EXTENSIONS)} file per stem "
            "in the folder (e.g. drums.wav, bass.wav, other.wav, vocals.wav)"
        )
    return files


def _load_stem_folder(folder: Path, warn: Callable[[str], None]) -> Song:
    files = _stem_files(folder, warn)
    stems: dict[str, np.ndarray] = {}
    rates: dict[str, int] = {}
    for stem, file in files.items():
        try:
            stems[stem], rates[stem] = read_audio_file(file)
        except AudioError as exc:
            raise CliError(str(exc)) from None
    rate = max(rates.values())
    if len(set(rates.values())) > 1:
        listing = ", ".join(f"{files[s].name} {r} Hz" for s, r in rates.items())
        resampled = [files[s].name for s, r in rates.items() if r != rate]
        warn(
            f"{folder}: stems have different sample rates ({listing}); "
            f"resampled {', '.join(resampled)} to {rate} Hz"
        )
        stems = {s: resample(d, rates[s], rate) for s, d in stems.items()}
    lengths = {s: d.shape[0] for s, d in stems.items()}
    shortest = min(lengths.values())
    if (max(lengths.values()) - shortest) / rate > LENGTH_TOLERANCE_S:
        listing = ", ".join(f"{files[s].name} {n / rate:.2f} s" for s, n in lengths.items())
        warn(
            f"{folder}: stems differ in length ({listing}); "
            f"all trimmed to the shortest, {shortest / rate:.2f} s"
        )
    stems = {s: d[:shortest] for s, d in stems.items()}
    try:
        check_finite(stems, str(folder))
        aligned = align_stems(stems, dict.fromkeys(stems, rate), str(folder), math.inf)
    except AudioError as exc:
        raise CliError(str(exc)) from None
    for note in aligned.warnings:
        warn(note)
    return Song(
        name=folder.resolve().name,
        stems=aligned.stems,
        sample_rate=rate,
        files={s: f.name for s, f in files.items()},
    )


# --------------------------------------------------------------------------- windows


def stem_activity(data: np.ndarray, sample_rate: int, settings: ExcerptSettings) -> np.ndarray:
    """Whether each 100 ms frame is playing (as the ingestion pipeline decides it)."""
    return frame_rms_db(data, sample_rate, FRAME_S) > settings.activity_threshold_dbfs


def choose_windows(
    anchor_active: np.ndarray,
    target_active: np.ndarray,
    window_frames: int,
    n_windows: int,
    hop_frames: int,
    min_together_fraction: float,
) -> list[tuple[int, int]]:
    """Up to ``n_windows`` non-overlapping windows (frame ranges) where both stems play.

    The song is cut into ``n_windows`` equal regions (fewer when it is too short to hold
    them all) and each region contributes its window with the most frames where both stems
    play, if they play together in at least ``min_together_fraction`` of it. Regions where
    they do not are skipped. A song no longer than a window is one window, if they play
    together enough in it.
    """
    n_frames = len(anchor_active)
    together = anchor_active & target_active
    if n_frames <= window_frames:
        return [(0, n_frames)] if together.mean() >= min_together_fraction else []
    n_regions = max(1, min(n_windows, n_frames // window_frames))
    edges = np.linspace(0, n_frames, n_regions + 1).round().astype(int)
    windows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        offset = choose_excerpt_start(
            {"together": together[low:high]}, ["together"], [], window_frames, hop_frames
        )
        start = low + offset
        stop = min(start + window_frames, n_frames)
        if together[start:stop].mean() >= min_together_fraction:
            windows.append((start, stop))
    return windows


def _window_samples(start: int, stop: int, frame: int, n_samples: int) -> tuple[int, int]:
    """Sample range of a frame range; a window ending on the last frame takes the song's tail."""
    end = n_samples if stop * frame + frame > n_samples else stop * frame
    return start * frame, end


def best_window(together: np.ndarray, window_frames: int, hop_frames: int) -> tuple[int, int]:
    """The single window of the whole song where the two stems play together most."""
    start = choose_excerpt_start(
        {"together": together}, ["together"], [], window_frames, hop_frames
    )
    return start, min(start + window_frames, len(together))


# --------------------------------------------------------------------------- analysis


@dataclass
class TargetReport:
    """What the command says about one target stem."""

    stem: str
    status: str  # "active", "silent" or "not_together"
    relative_db: float | None = None
    convention_db: float | None = None
    convention_genre: str | None = None
    verdict: str | None = None
    fader_move_db: float | None = None
    windows: list[tuple[float, float]] = field(default_factory=list)
    advice: str | None = None

    def as_dict(self) -> dict:
        return {
            "stem": self.stem,
            "status": self.status,
            "relative_db": _rounded(self.relative_db, 2),
            "convention_db": _rounded(self.convention_db, 2),
            "convention_genre": self.convention_genre,
            "verdict": self.verdict,
            "fader_move_db": _rounded(self.fader_move_db, 1),
            "windows": [[round(a, 2), round(b, 2)] for a, b in self.windows],
            "advice": self.advice,
        }


def _rounded(value: float | None, digits: int) -> float | None:
    # "+ 0.0" turns a negative zero into a plain zero in the output.
    return None if value is None else round(value, digits) + 0.0


def _ordered_targets(stems: Sequence[str], anchor: str) -> list[str]:
    known = [s for s in STEM_NAMES if s in stems and s != anchor]
    return known + sorted(s for s in stems if s not in STEM_NAMES and s != anchor)


def match_genre(genre: str | None, conventions_genres: Sequence[str]) -> tuple[str, str | None]:
    """The conventions' spelling of ``genre`` (case-insensitive), or ``all`` and a warning."""
    if genre is None:
        return ALL_GENRES, None
    for known in conventions_genres:
        if known.lower() == genre.strip().lower():
            return known, None
    listing = ", ".join(g for g in conventions_genres if g != ALL_GENRES)
    return ALL_GENRES, (
        f"no shipped conventions for genre '{genre}' (known: {listing}); using all genres"
    )


def plan_windows(
    anchor: str,
    target: str,
    activity: Mapping[str, np.ndarray],
    settings: ExcerptSettings,
    n_windows: int,
    warn: Callable[[str], None],
) -> list[tuple[int, int]]:
    """The frame ranges to measure a target in; empty when it never plays with the anchor."""
    window_frames = max(1, int(round(settings.seconds / FRAME_S)))
    hop_frames = max(1, int(round(settings.hop_seconds / FRAME_S)))
    windows = choose_windows(
        activity[anchor],
        activity[target],
        window_frames,
        n_windows,
        hop_frames,
        settings.min_active_fraction,
    )
    if windows:
        return windows
    together = activity[anchor] & activity[target]
    start, stop = best_window(together, window_frames, hop_frames)
    if not together[start:stop].any():
        return []
    warn(
        f"{anchor} and {target} seldom play together; measured on the one window where "
        f"they do most ({start * FRAME_S:.1f}-{stop * FRAME_S:.1f} s)"
    )
    return [(start, stop)]


@dataclass
class _Measured:
    relative_levels: list[float] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)  # seconds
    model_answers: list[Mapping] = field(default_factory=list)


def _measure_target(
    song: Song,
    anchor: str,
    target: str,
    frame_windows: Sequence[tuple[int, int]],
    settings: ExcerptSettings,
    advisor: object | None,
    genre: str,
    on_window: Callable[[], None],
) -> _Measured:
    """Loudness of target minus anchor in each window (and the model's answers, if any)."""
    rate = song.sample_rate
    frame = int(round(FRAME_S * rate))
    measured = _Measured()
    for start, stop in frame_windows:
        begin, end = _window_samples(start, stop, frame, song.stems[anchor].shape[0])
        anchor_clip, target_clip = song.stems[anchor][begin:end], song.stems[target][begin:end]
        anchor_lufs = integrated_loudness(anchor_clip, rate)
        target_lufs = integrated_loudness(target_clip, rate)
        on_window()
        if min(anchor_lufs, target_lufs) <= settings.silence_lufs:
            continue
        measured.relative_levels.append(target_lufs - anchor_lufs)
        measured.windows.append((begin / rate, end / rate))
        if advisor is not None:
            measured.model_answers.append(
                advisor.advise(
                    anchor=anchor,
                    target=target,
                    anchor_audio=anchor_clip,
                    target_audio=target_clip,
                    sample_rate=rate,
                    genre=None if genre == ALL_GENRES else genre,
                )
            )
    return measured


def analyse(
    song: Song,
    anchor: str,
    genre: str,
    settings: ExcerptSettings,
    n_windows: int,
    tolerance_db: float,
    warn: Callable[[str], None],
    advisor: object | None = None,
    progress: bool = False,
) -> list[TargetReport]:
    """Measure and judge every target stem against ``anchor``.

    A stem is silent when its loudness over the whole song is at most
    ``settings.silence_lufs``; the others are measured in the windows of
    :func:`plan_windows`, and the median of the windows' relative levels is judged by the
    DSP baseline against the genre's convention, or by ``advisor``.
    """
    rate = song.sample_rate
    targets = _ordered_targets(list(song.stems), anchor)
    index = convention_index(shipped_conventions())
    bar = tqdm(
        total=len(song.stems),
        desc="analysing",
        unit="step",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    with bar:
        silent, activity = {}, {}
        for stem in [anchor, *targets]:
            bar.set_postfix_str(stem)
            silent[stem] = integrated_loudness(song.stems[stem], rate) <= settings.silence_lufs
            activity[stem] = stem_activity(song.stems[stem], rate, settings)
            bar.update()
        if silent[anchor]:
            raise CliError(
                f"the anchor '{anchor}' ({song.files[anchor]}) is silent in the whole song; "
                f"choose another anchor with --anchor ({', '.join(targets)})"
            )
        plans = {
            t: plan_windows(anchor, t, activity, settings, n_windows, warn)
            for t in targets
            if not silent[t]
        }
        bar.total += sum(len(w) for w in plans.values())
        bar.set_postfix_str("windows")

        reports = []
        for target in targets:
            if silent[target]:
                reports.append(TargetReport(stem=target, status=SILENT))
                continue
            measured = _measure_target(
                song, anchor, target, plans[target], settings, advisor, genre, bar.update
            )
            if not measured.relative_levels:
                warn(f"{anchor} and {target} never play at the same time; no advice for {target}")
                reports.append(TargetReport(stem=target, status=NOT_TOGETHER))
                continue
            report = TargetReport(
                stem=target,
                status=ACTIVE,
                relative_db=float(np.median(measured.relative_levels)),
                windows=measured.windows,
            )
            convention = lookup_convention(index, genre, anchor, target, CONVENTION_MIN_SONGS)
            if convention is not None:
                report.convention_db = float(convention["median_db"])
                report.convention_genre = str(convention["genre"])
            if advisor is not None:
                _apply_model_answers(report, measured.model_answers, tolerance_db)
            elif convention is not None:
                judgement = judge_pair(
                    anchor,
                    target,
                    report.relative_db,
                    convention,
                    seed=f"{song.name}|{anchor}>{target}",
                    tolerance_db=tolerance_db,
                )
                report.verdict = judgement.label
                report.fader_move_db = judgement.fader_move_db
                report.advice = judgement.advice
            else:
                warn(
                    f"no convention for '{target}' against '{anchor}': the shipped conventions "
                    f"cover {', '.join(STEM_NAMES)}; rename {song.files[target]} to one of "
                    "them for advice. Relative level only"
                )
            reports.append(report)
    return reports


# --------------------------------------------------------------------------- model


def load_model_advisor(model: str, tracking_uri: str | None) -> object:
    """Load a fine-tuned advisor from an adapter directory or an MLflow run or model URI.

    The advisor comes from ``anchormix_kedro.model.advisor.load_advisor(path)``. The command calls
    its ``advise(anchor=, target=, anchor_audio=, target_audio=, sample_rate=, genre=)`` once
    per window, with ``(samples, channels)`` float32 clips at the song's rate, and reads
    ``advice`` (text) and, when present, ``verdict`` and ``fader_move_db`` from the mapping
    it returns.
    """
    try:
        advisor_module = importlib.import_module("anchormix_kedro.model.advisor")
    except ModuleNotFoundError as exc:
        if exc.name == "anchormix_kedro.model.advisor":
            raise CliError(
                "the model advisor is unavailable in this installation "
                "(no anchormix_kedro.model.advisor module); run without --model for the DSP baseline"
            ) from None
        raise CliError(f"the model advisor cannot be loaded: {exc}") from None
    if model.startswith(MLFLOW_URI_SCHEMES):
        import mlflow.artifacts

        try:
            path = Path(
                mlflow.artifacts.download_artifacts(artifact_uri=model, tracking_uri=tracking_uri)
            )
        except Exception as exc:  # MLflow raises many kinds; the message is what matters
            raise CliError(f"{model}: cannot download the model from MLflow ({exc})") from None
    else:
        path = Path(model).expanduser()
        if not path.exists():
            raise CliError(
                f"{model}: no such adapter directory; give a local adapter directory or an "
                "MLflow URI (runs:/<run id>/<path>, models:/<name>/<version>)"
            )
    try:
        return advisor_module.load_advisor(path)
    except Exception as exc:  # whatever went wrong, the user needs the path and the reason
        raise CliError(f"{model}: cannot load the model ({type(exc).__name__}: {exc})") from None


def _apply_model_answers(
    report: TargetReport, answers: Sequence[Mapping], tolerance_db: float
) -> None:
    """Combine the model's per-window answers: median fader move, majority verdict."""
    moves = [float(a["fader_move_db"]) for a in answers if a.get("fader_move_db") is not None]
    verdicts = [a["verdict"] for a in answers if a.get("verdict")]
    if moves:
        report.fader_move_db = float(np.median(moves))
    if verdicts:
        report.verdict = Counter(verdicts).most_common(1)[0][0]
    elif moves:
        report.verdict = label_for_gain(-report.fader_move_db, tolerance_db)
    # The advice of the window whose move is nearest the combined one speaks for the song.
    spoken = [a for a in answers if a.get("advice")]
    if spoken:
        chosen = min(
            spoken,
            key=lambda a: abs(float(a.get("fader_move_db") or 0.0) - (report.fader_move_db or 0.0)),
        )
        report.advice = str(chosen["advice"])


# --------------------------------------------------------------------------- output


def format_fader_move(move_db: float | None) -> str:
    """E.g. ``-3.5 dB``, ``+2.0 dB``, ``0 dB`` (no move)."""
    if move_db is None:
        return "-"
    rounded = round(move_db, 1)
    return "0 dB" if rounded == 0 else f"{rounded:+.1f} dB"


def _format_windows(windows: Sequence[tuple[float, float]]) -> str:
    return ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in windows) or "-"


def render_text(result: Mapping) -> str:
    """A readable report: one table row per target, then the advice."""
    anchor, genre = result["anchor"], result["genre"]
    lines = [
        f"Song:    {result['song']} ({result['sample_rate']} Hz, {result['seconds']:.1f} s)",
        f"Anchor:  {anchor}   conventions: "
        + ("all genres" if genre == ALL_GENRES else genre)
        + f"   model: {result['model']}   balanced within ±{result['tolerance_db']:g} dB",
        "",
    ]
    header = ["stem", f"vs {anchor}", "convention", "verdict", "fader move", "windows"]
    rows = []
    for target in result["targets"]:
        if target["status"] != ACTIVE:
            rows.append([target["stem"], target["status"].replace("_", " "), "-", "-", "-", "-"])
            continue
        convention = "-"
        if target["convention_db"] is not None:
            convention = f"{target['convention_db']:+.1f} dB"
            if target["convention_genre"] != genre:
                convention += f" ({target['convention_genre']})"
        rows.append(
            [
                target["stem"],
                f"{target['relative_db']:+.1f} dB",
                convention,
                (target["verdict"] or "-").replace("_", " "),
                format_fader_move(target["fader_move_db"]),
                _format_windows(target["windows"]),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    for target in result["targets"]:
        if target["status"] == SILENT:
            text = "silent in the whole song; no advice."
        elif target["status"] == NOT_TOGETHER:
            text = f"never plays together with {anchor}; no advice."
        else:
            text = target["advice"] or "no convention for this stem; no advice."
        lines.append(f"{target['stem']}: {text}")
    if result["warnings"]:
        lines += ["", f"{len(result['warnings'])} warning(s), shown above on stderr."]
    return "\n".join(lines) + "\n"


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
        default=DEFAULT_TOLERANCE_DB,
        help=f"within ±this of the convention is balanced (default: {DEFAULT_TOLERANCE_DB})",
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
        "model": args.model or DSP_BASELINE_ID,
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
