"""The bass stem: a plucked bass on the chord roots, or a walking bass."""

from __future__ import annotations

import numpy as np

from anchormix_kedro.instruction_data.synthetic.plan import Arrangement
from anchormix_kedro.instruction_data.synthetic.sound import (
    add_at,
    harmonic_table,
    lookup,
    lowpassed_saw,
    midi_to_hz,
    panned,
    silence,
)


def _bass_table(timbre: str, frequency: float, cutoff_hz: float, sample_rate: int) -> np.ndarray:
    if timbre == "sub":
        return harmonic_table(np.array([1.0, 0.3, 0.12]))
    if timbre == "round":
        count = max(1, int(min(0.45 * sample_rate, 4 * cutoff_hz) / frequency))
        harmonics = np.arange(1, count + 1, dtype=float)
        return harmonic_table(1.0 / harmonics**2 / (1 + (harmonics * frequency / cutoff_hz) ** 2))
    return lowpassed_saw(frequency, cutoff_hz, sample_rate, odd_only=timbre == "square")


def _bass_midi(root_pc: int, interval: int) -> int:
    """A bass note in MIDI 28..45 (41-110 Hz fundamentals)."""
    midi = 28 + (root_pc - 4) % 12 + interval
    while midi > 45:
        midi -= 12
    return midi


def _bass_events(
    arrangement: Arrangement, rng: np.random.Generator
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


def render_bass(arrangement: Arrangement, rng: np.random.Generator) -> np.ndarray:
    style = arrangement.style
    sample_rate = arrangement.sample_rate
    buffer = silence(arrangement)
    decay_s = {"sub": 0.9, "round": 0.5, "saw": 0.35, "square": 0.3}[style.bass_timbre]
    notes: dict[tuple[int, int], np.ndarray] = {}

    def render(midi: int, n: int) -> np.ndarray:
        frequency = float(midi_to_hz(midi))
        t = np.arange(n) / sample_rate
        bright = _bass_table(style.bass_timbre, frequency, style.bass_brightness_hz, sample_rate)
        dark = _bass_table(style.bass_timbre, frequency, 200.0, sample_rate)
        # The 808-style sub starts slightly sharp and drops onto the note.
        bend = 1 + (0.12 if style.bass_timbre == "sub" else 0.02) * np.exp(-t / 0.03)
        phase = np.cumsum(frequency * bend) / sample_rate
        brightness = np.exp(-t / 0.08)  # a pluck: bright attack, darker sustain
        wave = lookup(dark, phase) * (1 - brightness) + lookup(bright, phase) * brightness
        envelope = np.minimum(t / 0.004, 1) * np.exp(-t / decay_s)
        envelope *= np.clip((t[-1] - t) / 0.015, 0, 1)
        if style.bass_timbre == "sub":
            wave = np.tanh(1.5 * wave)
        return panned(wave * envelope, 0.0)

    for onset, duration, midi, velocity in _bass_events(arrangement, rng):
        n = max(int(duration * sample_rate), 16)
        key = (midi, n)
        if key not in notes:
            notes[key] = render(midi, n)
        add_at(buffer, arrangement.sample(onset), notes[key], velocity)
    return buffer
