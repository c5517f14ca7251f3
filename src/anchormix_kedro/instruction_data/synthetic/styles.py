"""Genre styles: level conventions, tempo ranges and playing patterns, with the defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

TARGET_STEMS = ("bass", "other", "vocals")


CHORD_INTERVALS = {
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
        if not self.progressions or not qualities <= set(CHORD_INTERVALS):
            raise ValueError(
                f"GenreStyle {self.name!r}: progressions need chords of {sorted(CHORD_INTERVALS)}"
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
