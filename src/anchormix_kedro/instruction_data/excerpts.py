"""Choosing and measuring a song's excerpts: where the anchor and the targets play.

A song gives up to ``per_song`` excerpts (:func:`choose_excerpt_starts`: the best window
first, then the best ones that keep ``min_spacing_seconds`` away from those chosen); a song
no longer than one excerpt gives one, the whole song. Each excerpt keeps, for every stem, its BS.1770 loudness measured at the native rate
(the truth the dataset is built on) and a 16 kHz mono copy of the audio for the model.
:func:`source_rate_excerpt` cuts the same excerpt at the source's rate and channels, for
people to listen to (the rating study).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from anchormix_kedro.instruction_data.audio import (
    StemSet,
    frame_rms_db,
    integrated_loudness,
    resample,
    to_mono,
)

ACTIVE, SILENT, SPARSE = "active", "silent", "sparse"
FRAME_S = 0.1


@dataclass(frozen=True)
class ExcerptSettings:
    """How excerpts are chosen and when a stem counts as playing."""

    seconds: float = 10.0
    model_sample_rate: int = 16000
    #: A 100 ms frame is "active" above this RMS level.
    activity_threshold_dbfs: float = -50.0
    #: Below this integrated loudness a stem is silent (MUSDB18 has bleed around -70 LUFS).
    silence_lufs: float = -60.0
    #: A stem active in less than this fraction of the excerpt is too sparse to judge.
    min_active_fraction: float = 0.25
    #: Candidate excerpt starts are this far apart.
    hop_seconds: float = 0.5
    #: At most this many excerpts per song (fewer when the song is too short to hold them).
    per_song: int = 3
    #: Silence kept between the end of one excerpt of a song and the start of the next.
    min_spacing_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.seconds < 1.0:
            raise ValueError(f"ingestion.excerpt.seconds must be at least 1 s, got {self.seconds}")
        if not 0.0 <= self.min_active_fraction <= 1.0:
            raise ValueError(
                f"ingestion.excerpt.min_active_fraction must be in [0, 1], got {self.min_active_fraction}"
            )
        if self.hop_seconds <= 0:
            raise ValueError(
                f"ingestion.excerpt.hop_seconds must be positive, got {self.hop_seconds}"
            )
        if (
            isinstance(self.per_song, bool)
            or not isinstance(self.per_song, int | np.integer)
            or self.per_song < 1
        ):
            raise ValueError(
                f"ingestion.excerpt.per_song must be at least 1, got {self.per_song!r}"
            )
        if not (
            isinstance(self.min_spacing_seconds, int | float)
            and np.isfinite(self.min_spacing_seconds)
            and self.min_spacing_seconds >= 0
        ):
            raise ValueError(
                "ingestion.excerpt.min_spacing_seconds must be a number >= 0, "
                f"got {self.min_spacing_seconds!r}"
            )


@dataclass
class Excerpt:
    """One song's excerpt: 16 kHz mono audio per stem plus measurements."""

    start_s: float
    seconds: float
    native_sample_rate: int
    audio: dict[str, np.ndarray]  # stem -> (samples,) float32 at model_sample_rate
    lufs: dict[str, float]
    active_fraction: dict[str, float]
    peak_dbfs: dict[str, float]
    status: dict[str, str] = field(default_factory=dict)


def window_scores(
    activity: dict[str, np.ndarray],
    anchors: Sequence[str],
    targets: Sequence[str],
    window_frames: int,
) -> np.ndarray:
    """Score of the window starting at every frame (``n_frames - window_frames + 1`` of them).

    Score of a window: twice the active fraction of each anchor (an anchor must play) plus
    the active fraction of each target.
    """
    n_frames = len(next(iter(activity.values())))
    weights = {s: 0.0 for s in activity}
    for stem in targets:
        weights[stem] = 1.0
    for stem in anchors:
        weights[stem] = 2.0
    score = np.zeros(max(1, n_frames - window_frames + 1), dtype=np.float64)
    if n_frames <= window_frames:
        return score
    for stem, active in activity.items():
        if weights.get(stem, 0.0) == 0.0:
            continue
        cumulative = np.concatenate([[0], np.cumsum(active, dtype=np.int64)])
        score += (
            weights[stem]
            * (cumulative[window_frames:] - cumulative[:-window_frames])
            / window_frames
        )
    return score


def choose_excerpt_starts(
    activity: dict[str, np.ndarray],
    anchors: Sequence[str],
    targets: Sequence[str],
    window_frames: int,
    hop_frames: int,
    count: int = 1,
    spacing_frames: int = 0,
) -> list[int]:
    """Frame indices of up to ``count`` windows, in time order, where the anchors and targets
    play together best (scores as :func:`window_scores`).

    Greedy: the best window first, then the best remaining window that overlaps none of
    those chosen, each extended by ``spacing_frames`` on both sides, until ``count`` or no
    window is left. Every window lies inside the song; a song no longer than one window
    gives one, from frame 0. Ties go to the earliest window.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    n_frames = len(next(iter(activity.values())))
    if n_frames <= window_frames:
        return [0]
    score = window_scores(activity, anchors, targets, window_frames)
    candidates = np.arange(0, len(score), max(1, hop_frames))
    order = candidates[np.argsort(-score[candidates], kind="stable")]
    reach = window_frames + max(0, spacing_frames)  # starts closer than this collide
    chosen: list[int] = []
    for start in order.tolist():
        if all(abs(start - other) >= reach for other in chosen):
            chosen.append(start)
            if len(chosen) == count:
                break
    return sorted(chosen)


def choose_excerpt_start(
    activity: dict[str, np.ndarray],
    anchors: Sequence[str],
    targets: Sequence[str],
    window_frames: int,
    hop_frames: int,
) -> int:
    """Frame index where the excerpt best covers the anchors and targets playing together.

    Score of a window: twice the active fraction of each anchor (an anchor must play) plus
    the active fraction of each target. Ties go to the earliest window.
    """
    return choose_excerpt_starts(activity, anchors, targets, window_frames, hop_frames)[0]


def _stem_activity(stem_set: StemSet, settings: ExcerptSettings) -> dict[str, np.ndarray]:
    return {
        name: frame_rms_db(data, stem_set.sample_rate, FRAME_S) > settings.activity_threshold_dbfs
        for name, data in stem_set.stems.items()
    }


def _measure(
    stem_set: StemSet,
    activity: dict[str, np.ndarray],
    start_frame: int,
    window_frames: int,
    settings: ExcerptSettings,
) -> Excerpt:
    rate = stem_set.sample_rate
    frame = int(round(FRAME_S * rate))
    start = start_frame * frame
    stop = min(stem_set.n_samples, start + int(round(settings.seconds * rate)))
    excerpt = Excerpt(
        start_s=start / rate,
        seconds=(stop - start) / rate,
        native_sample_rate=rate,
        audio={},
        lufs={},
        active_fraction={},
        peak_dbfs={},
    )
    for name, data in stem_set.stems.items():
        clip = data[start:stop]
        lufs = integrated_loudness(clip, rate)
        frames = activity[name][start_frame : start_frame + window_frames]
        active_fraction = float(frames.mean()) if len(frames) else 0.0
        peak = float(np.max(np.abs(clip))) if clip.size else 0.0
        excerpt.lufs[name] = round(lufs, 3)
        excerpt.active_fraction[name] = round(active_fraction, 3)
        excerpt.peak_dbfs[name] = round(20 * np.log10(max(peak, 1e-6)), 2)
        if lufs <= settings.silence_lufs:
            excerpt.status[name] = SILENT
        elif active_fraction < settings.min_active_fraction:
            excerpt.status[name] = SPARSE
        else:
            excerpt.status[name] = ACTIVE
        excerpt.audio[name] = resample(to_mono(clip), rate, settings.model_sample_rate)
    return excerpt


def extract_song_excerpts(
    stem_set: StemSet,
    anchors: Sequence[str],
    targets: Sequence[str],
    settings: ExcerptSettings,
    count: int | None = None,
) -> list[Excerpt]:
    """Choose up to ``count`` (default ``settings.per_song``) excerpts of a song, at least
    ``settings.min_spacing_seconds`` apart, and measure every stem in each; in time order."""
    rate = stem_set.sample_rate
    frame = int(round(FRAME_S * rate))
    activity = _stem_activity(stem_set, settings)
    window_frames = int(round(settings.seconds / FRAME_S))
    hop_frames = max(1, int(round(settings.hop_seconds / FRAME_S)))
    window_samples = int(round(settings.seconds * rate))
    if stem_set.n_samples >= window_samples:
        # Whole windows only: no start whose window would run past the song's last sample.
        fitting = (stem_set.n_samples - window_samples) // frame + window_frames
        activity = {name: active[:fitting] for name, active in activity.items()}
    starts = choose_excerpt_starts(
        activity,
        anchors,
        targets,
        window_frames,
        hop_frames,
        count=settings.per_song if count is None else count,
        spacing_frames=int(round(settings.min_spacing_seconds / FRAME_S)),
    )
    return [_measure(stem_set, activity, start, window_frames, settings) for start in starts]


def extract_excerpt(
    stem_set: StemSet, anchors: Sequence[str], targets: Sequence[str], settings: ExcerptSettings
) -> Excerpt:
    """Choose the best excerpt of a song and measure every stem in it."""
    return extract_song_excerpts(stem_set, anchors, targets, settings, count=1)[0]


def source_rate_excerpt(
    stem_set: StemSet, start_s: float, seconds: float, stems: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The excerpt starting at ``start_s`` (as :func:`extract_excerpt` chose it) at the
    source's rate and channels: ``{stem: (samples, channels) float32}``.

    Raises a ValueError naming the times when the excerpt lies outside the song.
    """
    rate = stem_set.sample_rate
    start = int(round(start_s * rate))
    stop = min(stem_set.n_samples, start + int(round(seconds * rate)))
    if start < 0 or start >= stop:
        raise ValueError(
            f"excerpt {start_s:.3f}-{start_s + seconds:.3f} s lies outside the song "
            f"({stem_set.n_samples / rate:.3f} s): run the ingestion pipeline again"
        )
    names = list(stems) if stems is not None else list(stem_set.stems)
    return {name: np.ascontiguousarray(stem_set.stems[name][start:stop]) for name in names}
