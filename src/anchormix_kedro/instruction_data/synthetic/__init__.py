"""Synthetic multitrack songs with drums, bass, other and vocals stems.

Stands in for MUSDB18 on machines without it. Each song is planned by :func:`plan_corpus`
and rendered by :func:`synthesize_song` from its seed alone, so the same plan always gives
bit-identical stems. A genre (:class:`GenreStyle`) fixes the tempo range, the drum, bass and
chord patterns and, above all, the level conventions: the mean loudness of bass, other and
vocals relative to the drums, around which each song draws its own levels. Stems are scaled
so that their measured ITU-R BS.1770 loudness differences equal the drawn values, which
makes the stems themselves the ground truth for "how loud is X relative to the drums".

The content is simple but musical: a drum kit playing a genre pattern with fills and crashes,
a plucked bass on the chord roots, chords as pads, strums, stabs or distorted power chords,
and a formant-filtered glottal-pulse voice singing chord tones in phrases separated by rests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import signal
from scipy.ndimage import uniform_filter1d

from anchormix_kedro.instruction_data.audio import gated_loudness, gating_block_powers
from anchormix_kedro.vocabulary import STEM_NAMES

TARGET_STEMS = ("bass", "other", "vocals")
MIN_SONG_SECONDS = 1.0
MIN_SAMPLE_RATE = 8000
PEAK_LIMIT = 0.99
# Scale a clipping song to below the limit, leaving room for the re-balancing afterwards.
_PEAK_TARGET = 0.97
_STEPS_PER_BAR = 16
_BEATS_PER_BAR = 4
_SECTION_BARS = 8

# Independent random streams per concern: changing how one stem is drawn never shifts
# another stem, the arrangement or the drawn levels.
_LEVELS_STREAM = 1
_ARRANGEMENT_STREAM = 2
_DRUMS_STREAM = 3
_BASS_STREAM = 4
_CHORDS_STREAM = 5
_VOCALS_STREAM = 6
_CORPUS_STREAM = 7

_CHORD_INTERVALS = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "sus4": (0, 5, 7),
    "add9": (0, 4, 7, 14),
    "5": (0, 7, 12),
}

# Progressions as (semitones above the tonic, chord quality), one entry per chord.
Progression = tuple[tuple[int, str], ...]
_POP = ((0, "maj"), (7, "maj"), (9, "min"), (5, "maj"))
_POP_MINOR_START = ((9, "min"), (5, "maj"), (0, "maj"), (7, "maj"))
_AEOLIAN = ((0, "min"), (8, "maj"), (3, "maj"), (10, "maj"))
_RAP_MINOR = ((0, "min7"), (5, "min7"), (0, "min7"), (8, "maj7"))
_RAP_LOOP = ((0, "min"), (0, "min"), (8, "maj"), (10, "maj"))
_JAZZ_251 = ((2, "min7"), (7, "7"), (0, "maj7"), (9, "min7"))
_JAZZ_TURNAROUND = ((0, "maj7"), (9, "min7"), (2, "min7"), (7, "7"))
_METAL_AEOLIAN = ((0, "5"), (8, "5"), (10, "5"), (0, "5"))
_METAL_PHRYGIAN = ((0, "5"), (1, "5"), (0, "5"), (10, "5"))
_ELECTRONIC = ((9, "min7"), (5, "maj7"), (0, "maj"), (7, "sus4"))
_COUNTRY = ((0, "maj"), (5, "maj"), (0, "maj"), (7, "maj"))
_COUNTRY_TURN = ((0, "maj"), (7, "maj"), (5, "maj"), (0, "maj"))
_REGGAE = ((0, "maj"), (5, "maj"))
_REGGAE_MINOR = ((0, "min"), (10, "maj"))
_SONGWRITER = ((0, "maj"), (9, "min"), (5, "add9"), (7, "sus4"))

_BASS_TIMBRES = ("saw", "square", "round", "sub")
_CHORD_STYLES = ("pad", "strum", "stab", "power")

_EIGHTHS = (0, 2, 4, 6, 8, 10, 12, 14)
_OFFBEAT_EIGHTHS = (2, 6, 10, 14)
_SIXTEENTHS = tuple(range(16))


@dataclass(frozen=True)
class GenreStyle:
    """Level conventions and playing patterns of one genre.

    Patterns are written on a 16-step grid per 4/4 bar (step 4 is beat 2). Bass steps are
    ``(onset step, length in steps, semitones above the chord root)``.
    """

    name: str
    tempo_bpm: tuple[float, float]
    relative_lufs: dict[str, float] = field(hash=False)
    spread_lu: float = 1.5
    # Where the off-beat eighth falls, as a fraction of the beat (0.5 = straight).
    swing: float = 0.5
    humanize_ms: float = 4.0
    kick_steps: tuple[int, ...] = (0, 8)
    snare_steps: tuple[int, ...] = (4, 12)
    ghost_snare_steps: tuple[int, ...] = ()
    hat_steps: tuple[int, ...] = _EIGHTHS
    open_hat_steps: tuple[int, ...] = ()
    ride_steps: tuple[int, ...] = ()
    kick_decay_s: float = 0.22
    fill_probability: float = 0.5
    bass_timbre: str = "saw"  # "saw", "square", "round" or "sub"
    bass_brightness_hz: float = 1200.0
    bass_steps: tuple[tuple[int, int, int], ...] = ((0, 4, 0), (8, 4, 0))
    walking_bass: bool = False
    chord_style: str = "pad"  # "pad", "strum", "stab" or "power"
    chord_steps: tuple[int, ...] = (0,)
    chord_length_steps: int = 16
    chord_brightness_hz: float = 2500.0
    # Level of a sustained pad under strums or stabs (0 = none).
    pad_level: float = 0.0
    sidechain_depth: float = 0.0
    progressions: tuple[Progression, ...] = (_POP,)
    bars_per_chord: int = 1
    vocal_note_beats: tuple[float, ...] = (0.5, 1.0, 1.0, 1.5, 2.0)
    vocal_phrase_beats: tuple[int, ...] = (6, 6, 8)
    vocal_range_semitones: int = 12
    vibrato_semitones: float = 0.35

    def __post_init__(self) -> None:
        missing = [stem for stem in TARGET_STEMS if stem not in self.relative_lufs]
        if missing:
            raise ValueError(f"GenreStyle {self.name!r}: relative_lufs lacks {missing}")
        low, high = self.tempo_bpm
        if not 0 < low <= high:
            raise ValueError(f"GenreStyle {self.name!r}: bad tempo_bpm range {self.tempo_bpm}")
        if self.spread_lu < 0:
            raise ValueError(f"GenreStyle {self.name!r}: spread_lu must be >= 0")
        if self.bass_timbre not in _BASS_TIMBRES:
            raise ValueError(
                f"GenreStyle {self.name!r}: bass_timbre must be one of {_BASS_TIMBRES}"
            )
        if self.chord_style not in _CHORD_STYLES:
            raise ValueError(
                f"GenreStyle {self.name!r}: chord_style must be one of {_CHORD_STYLES}"
            )
        qualities = {quality for progression in self.progressions for _, quality in progression}
        if not self.progressions or not qualities <= set(_CHORD_INTERVALS):
            raise ValueError(
                f"GenreStyle {self.name!r}: progressions need chords of {sorted(_CHORD_INTERVALS)}"
            )
        if not (0 < self.swing < 1 and self.bars_per_chord >= 1):
            raise ValueError(f"GenreStyle {self.name!r}: needs 0 < swing < 1, bars_per_chord >= 1")


DEFAULT_GENRES: dict[str, GenreStyle] = {
    style.name: style
    for style in (
        GenreStyle(
            name="Pop/Rock",
            tempo_bpm=(100.0, 132.0),
            relative_lufs={"vocals": 2.0, "bass": -2.0, "other": -1.0},
            kick_steps=(0, 8, 10),
            bass_steps=tuple((step, 2, 0) for step in _EIGHTHS[:-1]) + ((14, 2, 7),),
            chord_style="strum",
            chord_steps=(0, 6, 8, 12, 14),
            chord_length_steps=6,
            chord_brightness_hz=3000.0,
            progressions=(_POP, _POP_MINOR_START, _AEOLIAN),
        ),
        GenreStyle(
            name="Rap",
            tempo_bpm=(82.0, 98.0),
            relative_lufs={"vocals": 4.0, "bass": 1.0, "other": -6.0},
            swing=0.56,
            kick_steps=(0, 7, 10),
            hat_steps=_EIGHTHS,
            kick_decay_s=0.3,
            fill_probability=0.15,
            bass_timbre="sub",
            bass_brightness_hz=400.0,
            bass_steps=((0, 6, 0), (7, 3, 0), (10, 6, 0)),
            chord_style="pad",
            chord_brightness_hz=1200.0,
            progressions=(_RAP_MINOR, _RAP_LOOP),
            bars_per_chord=2,
            vocal_note_beats=(0.25, 0.5, 0.5, 0.5, 1.0),
            vocal_phrase_beats=(6, 7, 8),
            vocal_range_semitones=5,
            vibrato_semitones=0.1,
        ),
        GenreStyle(
            name="Jazz",
            tempo_bpm=(100.0, 160.0),
            relative_lufs={"vocals": 5.0, "bass": 0.0, "other": 2.0},
            swing=0.66,
            humanize_ms=7.0,
            kick_steps=(0,),
            snare_steps=(),
            ghost_snare_steps=(6, 14),
            hat_steps=(4, 12),
            ride_steps=(0, 4, 6, 8, 12, 14),
            kick_decay_s=0.18,
            fill_probability=0.2,
            bass_timbre="round",
            bass_brightness_hz=700.0,
            walking_bass=True,
            chord_style="stab",
            chord_steps=(0, 6, 14),  # Charleston comping with a push into the next bar
            chord_length_steps=5,
            chord_brightness_hz=2200.0,
            progressions=(_JAZZ_251, _JAZZ_TURNAROUND),
            vocal_note_beats=(0.5, 1.0, 1.5, 2.0),
            vibrato_semitones=0.45,
        ),
        GenreStyle(
            name="Heavy Metal",
            tempo_bpm=(140.0, 190.0),
            relative_lufs={"vocals": -2.0, "bass": -1.0, "other": 3.0},
            kick_steps=_EIGHTHS,
            kick_decay_s=0.12,
            fill_probability=0.6,
            bass_brightness_hz=1500.0,
            bass_steps=tuple((step, 2, 0) for step in _EIGHTHS),
            chord_style="power",
            chord_steps=_EIGHTHS,
            chord_length_steps=2,
            chord_brightness_hz=3500.0,
            progressions=(_METAL_AEOLIAN, _METAL_PHRYGIAN),
            vocal_note_beats=(1.0, 1.0, 2.0),
            vocal_phrase_beats=(6, 8),
        ),
        GenreStyle(
            name="Electronic",
            tempo_bpm=(120.0, 130.0),
            relative_lufs={"vocals": -1.0, "bass": 2.0, "other": 0.0},
            humanize_ms=0.0,
            kick_steps=(0, 4, 8, 12),
            hat_steps=_SIXTEENTHS,
            open_hat_steps=_OFFBEAT_EIGHTHS,
            kick_decay_s=0.35,
            fill_probability=0.1,
            bass_timbre="square",
            bass_brightness_hz=900.0,
            bass_steps=tuple((step, 2, 0) for step in _OFFBEAT_EIGHTHS),
            chord_style="pad",
            chord_brightness_hz=1800.0,
            sidechain_depth=0.6,
            progressions=(_ELECTRONIC, _AEOLIAN),
            bars_per_chord=2,
        ),
        GenreStyle(
            name="Country",
            tempo_bpm=(95.0, 125.0),
            relative_lufs={"vocals": 4.0, "bass": -3.0, "other": 1.0},
            ghost_snare_steps=(2, 6, 10, 14),
            bass_timbre="round",
            bass_steps=((0, 7, 0), (8, 7, 7)),  # root and fifth on 1 and 3
            chord_style="strum",
            chord_steps=(0, 4, 6, 8, 12, 14),
            chord_length_steps=3,
            chord_brightness_hz=3500.0,
            progressions=(_COUNTRY, _COUNTRY_TURN),
        ),
        GenreStyle(
            name="Reggae",
            tempo_bpm=(68.0, 84.0),
            relative_lufs={"vocals": 3.0, "bass": 4.0, "other": -3.0},
            swing=0.6,
            kick_steps=(8,),
            snare_steps=(8,),
            hat_steps=_SIXTEENTHS,
            fill_probability=0.25,
            bass_timbre="round",
            bass_brightness_hz=500.0,
            bass_steps=((2, 2, 0), (4, 2, 7), (6, 4, 0), (10, 2, 12), (12, 4, 7)),
            chord_style="stab",
            chord_steps=(4, 12),  # the skank on the off-beats
            chord_length_steps=2,
            chord_brightness_hz=3000.0,
            pad_level=0.3,
            progressions=(_REGGAE, _REGGAE_MINOR),
            bars_per_chord=2,
        ),
        GenreStyle(
            name="Singer/Songwriter",
            tempo_bpm=(72.0, 100.0),
            relative_lufs={"vocals": 6.0, "bass": -4.0, "other": 4.0},
            kick_steps=(0, 10),
            kick_decay_s=0.18,
            fill_probability=0.2,
            bass_timbre="round",
            bass_brightness_hz=600.0,
            bass_steps=((0, 7, 0), (8, 7, 7)),
            chord_style="strum",
            chord_steps=(0, 3, 6, 8, 10, 12, 14),
            chord_length_steps=4,
            chord_brightness_hz=4000.0,
            progressions=(_SONGWRITER, _POP),
            vocal_note_beats=(0.5, 1.0, 1.5, 2.0, 3.0),
        ),
    )
}


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


def _check_seconds(seconds: float) -> None:
    if not (math.isfinite(seconds) and seconds >= MIN_SONG_SECONDS):
        raise ValueError(
            f"seconds must be a finite number >= {MIN_SONG_SECONDS} "
            f"(loudness is measured on 400 ms blocks), got {seconds!r}"
        )


def _check_genre(genre: str, styles: Mapping[str, GenreStyle]) -> None:
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
    _check_seconds(seconds)
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("instrumental_fraction", instrumental_fraction)
    chosen = list(styles) if genres is None else list(dict.fromkeys(genres))
    if not chosen:
        raise ValueError(f"genres must name at least one genre; known genres: {', '.join(styles)}")
    for genre in chosen:
        _check_genre(genre, styles)

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
    _check_genre(plan.genre, styles)
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
class _Arrangement:
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
        return (bar * _BEATS_PER_BAR + beat + within) * self.beat_seconds

    def chord(self, bar: int) -> tuple[int, tuple[int, ...]]:
        """Root pitch class and intervals of the chord playing in ``bar``."""
        degree, quality = self.progression[
            (bar // self.style.bars_per_chord) % len(self.progression)
        ]
        return (self.tonic + degree) % 12, _CHORD_INTERVALS[quality]

    def is_chorus(self, bar: int) -> bool:
        return bar >= self.intro_bars and ((bar - self.intro_bars) // _SECTION_BARS) % 2 == 1

    def sample(self, seconds: float) -> int:
        return int(round(seconds * self.sample_rate))


def _plan_arrangement(plan: SongPlan, style: GenreStyle, sample_rate: int) -> _Arrangement:
    rng = np.random.default_rng([plan.seed, _ARRANGEMENT_STREAM])
    tempo = float(rng.uniform(*style.tempo_bpm))
    tonic = int(rng.integers(12))
    progression = style.progressions[int(rng.integers(len(style.progressions)))]
    bar_seconds = _BEATS_PER_BAR * 60.0 / tempo
    song_bars = plan.seconds / bar_seconds
    # A short intro without bass and vocals only where it leaves most of the song to them.
    intro_bars = 0 if song_bars < 12 else (2 if song_bars < 40 else 4)
    return _Arrangement(
        style=style,
        sample_rate=sample_rate,
        n_samples=int(round(plan.seconds * sample_rate)),
        tempo_bpm=tempo,
        tonic=tonic,
        progression=progression,
        n_bars=int(math.ceil(song_bars)) + 1,
        intro_bars=intro_bars,
    )


# --------------------------------------------------------------------------------------------
# Signal helpers


def _midi_to_hz(midi: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69.0) / 12.0)


def _pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power panning, scaled so a centred source keeps unit gain per channel."""
    angle = (pan + 1.0) * math.pi / 4
    return math.cos(angle) * math.sqrt(2), math.sin(angle) * math.sqrt(2)


def _silence(arrangement: _Arrangement) -> np.ndarray:
    """An empty (n_samples, 2) float32 stem."""
    return np.zeros((arrangement.n_samples, 2), dtype=np.float32)


def _panned(sound: np.ndarray, pan: float) -> np.ndarray:
    """A mono sound as a (length, 2) float32 stereo sound placed at ``pan`` (-1 left, 1 right)."""
    left, right = _pan_gains(pan)
    return np.stack([sound * left, sound * right], axis=-1).astype(np.float32)


def _add_at(buffer: np.ndarray, start: int, sound: np.ndarray, gain: float = 1.0) -> None:
    """Add gain times a (length, 2) sound into a stereo buffer at ``start``, clipped to it.

    Sounds are panned once and then only scaled: broadcasting a mono sound against
    per-channel gains at every hit is an order of magnitude slower.
    """
    if start >= len(buffer) or start + len(sound) <= 0:
        return
    offset = max(0, -start)
    start = max(0, start)
    end = min(len(buffer), start + len(sound) - offset)
    buffer[start:end] += sound[offset : offset + end - start] * np.float32(gain)


_TABLE_SIZE = 2048


def _harmonic_table(amplitudes: np.ndarray) -> np.ndarray:
    """One period of sum_k a_k sin(2 pi k x), with a wrap-around sample for interpolation."""
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=complex)
    count = min(len(amplitudes), _TABLE_SIZE // 2 - 1)
    spectrum[1 : count + 1] = -0.5j * _TABLE_SIZE * amplitudes[:count]
    table = np.fft.irfft(spectrum, _TABLE_SIZE)
    return np.append(table, table[0])


def _lookup(table: np.ndarray, phase_cycles: np.ndarray) -> np.ndarray:
    """Read a wavetable at a non-negative phase in cycles, with linear interpolation.

    The phase stays float64 (it grows to thousands of cycles); the rest runs in float32 and
    in place, which makes this several times faster on long notes and phrases.
    """
    values = table[:-1].astype(np.float32)
    slopes = np.diff(table).astype(np.float32)
    position = phase_cycles * _TABLE_SIZE
    whole = position.astype(np.int64)
    fraction = (position - whole).astype(np.float32)
    whole &= _TABLE_SIZE - 1  # the table size is a power of two: this wraps the phase
    out = np.take(slopes, whole)
    out *= fraction
    out += np.take(values, whole)
    return out


def _upsample_linear(values: np.ndarray, hop: int, n: int) -> np.ndarray:
    """Linear interpolation of control values, one every ``hop`` samples, to ``n`` samples."""
    ramp = (np.arange(hop) / hop).astype(values.dtype)
    steps = np.diff(values)
    return (values[:-1, None] + steps[:, None] * ramp).ravel()[:n]


def _lowpassed_saw(frequency: float, cutoff_hz: float, sample_rate: int, odd_only=False):
    """Band-limited sawtooth (or square) with a 2nd-order low-pass roll-off above cutoff."""
    count = max(1, int(0.45 * sample_rate / frequency))
    harmonics = np.arange(1, count + 1, dtype=float)
    amplitudes = 1.0 / harmonics / np.sqrt(1.0 + (harmonics * frequency / cutoff_hz) ** 4)
    if odd_only:
        amplitudes[1::2] = 0.0
    return _harmonic_table(amplitudes)


def _noise_filter(kind: str, cutoff_hz, sample_rate: int) -> np.ndarray:
    nyquist = sample_rate / 2
    cutoff = np.minimum(np.asarray(cutoff_hz, dtype=float), 0.9 * nyquist)
    return signal.butter(2, cutoff / nyquist, btype=kind, output="sos")


# --------------------------------------------------------------------------------------------
# Drums


@dataclass
class _DrumKit:
    kick: np.ndarray
    snares: list[np.ndarray]
    hats: list[np.ndarray]
    open_hat: np.ndarray
    rides: list[np.ndarray]
    crash: np.ndarray
    toms: list[np.ndarray]


def _build_kit(style: GenreStyle, sample_rate: int, rng: np.random.Generator) -> _DrumKit:
    def times(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * sample_rate)) / sample_rate

    def noise(t: np.ndarray) -> np.ndarray:
        return rng.standard_normal(len(t))

    def swept_sine(t, start_hz, end_hz, sweep_s, decay_s):
        frequency = end_hz + (start_hz - end_hz) * np.exp(-t / sweep_s)
        phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
        return np.sin(phase) * np.exp(-t / decay_s)

    t = times(max(0.4, 2.5 * style.kick_decay_s))
    kick_hz = rng.uniform(45, 60)
    click = signal.sosfilt(_noise_filter("highpass", 2000, sample_rate), noise(t))
    kick = swept_sine(t, 160, kick_hz, 0.03, style.kick_decay_s) + 0.3 * click * np.exp(-t / 0.003)

    t = times(0.3)
    snare_tone = rng.uniform(170, 220)
    band = _noise_filter("bandpass", [900, 7000], sample_rate)
    snares = [
        signal.sosfilt(band, noise(t)) * np.exp(-t / rng.uniform(0.05, 0.08))
        + 0.6 * swept_sine(t, snare_tone * 1.3, snare_tone, 0.01, 0.05)
        for _ in range(3)
    ]

    high = _noise_filter("highpass", 7000, sample_rate)
    t = times(0.12)
    hats = [
        signal.sosfilt(high, noise(t)) * np.exp(-t / rng.uniform(0.015, 0.025)) for _ in range(3)
    ]
    t = times(0.4)
    open_hat = signal.sosfilt(high, noise(t)) * np.exp(-t / 0.12)

    # Ride and crash: bright noise plus a few inharmonic partials for the metallic ping.
    def cymbal(seconds, cutoff_hz, decay_s, partials_hz):
        t = times(seconds)
        wash = signal.sosfilt(_noise_filter("highpass", cutoff_hz, sample_rate), noise(t))
        ping = sum(np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)) for hz in partials_hz)
        return (wash + 0.15 * ping) * np.exp(-t / decay_s)

    ride_partials = [hz for hz in rng.uniform(2800, 6500, size=3) if hz < 0.45 * sample_rate]
    rides = [cymbal(0.9, 5000, 0.35, ride_partials) for _ in range(2)]
    crash = cymbal(2.0, 3500, 0.6, [])

    t = times(0.45)
    toms = [swept_sine(t, hz * 1.4, hz, 0.04, 0.2) for hz in (200.0, 150.0, 100.0)]

    def finished(sound: np.ndarray) -> np.ndarray:
        # A 10 ms fade-out: cutting a still-ringing sound would click.
        fade = np.clip(np.arange(len(sound))[::-1] / (0.01 * sample_rate), 0, 1)
        return (sound * fade).astype(np.float32)

    return _DrumKit(
        kick=finished(kick),
        snares=[finished(snare) for snare in snares],
        hats=[finished(hat) for hat in hats],
        open_hat=finished(open_hat),
        rides=[finished(ride) for ride in rides],
        crash=finished(crash),
        toms=[finished(tom) for tom in toms],
    )


def _render_drums(arrangement: _Arrangement, rng: np.random.Generator) -> np.ndarray:
    style = arrangement.style
    sample_rate = arrangement.sample_rate
    kit = _build_kit(style, sample_rate, rng)
    buffer = _silence(arrangement)
    hat_pan = float(rng.choice([-0.35, 0.35]))
    jitter_s = style.humanize_ms / 1000

    stereo_sounds: dict[tuple[int, float], np.ndarray] = {}

    def hit(bar: int, step: float, sound: np.ndarray, gain: float, pan: float) -> None:
        seconds = arrangement.step_time(bar, step) + (rng.normal(0, jitter_s) if jitter_s else 0)
        velocity = float(np.clip(1 + rng.normal(0, 0.08), 0.7, 1.25))
        key = (id(sound), pan)  # the kit's sounds outlive this render
        if key not in stereo_sounds:
            stereo_sounds[key] = _panned(sound, pan)
        start = arrangement.sample(max(seconds, 0.0))
        _add_at(buffer, start, stereo_sounds[key], gain * velocity)

    # At slow tempos a drummer fills the gaps between eighth-note hats with soft sixteenths;
    # it also keeps the drum stem free of near-silent quarter seconds.
    ghost_hat_steps = ()
    if 2 * arrangement.step_seconds > 0.22:
        hats = set(style.hat_steps)
        ghost_hat_steps = tuple(s + 1 for s in sorted(hats) if s + 1 not in hats and s + 2 in hats)
        ghost_hat_steps += (15,) if {14, 0} <= hats and 15 not in hats else ()

    previous_was_fill = False
    for bar in range(arrangement.n_bars):
        section_start = bar == 0 or (
            bar >= arrangement.intro_bars and (bar - arrangement.intro_bars) % _SECTION_BARS == 0
        )
        fill = bar % 4 == 3 and rng.random() < style.fill_probability
        # A fill takes over the last beat; the kick, snare and hats make room for it.
        last_step = 12 if fill else _STEPS_PER_BAR
        if section_start or previous_was_fill:
            hit(bar, 0, kit.crash, 0.5, float(rng.uniform(-0.5, 0.5)))
        for step in style.kick_steps:
            if step < last_step:
                hit(bar, step, kit.kick, 1.0, 0.0)
        if not fill and rng.random() < 0.2:
            hit(bar, 14, kit.kick, 0.8, 0.0)  # an occasional pickup kick into the next bar
        for step in style.snare_steps:
            if step < last_step:
                hit(bar, step, kit.snares[int(rng.integers(3))], 0.8, 0.05)
        for step in style.ghost_snare_steps:
            if step < last_step:
                hit(bar, step, kit.snares[int(rng.integers(3))], 0.18, 0.05)
        for step in style.hat_steps:
            if step < last_step:
                accent = 1.0 if step % 4 == 0 else 0.7
                hit(bar, step, kit.hats[int(rng.integers(3))], 0.4 * accent, hat_pan)
        for step in ghost_hat_steps:
            if step < last_step:
                hit(bar, step, kit.hats[int(rng.integers(3))], 0.18, hat_pan)
        for step in style.open_hat_steps:
            if step < last_step:
                hit(bar, step, kit.open_hat, 0.25, hat_pan)
        for step in style.ride_steps:
            hit(bar, step, kit.rides[int(rng.integers(2))], 0.35, -hat_pan)
        if fill:
            if rng.random() < 0.5:
                for index, step in enumerate((12, 13, 14, 15)):
                    tom = min(index * 3 // 4, 2)
                    hit(bar, step, kit.toms[tom], 0.6 + 0.1 * index, 0.4 - 0.4 * tom)
            else:
                for index, step in enumerate((12, 13, 14, 15)):
                    hit(bar, step, kit.snares[index % 3], 0.45 + 0.12 * index, 0.05)
        previous_was_fill = fill
    return buffer


# --------------------------------------------------------------------------------------------
# Bass


def _bass_table(timbre: str, frequency: float, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    if timbre == "sub":
        return _harmonic_table(np.array([1.0, 0.3, 0.12]))
    if timbre == "round":
        count = max(1, int(min(0.45 * sample_rate, 4 * cutoff_hz) / frequency))
        harmonics = np.arange(1, count + 1, dtype=float)
        return _harmonic_table(1.0 / harmonics**2 / (1 + (harmonics * frequency / cutoff_hz) ** 2))
    return _lowpassed_saw(frequency, cutoff_hz, sample_rate, odd_only=timbre == "square")


def _bass_midi(root_pc: int, interval: int) -> int:
    """A bass note in MIDI 28..45 (41-110 Hz fundamentals)."""
    midi = 28 + (root_pc - 4) % 12 + interval
    while midi > 45:
        midi -= 12
    return midi


def _bass_events(
    arrangement: _Arrangement, rng: np.random.Generator
) -> list[tuple[float, float, int, float]]:
    """(onset s, duration s, MIDI note, velocity) for every bass note after the intro."""
    style = arrangement.style
    step_s = arrangement.step_seconds
    events = []
    for bar in range(arrangement.intro_bars, arrangement.n_bars):
        root, intervals = arrangement.chord(bar)
        if style.walking_bass:
            next_root, _ = arrangement.chord(bar + 1)
            approach = _bass_midi(next_root, 0) + int(rng.choice([-1, 1]))
            tones = [
                _bass_midi(root, 0),
                _bass_midi(root, int(rng.choice(intervals[1:]))),
                _bass_midi(root, int(rng.choice(intervals[1:]))),
                min(max(approach, 28), 45),
            ]
            pattern = [(beat * 4, 4, tone) for beat, tone in enumerate(tones)]
        else:
            pattern = [
                (step, length, _bass_midi(root, iv)) for step, length, iv in style.bass_steps
            ]
        for step, length, midi in pattern:
            onset = arrangement.step_time(bar, step)
            velocity = float(np.clip(1 + rng.normal(0, 0.07), 0.8, 1.2))
            events.append((onset, length * step_s * 0.92, midi, velocity))
    return events


def _render_bass(arrangement: _Arrangement, rng: np.random.Generator) -> np.ndarray:
    style = arrangement.style
    sample_rate = arrangement.sample_rate
    buffer = _silence(arrangement)
    decay_s = {"sub": 0.9, "round": 0.5, "saw": 0.35, "square": 0.3}[style.bass_timbre]
    notes: dict[tuple[int, int], np.ndarray] = {}

    def render(midi: int, n: int) -> np.ndarray:
        frequency = float(_midi_to_hz(midi))
        t = np.arange(n) / sample_rate
        bright = _bass_table(style.bass_timbre, frequency, style.bass_brightness_hz, sample_rate)
        dark = _bass_table(style.bass_timbre, frequency, 200.0, sample_rate)
        # The 808-style sub starts slightly sharp and drops onto the note.
        bend = 1 + (0.12 if style.bass_timbre == "sub" else 0.02) * np.exp(-t / 0.03)
        phase = np.cumsum(frequency * bend) / sample_rate
        brightness = np.exp(-t / 0.08)  # a pluck: bright attack, darker sustain
        wave = _lookup(dark, phase) * (1 - brightness) + _lookup(bright, phase) * brightness
        envelope = np.minimum(t / 0.004, 1) * np.exp(-t / decay_s)
        envelope *= np.clip((t[-1] - t) / 0.015, 0, 1)
        if style.bass_timbre == "sub":
            wave = np.tanh(1.5 * wave)
        return _panned(wave * envelope, 0.0)

    for onset, duration, midi, velocity in _bass_events(arrangement, rng):
        n = max(int(duration * sample_rate), 16)
        key = (midi, n)
        if key not in notes:
            notes[key] = render(midi, n)
        _add_at(buffer, arrangement.sample(onset), notes[key], velocity)
    return buffer


# --------------------------------------------------------------------------------------------
# Other: chords


def _voicing(root_pc: int, intervals: Sequence[int], power: bool) -> tuple[int, ...]:
    """Chord tones around middle C; power chords sit an octave lower, like a guitar riff."""
    if power:
        base = 40 + (root_pc - 4) % 12
        return tuple(base + interval for interval in intervals)
    return tuple(sorted(55 + (root_pc + interval - 55) % 12 for interval in intervals))


def _render_other(arrangement: _Arrangement, rng: np.random.Generator) -> np.ndarray:
    style = arrangement.style
    sample_rate = arrangement.sample_rate
    buffer = _silence(arrangement)
    spread = float(rng.uniform(0.4, 0.7))
    detune_cents = float(rng.uniform(4, 9))
    cache: dict[tuple, np.ndarray] = {}

    def render(kind: str, notes: tuple[int, ...], n: int, upstroke: bool) -> np.ndarray:
        t = np.arange(n) / sample_rate
        left = np.zeros(n)
        right = np.zeros(n)
        strum_gap_s = 0.012 if kind == "strum" else 0.0
        order = notes[::-1] if upstroke else notes
        for index, midi in enumerate(order):
            frequency = float(_midi_to_hz(midi))
            table = _lowpassed_saw(frequency, style.chord_brightness_hz, sample_rate)
            delay = index * strum_gap_s
            local = np.maximum(t - delay, 0)
            if kind == "pad":
                envelope = np.minimum(t / 0.15, 1) * np.clip((t[-1] - t) / 0.25, 0, 1)
            elif kind == "power":
                envelope = np.minimum(t / 0.003, 1) * np.exp(-t / 0.25)
                envelope *= np.clip((t[-1] - t) / 0.01, 0, 1)
            else:  # plucked strums and piano-like stabs; long stabs ring longer
                decay = 0.7 if kind == "strum" else max(0.3, 0.5 * t[-1])
                envelope = (t >= delay) * np.minimum(local / 0.003, 1) * np.exp(-local / decay)
                envelope *= np.clip((t[-1] - t) / 0.03, 0, 1)
            # Two detuned voices per note, one each side, widen the image.
            for side, cents in ((left, -detune_cents), (right, detune_cents)):
                phase = frequency * 2 ** (cents / 1200) * t + rng.random()
                side += _lookup(table, phase) * envelope
        if kind == "power":
            left, right = np.tanh(4 * left), np.tanh(4 * right)
        mix = 0.5 + 0.5 * spread
        stereo = np.stack([mix * left + (1 - mix) * right, mix * right + (1 - mix) * left], axis=-1)
        return stereo.astype(np.float32)

    def play(kind: str, onset: float, seconds: float, bar: int, gain: float, upstroke=False):
        root, intervals = arrangement.chord(bar)
        if kind == "power":
            intervals = _CHORD_INTERVALS["5"]
        notes = _voicing(root, intervals, kind == "power")
        n = max(int(seconds * sample_rate), 16)
        key = (kind, notes, n, upstroke)
        if key not in cache:
            cache[key] = render(kind, notes, n, upstroke)
        velocity = float(np.clip(1 + rng.normal(0, 0.06), 0.8, 1.2))
        _add_at(buffer, arrangement.sample(max(onset, 0.0)), cache[key], gain * velocity)

    chord_span_s = style.bars_per_chord * _BEATS_PER_BAR * arrangement.beat_seconds
    for bar in range(arrangement.n_bars):
        gain = 1.2 if arrangement.is_chorus(bar) else 1.0
        chord_starts = bar % style.bars_per_chord == 0
        if style.chord_style == "pad":
            if chord_starts:
                play("pad", arrangement.step_time(bar, 0), chord_span_s + 0.1, bar, gain)
            continue
        if style.pad_level > 0 and chord_starts:  # e.g. the organ under a reggae skank
            pad_gain = gain * style.pad_level
            play("pad", arrangement.step_time(bar, 0), chord_span_s + 0.1, bar, pad_gain)
        for step in style.chord_steps:
            onset = arrangement.step_time(bar, step)
            seconds = style.chord_length_steps * arrangement.step_seconds
            upstroke = style.chord_style == "strum" and step % 4 != 0
            step_gain = gain * (0.75 if upstroke else 1.0)
            play(style.chord_style, onset, seconds, bar, step_gain, upstroke)

    if style.sidechain_depth > 0:
        # Duck the chords after each beat, the "pumping" of a side-chained compressor.
        beat_n = int(math.ceil(arrangement.beat_seconds * sample_rate))
        since_beat = np.arange(beat_n) / sample_rate
        duck = (1 - style.sidechain_depth * np.exp(-since_beat / 0.09)).astype(np.float32)
        for beat in range(int(arrangement.n_samples / sample_rate / arrangement.beat_seconds) + 1):
            first = arrangement.sample(beat * arrangement.beat_seconds)
            segment = buffer[first : first + beat_n]
            segment *= duck[: len(segment), None]
    return buffer


# --------------------------------------------------------------------------------------------
# Vocals

# Formant frequencies (Hz) of sung vowels (Peterson & Barney averages) and their bandwidths.
_VOWEL_FORMANTS = {
    "a": (730.0, 1090.0, 2440.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (390.0, 1990.0, 2550.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (440.0, 1020.0, 2240.0),
}
_FORMANT_BANDWIDTHS = (80.0, 100.0, 140.0)
_VOWELS = tuple(_VOWEL_FORMANTS)
_VOWEL_WEIGHTS = np.array([0.3, 0.2, 0.15, 0.25, 0.1])


def _glottal_spectrum() -> np.ndarray:
    """Spectrum of one period of the Rosenberg glottal-flow derivative (voice source)."""
    phase = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    opening, closing = 0.4, 0.16
    flow = np.where(
        phase < opening,
        0.5 * (1 - np.cos(np.pi * phase / opening)),
        np.where(phase < opening + closing, np.cos(np.pi * (phase - opening) / (2 * closing)), 0.0),
    )
    derivative = np.roll(flow, -1) - flow
    spectrum = np.fft.rfft(derivative)
    return spectrum / np.abs(np.fft.irfft(spectrum, _TABLE_SIZE)).max()


_GLOTTAL_SPECTRUM = _glottal_spectrum()


def _glottal_table(max_frequency: float, sample_rate: int) -> np.ndarray:
    """The glottal source band-limited so its highest note does not alias."""
    spectrum = _GLOTTAL_SPECTRUM.copy()
    spectrum[max(2, int(0.45 * sample_rate / max_frequency)) + 1 :] = 0
    table = np.fft.irfft(spectrum, _TABLE_SIZE)
    return np.append(table, table[0])


def _formant_filter(vowel: str, shift: float, sample_rate: int) -> np.ndarray:
    """Cascade of unity-DC-gain two-pole resonators (Klatt style) for one vowel."""
    sections = []
    for frequency, bandwidth in zip(_VOWEL_FORMANTS[vowel], _FORMANT_BANDWIDTHS, strict=True):
        frequency = min(frequency * shift, 0.45 * sample_rate)
        radius = math.exp(-math.pi * bandwidth / sample_rate)
        cosine = math.cos(2 * math.pi * frequency / sample_rate)
        a1, a2 = -2 * radius * cosine, radius**2
        sections.append([1 + a1 + a2, 0.0, 0.0, 1.0, a1, a2])
    return np.array(sections)


@dataclass(frozen=True)
class _Note:
    onset: float  # seconds
    duration: float
    midi: float
    vowel: str
    velocity: float
    consonant: bool


@dataclass(frozen=True)
class _Voice:
    vibrato_semitones: float
    vibrato_hz: float
    breath: float  # level of the breath noise relative to the glottal pulses
    formant_shift: float  # higher voices have shorter vocal tracts, so higher formants
    noise_bank: np.ndarray


def _vocal_phrases(
    arrangement: _Arrangement, rng: np.random.Generator, low: int, high: int
) -> list[list[_Note]]:
    """Phrases of chord-tone notes, separated by rests of at least 0.7 s."""
    style = arrangement.style
    beat_s = arrangement.beat_seconds
    song_beats = arrangement.n_samples / arrangement.sample_rate / beat_s
    min_rest_beats = max(2, math.ceil(0.7 / beat_s))
    phrases = []
    beat = float(arrangement.intro_bars * _BEATS_PER_BAR)
    if arrangement.intro_bars:
        beat += float(rng.choice([-0.5, 0.0, 0.5, 1.0]))  # a pickup or a late entry
    previous = (low + high) / 2
    while beat < song_beats:
        phrase_end = beat + int(rng.choice(style.vocal_phrase_beats))
        notes = []
        while phrase_end - beat >= 0.25:
            length = min(float(rng.choice(style.vocal_note_beats)), phrase_end - beat)
            bar = int(beat // _BEATS_PER_BAR)
            root, intervals = arrangement.chord(bar)
            # Chorus melodies sit higher than verse melodies.
            lo, hi = (low + 4, high) if arrangement.is_chorus(bar) else (low, high - 4)
            candidates = np.array(
                [m for m in range(lo, hi + 1) if (m - root) % 12 in {i % 12 for i in intervals}]
            )
            weights = np.exp(-np.abs(candidates - previous) / 2.5)
            midi = float(rng.choice(candidates, p=weights / weights.sum()))
            if rng.random() < 0.15:  # a passing tone a step away
                midi += float(rng.choice([-2, -1, 1, 2]))
            gap_s = 0.06 if rng.random() < 0.3 else 0.0
            notes.append(
                _Note(
                    onset=beat * beat_s,
                    duration=max(length * beat_s - gap_s, 0.08),
                    midi=midi,
                    vowel=str(rng.choice(_VOWELS, p=_VOWEL_WEIGHTS)),
                    velocity=float(np.clip(1 + rng.normal(0, 0.1), 0.7, 1.3)),
                    consonant=rng.random() < 0.3,
                )
            )
            previous = midi
            beat += length
        phrases.append(notes)
        beat = phrase_end + min_rest_beats + int(rng.integers(0, 3))
    return phrases


def _render_phrase(
    notes: list[_Note], sample_rate: int, voice: _Voice, rng: np.random.Generator
) -> tuple[int, np.ndarray]:
    """Render one phrase; returns its first sample and its mono float32 signal."""
    attack_s, release_s, crossfade_s = 0.04, 0.06, 0.025
    start = int(round(notes[0].onset * sample_rate))
    onsets = np.array([int(round(note.onset * sample_rate)) - start for note in notes])
    ends = np.array(
        [int(round((note.onset + note.duration) * sample_rate)) - start for note in notes]
    )
    n = int(ends[-1] + release_s * sample_rate)

    # Pitch and loudness contours change slowly: compute them about every millisecond.
    hop = max(1, sample_rate // 1000)
    control = np.arange(0, n + 2 * hop, hop)
    # A note owns the samples up to the next onset, holding its pitch through any gap.
    owner = np.searchsorted(onsets, control, side="right") - 1
    since_onset = (control - onsets[owner]) / sample_rate
    until_end = (ends[owner] - control) / sample_rate

    midi = np.array([note.midi for note in notes])[owner]
    midi = uniform_filter1d(midi, max(1, round(0.04 * sample_rate / hop)), mode="nearest")
    midi -= 0.5 * np.exp(-since_onset / 0.05)  # singers scoop up into a note
    vibrato_depth = voice.vibrato_semitones * np.clip((since_onset - 0.15) / 0.25, 0, 1)
    midi += vibrato_depth * np.sin(2 * np.pi * voice.vibrato_hz * control / sample_rate)
    frequency = _midi_to_hz(midi)
    phase = np.concatenate([[0.0], np.cumsum(frequency[:-1]) * hop / sample_rate])

    # A legato note (no gap before it) starts from part of the level instead of silence.
    legato = np.array([0.0] + [0.5 * (ends[i] >= onsets[i + 1]) for i in range(len(notes) - 1)])
    attack = legato[owner] + (1 - legato[owner]) * np.minimum(since_onset / attack_s, 1)
    release = np.clip(1 + until_end / release_s, 0, 1)  # fades out after the note ends
    velocity = np.array([note.velocity for note in notes])[owner]
    envelope = _upsample_linear((attack * release * velocity).astype(np.float32), hop, n)

    table = _glottal_table(float(frequency.max()), sample_rate)
    source = _lookup(table, _upsample_linear(phase, hop, n) + rng.random())
    source += np.float32(voice.breath) * _noise(voice.noise_bank, n, rng)
    excitation = source * envelope

    # Each note through its own vowel filter, cross-faded into its neighbours.
    out = np.zeros(n, dtype=np.float32)
    margin = int(crossfade_s * sample_rate)
    for number, note in enumerate(notes):
        first = max(onsets[number] - margin, 0)
        last = n if number == len(notes) - 1 else min(onsets[number + 1] + margin, n)
        formants = _formant_filter(note.vowel, voice.formant_shift, sample_rate)
        segment = signal.sosfilt(formants, excitation[first:last])
        if number > 0:
            head = np.arange(first, min(first + 2 * margin, last))
            segment[: len(head)] *= np.clip((head - onsets[number] + margin) / (2 * margin), 0, 1)
        if number < len(notes) - 1:
            tail = np.arange(max(last - 2 * margin, first), last)
            fade = np.clip((onsets[number + 1] + margin - tail) / (2 * margin), 0, 1)
            segment[len(segment) - len(tail) :] *= fade
        out[first:last] += segment
        if note.consonant:
            # A short sibilant before the vowel ("s", "t"): a high-passed noise burst.
            burst_n = int(0.05 * sample_rate)
            burst_start = max(onsets[number] - burst_n // 2, 0)
            burst = np.diff(_noise(voice.noise_bank, burst_n + 1, rng)) * np.hanning(burst_n)
            stop = min(burst_start + burst_n, n)
            out[burst_start:stop] += 0.25 * note.velocity * burst[: stop - burst_start]
    return start, out


def _noise(bank: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of white noise read from a random place in a pre-drawn bank.

    Drawing fresh normal deviates for every vocal sample would dominate the render time.
    """
    offset = int(rng.integers(len(bank)))
    repeats = -(-(offset + n) // len(bank))
    return np.tile(bank, repeats)[offset : offset + n] if repeats > 1 else bank[offset : offset + n]


def _render_vocals(arrangement: _Arrangement, rng: np.random.Generator) -> np.ndarray:
    style = arrangement.style
    sample_rate = arrangement.sample_rate
    buffer = _silence(arrangement)
    high_voice = rng.random() < 0.5
    # A low voice spans about D3-G4 (147-392 Hz), a high one A3-E5 (220-659 Hz).
    low, high = (57, 76) if high_voice else (50, 67)
    centre = (low + high) // 2
    half_range = max(style.vocal_range_semitones // 2, 3)
    low, high = max(low, centre - half_range - 2), min(high, centre + half_range + 2)
    voice = _Voice(
        vibrato_semitones=style.vibrato_semitones * rng.uniform(0.8, 1.2),
        vibrato_hz=rng.uniform(4.8, 6.2),
        breath=rng.uniform(0.03, 0.08),
        formant_shift=1.12 if high_voice else 1.0,
        noise_bank=rng.standard_normal(3 * sample_rate, dtype=np.float32),
    )
    for notes in _vocal_phrases(arrangement, rng, low, high):
        if notes:
            start, phrase = _render_phrase(notes, sample_rate, voice, rng)
            centred = np.repeat(phrase[:, None], 2, axis=1)  # the lead voice sits in the middle
            _add_at(buffer, start, centred)
    return buffer


# --------------------------------------------------------------------------------------------
# Levels


def _gain_for_loudness(mean_squares: np.ndarray, target_lufs: float, gain: float = 1.0) -> float:
    """The gain that brings audio to ``target_lufs``.

    Loudness is not exactly scale-invariant: the -70 LUFS absolute gate lets quiet blocks
    (a voice's fading tail) in or out, which moves the relative gate. A few fixed-point steps
    on the block energies settle that without filtering the audio again.
    """
    for _ in range(8):
        error = target_lufs - gated_loudness(mean_squares, gain)
        if abs(error) < 1e-4:
            break
        gain *= 10 ** (error / 20)
    return gain


def synthesize_song(
    plan: SongPlan,
    sample_rate: int = 44100,
    styles: Mapping[str, GenreStyle] = DEFAULT_GENRES,
    drums_lufs: float = -20.0,
) -> dict[str, np.ndarray]:
    """Render the four stems of ``plan`` as float32 arrays of shape (n_samples, 2).

    The drums are set to ``drums_lufs`` integrated loudness (ITU-R BS.1770, as measured by
    ``pyloudnorm.Meter(sample_rate).integrated_loudness``) and every other stem so that its
    loudness minus the drums' equals :func:`drawn_relative_lufs`. If any stem would peak
    above 0.99, the whole song is turned down (the drums then sit below ``drums_lufs``) and
    the relative levels are kept. The vocals of an instrumental song are digital silence.
    The same plan gives bit-identical stems.
    """
    _check_genre(plan.genre, styles)
    _check_seconds(plan.seconds)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise ValueError(f"sample_rate must be an integer, got {sample_rate!r}")
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be >= {MIN_SAMPLE_RATE} Hz, got {sample_rate!r}")
    if not math.isfinite(drums_lufs):
        raise ValueError(f"drums_lufs must be a finite loudness in LUFS, got {drums_lufs!r}")
    sample_rate = int(sample_rate)
    style = styles[plan.genre]
    arrangement = _plan_arrangement(plan, style, sample_rate)

    def stream(number: int) -> np.random.Generator:
        return np.random.default_rng([plan.seed, number])

    stems = {
        "drums": _render_drums(arrangement, stream(_DRUMS_STREAM)),
        "bass": _render_bass(arrangement, stream(_BASS_STREAM)),
        "other": _render_other(arrangement, stream(_CHORDS_STREAM)),
        "vocals": (
            _silence(arrangement)
            if plan.instrumental
            else _render_vocals(arrangement, stream(_VOCALS_STREAM))
        ),
    }

    drawn = drawn_relative_lufs(plan, styles)
    audible = [stem for stem in STEM_NAMES if stem == "drums" or math.isfinite(drawn[stem])]
    mean_squares = {stem: gating_block_powers(stems[stem], sample_rate) for stem in audible}
    for stem in audible:
        if not math.isfinite(gated_loudness(mean_squares[stem])):
            raise RuntimeError(f"{plan.name}: the {stem} stem came out silent")
    peaks = {stem: max(float(audio.max()), -float(audio.min())) for stem, audio in stems.items()}

    def balance(drums_gain: float) -> dict[str, float]:
        drums = gated_loudness(mean_squares["drums"], drums_gain)
        gains = {stem: 0.0 for stem in STEM_NAMES}  # an instrumental's vocals stay silent
        gains["drums"] = drums_gain
        for stem in audible[1:]:
            gains[stem] = _gain_for_loudness(mean_squares[stem], drums + drawn[stem])
        return gains

    gains = balance(_gain_for_loudness(mean_squares["drums"], drums_lufs))
    for _ in range(4):
        peak = max(gains[stem] * peaks[stem] for stem in STEM_NAMES)
        if peak <= _PEAK_TARGET:
            break
        # Turn the whole song down, then re-balance at the new level (the gates may move).
        gains = balance(gains["drums"] * _PEAK_TARGET / peak)
    for stem, audio in stems.items():
        audio *= np.float32(gains[stem])
    return stems
