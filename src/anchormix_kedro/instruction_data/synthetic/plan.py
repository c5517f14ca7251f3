"""Song plans, the corpus plan, the drawn stem levels and each song's arrangement."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from anchormix_kedro.instruction_data.synthetic.styles import (
    CHORD_INTERVALS,
    DEFAULT_GENRES,
    TARGET_STEMS,
    GenreStyle,
    Progression,
)

MIN_SONG_SECONDS = 1.0
STEPS_PER_BAR = 16
BEATS_PER_BAR = 4
SECTION_BARS = 8

# Independent random streams per concern: changing how one stem is drawn never shifts
# another stem, the arrangement or the drawn levels.
_LEVELS_STREAM = 1
_ARRANGEMENT_STREAM = 2
DRUMS_STREAM = 3
BASS_STREAM = 4
CHORDS_STREAM = 5
VOCALS_STREAM = 6
_CORPUS_STREAM = 7


@dataclass(frozen=True)
class SongPlan:
    """Everything needed to render one synthetic song (the seed fixes all the content)."""

    name: str
    split: str
    genre: str
    seed: int
    seconds: float
    instrumental: bool


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be within [0, 1], got {value!r}")


def check_seconds(seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds >= MIN_SONG_SECONDS):
        raise ValueError(
            f"seconds must be a finite number >= {MIN_SONG_SECONDS} "
            f"(loudness is measured on 400 ms blocks), got {seconds!r}"
        )


def check_genre(genre: str, styles: Mapping[str, GenreStyle]) -> None:
    if genre not in styles:
        raise ValueError(f"unknown genre {genre!r}; known genres: {', '.join(styles)}")


def plan_corpus(
    n_songs: int,
    seconds: float,
    seed: int,
    genres: Sequence[str] | None = None,
    test_fraction: float = 0.25,
    instrumental_fraction: float = 0.1,
    *,
    styles: Mapping[str, GenreStyle] = DEFAULT_GENRES,
) -> list[SongPlan]:
    """Plan a reproducible corpus of ``n_songs`` songs of ``seconds`` each.

    Genres are dealt in shuffled rounds, so every genre appears once ``n_songs`` reaches the
    number of genres. ``round(n_songs * test_fraction)`` songs go to the "test" split, at
    least one when ``n_songs >= 2`` and ``test_fraction > 0``, and at least one stays in
    "train" unless ``test_fraction == 1``. ``round(n_songs * instrumental_fraction)`` songs
    have no vocals. Names look like "Synthetic - Rap 003" ("/" in a genre becomes "-" so that
    a name is a valid folder name).
    """
    if isinstance(n_songs, bool) or not isinstance(n_songs, int | np.integer) or n_songs < 1:
        raise ValueError(f"n_songs must be an integer >= 1, got {n_songs!r}")
    check_seconds(seconds)
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("instrumental_fraction", instrumental_fraction)
    chosen = list(styles) if genres is None else list(dict.fromkeys(genres))
    if not chosen:
        raise ValueError(f"genres must name at least one genre; known genres: {', '.join(styles)}")
    for genre in chosen:
        check_genre(genre, styles)

    n_songs = int(n_songs)
    rng = np.random.default_rng([seed, _CORPUS_STREAM])
    song_genres: list[str] = []
    while len(song_genres) < n_songs:
        song_genres.extend(chosen[i] for i in rng.permutation(len(chosen)))
    song_genres = song_genres[:n_songs]

    n_test = round(n_songs * test_fraction)
    if test_fraction > 0 and n_songs >= 2:
        n_test = max(n_test, 1)
    if test_fraction < 1:
        n_test = min(n_test, n_songs - 1)
    test_indices = set(rng.permutation(n_songs)[:n_test].tolist())
    n_instrumental = round(n_songs * instrumental_fraction)
    instrumental_indices = set(rng.permutation(n_songs)[:n_instrumental].tolist())
    song_seeds = np.random.SeedSequence([seed, _CORPUS_STREAM]).generate_state(n_songs, np.uint64)

    width = max(3, len(str(n_songs)))
    return [
        SongPlan(
            name=f"Synthetic - {genre.replace('/', '-')} {index + 1:0{width}d}",
            split="test" if index in test_indices else "train",
            genre=genre,
            seed=int(song_seeds[index]),
            seconds=float(seconds),
            instrumental=index in instrumental_indices,
        )
        for index, genre in enumerate(song_genres)
    ]


def drawn_relative_lufs(
    plan: SongPlan, styles: Mapping[str, GenreStyle] = DEFAULT_GENRES
) -> dict[str, float]:
    """Loudness of bass, other and vocals relative to the drums (LU) drawn for ``plan``.

    Each value is the genre mean plus a normal deviation of ``spread_lu``. The vocals of an
    instrumental song are silent: their value is ``-inf``, as a loudness meter reports.
    """
    check_genre(plan.genre, styles)
    style = styles[plan.genre]
    rng = np.random.default_rng([plan.seed, _LEVELS_STREAM])
    # Draw every stem even for instrumentals so the other stems' levels do not depend on it.
    deviations = rng.normal(0.0, 1.0, size=len(TARGET_STEMS)) * style.spread_lu
    levels = {
        stem: float(style.relative_lufs[stem] + deviation)
        for stem, deviation in zip(TARGET_STEMS, deviations, strict=True)
    }
    if plan.instrumental:
        levels["vocals"] = -math.inf
    return levels


# --------------------------------------------------------------------------------------------
# Arrangement: tempo, key, chords, sections


@dataclass(frozen=True)
class Arrangement:
    style: GenreStyle
    sample_rate: int
    n_samples: int
    tempo_bpm: float
    tonic: int  # pitch class of the key, 0 = C
    progression: Progression
    n_bars: int
    intro_bars: int

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.tempo_bpm

    @property
    def step_seconds(self) -> float:
        return self.beat_seconds / 4

    def step_time(self, bar: int, step: float) -> float:
        """Seconds at which a 16th-note step of a bar falls, with the genre's swing."""
        beat, sub = divmod(step, 4)
        swing = self.style.swing
        # Swing moves the off-beat eighth; the 16ths on either side follow it.
        within = (0.0, swing / 2, swing, swing + (1 - swing) / 2)[int(sub)] + (sub - int(sub)) / 4
        return (bar * BEATS_PER_BAR + beat + within) * self.beat_seconds

    def chord(self, bar: int) -> tuple[int, tuple[int, ...]]:
        """Root pitch class and intervals of the chord playing in ``bar``."""
        degree, quality = self.progression[
            (bar // self.style.bars_per_chord) % len(self.progression)
        ]
        return (self.tonic + degree) % 12, CHORD_INTERVALS[quality]

    def is_chorus(self, bar: int) -> bool:
        return bar >= self.intro_bars and ((bar - self.intro_bars) // SECTION_BARS) % 2 == 1

    def sample(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate))


def plan_arrangement(plan: SongPlan, style: GenreStyle, sample_rate: int) -> Arrangement:
    rng = np.random.default_rng([plan.seed, _ARRANGEMENT_STREAM])
    tempo = float(rng.uniform(*style.tempo_bpm))
    tonic = int(rng.integers(12))
    progression = style.progressions[int(rng.integers(len(style.progressions)))]
    bar_seconds = BEATS_PER_BAR * 60.0 / tempo
    song_bars = plan.seconds / bar_seconds
    # A short intro without bass and vocals only where it leaves most of the song to them.
    intro_bars = 0 if song_bars < 12 else (2 if song_bars < 40 else 4)
    return Arrangement(
        style=style,
        sample_rate=sample_rate,
        n_samples=int(round(plan.seconds * sample_rate)),
        tempo_bpm=tempo,
        tonic=tonic,
        progression=progression,
        n_bars=int(math.ceil(song_bars)) + 1,
        intro_bars=intro_bars,
    )
