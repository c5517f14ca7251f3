"""The vocals stem: a formant-filtered glottal-pulse voice singing chord tones in phrases."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal
from scipy.ndimage import uniform_filter1d

from anchormix_kedro.instruction_data.synthetic.plan import BEATS_PER_BAR, Arrangement
from anchormix_kedro.instruction_data.synthetic.sound import (
    TABLE_SIZE,
    add_at,
    lookup,
    midi_to_hz,
    silence,
    upsample_linear,
)

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
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    opening, closing = 0.4, 0.16
    flow = np.where(
        phase < opening,
        0.5 * (1 - np.cos(np.pi * phase / opening)),
        np.where(phase < opening + closing, np.cos(np.pi * (phase - opening) / (2 * closing)), 0.0),
    )
    derivative = np.roll(flow, -1) - flow
    spectrum = np.fft.rfft(derivative)
    return spectrum / np.abs(np.fft.irfft(spectrum, TABLE_SIZE)).max()


_GLOTTAL_SPECTRUM = _glottal_spectrum()


def _glottal_table(max_frequency: float, sample_rate: int) -> np.ndarray:
    """The glottal source band-limited so its highest note does not alias."""
    spectrum = _GLOTTAL_SPECTRUM.copy()
    spectrum[max(2, int(0.45 * sample_rate / max_frequency)) + 1 :] = 0
    table = np.fft.irfft(spectrum, TABLE_SIZE)
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
    arrangement: Arrangement, rng: np.random.Generator, low: int, high: int
) -> list[list[_Note]]:
    """Phrases of chord-tone notes, separated by rests of at least 0.7 s."""
    style = arrangement.style
    beat_s = arrangement.beat_seconds
    song_beats = arrangement.n_samples / arrangement.sample_rate / beat_s
    min_rest_beats = max(2, math.ceil(0.7 / beat_s))
    phrases = []
    beat = float(arrangement.intro_bars * BEATS_PER_BAR)
    if arrangement.intro_bars:
        beat += float(rng.choice([-0.5, 0.0, 0.5, 1.0]))  # a pickup or a late entry
    previous = (low + high) / 2
    while beat < song_beats:
        phrase_end = beat + int(rng.choice(style.vocal_phrase_beats))
        notes = []
        while phrase_end - beat >= 0.25:
            length = min(float(rng.choice(style.vocal_note_beats)), phrase_end - beat)
            bar = int(beat // BEATS_PER_BAR)
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
    frequency = midi_to_hz(midi)
    phase = np.concatenate([[0.0], np.cumsum(frequency[:-1]) * hop / sample_rate])

    # A legato note (no gap before it) starts from part of the level instead of silence.
    legato = np.array([0.0] + [0.5 * (ends[i] >= onsets[i + 1]) for i in range(len(notes) - 1)])
    attack = legato[owner] + (1 - legato[owner]) * np.minimum(since_onset / attack_s, 1)
    release = np.clip(1 + until_end / release_s, 0, 1)  # fades out after the note ends
    velocity = np.array([note.velocity for note in notes])[owner]
    envelope = upsample_linear((attack * release * velocity).astype(np.float32), hop, n)

    table = _glottal_table(float(frequency.max()), sample_rate)
    source = lookup(table, upsample_linear(phase, hop, n) + rng.random())
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


def render_vocals(arrangement: Arrangement, rng: np.random.Generator) -> np.ndarray:
    style = arrangement.style
    sample_rate = arrangement.sample_rate
    buffer = silence(arrangement)
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
            add_at(buffer, start, centred)
    return buffer
