"""What ``anchormix advise`` measures: windows where anchor and target play together, their
relative loudness there, where that level sits among professional mixes (the engineers'
graded verdict), and, with ``--model``, the model's advice beside it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from anchormix_kedro.advise.report import ModelAnswer, TargetReport, combine_model_answers
from anchormix_kedro.advise.songs import Song
from anchormix_kedro.advise.verdict import compare_with_model, graded_advice
from anchormix_kedro.errors import CliError
from anchormix_kedro.evaluation.dsp_baseline import shipped_conventions
from anchormix_kedro.evaluation.professional_range import (
    Bands,
    ProfessionalLevels,
    place_level,
)
from anchormix_kedro.instruction_data.audio import integrated_loudness
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
from anchormix_kedro.vocabulary import BALANCED_TOLERANCE_DB, CONVENTION_MIN_SONGS, STEM_NAMES

#: Status of a target that never plays while the anchor does: nothing to compare, no advice.
NOT_TOGETHER = "not_together"
#: Status of a target holding the very audio of the anchor (a copy or a link): no advice.
IDENTICAL_TO_ANCHOR = "identical_to_anchor"

# --------------------------------------------------------------------------- windows


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
    sample_windows: Sequence[tuple[int, int]],
    audio: Mapping[str, Mapping[tuple[int, int], np.ndarray]],
    settings: ExcerptSettings,
    advisor: object | None,
    genre: str,
) -> _Measured:
    """Loudness of target minus anchor in each window (and the model's answers, if any)."""
    rate = song.sample_rate
    measured = _Measured()
    for begin, end in sample_windows:
        anchor_clip, target_clip = audio[anchor][(begin, end)], audio[target][(begin, end)]
        anchor_lufs = integrated_loudness(anchor_clip, rate)
        target_lufs = integrated_loudness(target_clip, rate)
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


def _judge(
    report: TargetReport,
    anchor: str,
    levels: ProfessionalLevels,
    bands: Bands,
    genre: str,
    warn: Callable[[str], None],
    source: str,
) -> None:
    """The measurement's graded verdict of a measured target, in place."""
    distribution = levels.distribution(genre, anchor, report.stem)
    if distribution is None:
        warn(
            f"no professional levels for '{report.stem}' against '{anchor}' ({source}): they "
            f"cover {', '.join(STEM_NAMES)}; map the file to one of them with --stem. "
            "Relative level only"
        )
        return
    report.placement = place_level(report.relative_db, distribution, bands)
    report.verdict = report.placement.verdict
    report.fader_move_db = report.placement.fader_move_db
    report.advice = graded_advice(anchor, report.stem, report.placement)


def _identical_to_anchor(
    song: Song,
    anchor: str,
    targets: Sequence[str],
    silent: Mapping[str, bool],
    warn: Callable[[str], None],
) -> set[str]:
    """The targets whose decoded audio is the anchor's, bit for bit (a copy, a link, the
    same audio in another format); stems that share audio with each other are named too."""
    same: dict[bytes, list[str]] = {}
    for stem in [anchor, *targets]:
        if not silent[stem] and stem in song.digests:
            same.setdefault(song.digests[stem], []).append(stem)
    identical: set[str] = set()
    for stems in same.values():
        if len(stems) < 2:
            continue
        files = ", ".join(f"{s} <- {song.files[s]}" for s in stems)
        if stems[0] == anchor:
            identical.update(stems[1:])
            warn(
                f"{', '.join(stems[1:])} hold{'s' if len(stems) == 2 else ''} the same audio as "
                f"the anchor {anchor} ({files}); no advice for {'it' if len(stems) == 2 else 'them'}"
                ": check which file each stem was exported to"
            )
        else:
            warn(
                f"{' and '.join(stems)} hold the same audio ({files}); check which file each "
                "stem was exported to"
            )
    return identical


def analyse(
    song: Song,
    anchor: str,
    genre: str,
    settings: ExcerptSettings,
    n_windows: int,
    levels: ProfessionalLevels,
    bands: Bands,
    warn: Callable[[str], None],
    advisor: object | None = None,
    tolerance_db: float = BALANCED_TOLERANCE_DB,
    progress: bool = False,
) -> list[TargetReport]:
    """Measure and judge every target stem against ``anchor``.

    A stem is silent when its loudness over the whole song is at most
    ``settings.silence_lufs``; the others are measured in the windows of
    :func:`plan_windows`, and the median of the windows' relative levels is placed among
    the professional mixes of ``levels`` (the graded verdict). With ``advisor`` the
    model's combined answer is set beside it (``tolerance_db`` labels a model's move that
    comes without a verdict) and disagreements are marked.
    """
    targets = _ordered_targets(list(song.stems), anchor)
    index = convention_index(shipped_conventions())
    silent = {s: song.levels[s].loudness_lufs <= settings.silence_lufs for s in song.stems}
    activity = {s: song.levels[s].frame_db > settings.activity_threshold_dbfs for s in song.stems}
    if all(silent.values()):
        raise CliError(
            f"every stem is silent in the whole song ({'; '.join(song.files.values())}); "
            "check that the stems were exported with their audio"
        )
    if silent[anchor]:
        playing = [t for t in targets if not silent[t]]
        raise CliError(
            f"the anchor '{anchor}' ({song.files[anchor]}) is silent in the whole song; "
            f"choose a stem that plays as the anchor, e.g. --anchor {playing[0]} "
            f"(stems that play: {', '.join(playing)})"
        )
    identical = _identical_to_anchor(song, anchor, targets, silent, warn)
    plans = {
        t: plan_windows(anchor, t, activity, settings, n_windows, warn)
        for t in targets
        if not silent[t] and t not in identical
    }
    frame = int(round(FRAME_S * song.sample_rate))
    sample_windows = {
        t: [_window_samples(start, stop, frame, song.n_samples) for start, stop in windows]
        for t, windows in plans.items()
    }
    wanted = {t: w for t, w in sample_windows.items() if w}
    if wanted:
        wanted[anchor] = [w for windows in wanted.values() for w in windows]
    bar = tqdm(
        total=len(wanted) + (sum(len(w) for w in plans.values()) if advisor else 0),
        desc="analysing",
        unit="step",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    with bar:
        bar.set_postfix_str("windows")
        audio = song.read_windows(wanted, bar.update)
        reports = []
        for target in targets:
            if silent[target]:
                reports.append(TargetReport(stem=target, status=SILENT))
                continue
            if target in identical:
                reports.append(TargetReport(stem=target, status=IDENTICAL_TO_ANCHOR))
                continue
            measured = _measure_target(
                song, anchor, target, sample_windows[target], audio, settings, advisor, genre
            )
            if advisor is not None:
                bar.update(len(sample_windows[target]))
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
            _judge(report, anchor, levels, bands, genre, warn, song.files[target])
            if advisor is not None:
                report.model = ModelAnswer()
                combine_model_answers(report.model, measured.model_answers, tolerance_db)
                if report.placement is not None:
                    report.model.agrees, report.model.disagreement = compare_with_model(
                        report.placement, report.model.verdict
                    )
            reports.append(report)
    return reports
