"""The other stem: chords as pads, strums, stabs or distorted power chords."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from anchormix_kedro.instruction_data.synthetic.plan import BEATS_PER_BAR, Arrangement
from anchormix_kedro.instruction_data.synthetic.sound import (
    add_at,
    lookup,
    lowpassed_saw,
    midi_to_hz,
    silence,
)
from anchormix_kedro.instruction_data.synthetic.styles import CHORD_INTERVALS


def _voicing(root_pc: int, intervals: Sequence[int], power: bool) -> tuple[int, ...]:
    """Chord tones around middle C; power chords sit an octave lower, like a guitar riff."""
    if power:
        base = 40 + (root_pc - 4) % 12
        return tuple(base + interval for interval in intervals)
    return tuple(sorted(55 + (root_pc + interval - 55) % 12 for interval in intervals))


def render_other(arrangement: Arrangement, rng: np.random.Generator) -> np.ndarray:
    style = arrangement.style
    sample_rate = arrangement.sample_rate
    buffer = silence(arrangement)
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
            frequency = float(midi_to_hz(midi))
            table = lowpassed_saw(frequency, style.chord_brightness_hz, sample_rate)
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
                side += lookup(table, phase) * envelope
        if kind == "power":
            left, right = np.tanh(4 * left), np.tanh(4 * right)
        mix = 0.5 + 0.5 * spread
        stereo = np.stack([mix * left + (1 - mix) * right, mix * right + (1 - mix) * left], axis=-1)
        return stereo.astype(np.float32)

    def play(kind: str, onset: float, seconds: float, bar: int, gain: float, upstroke=False):
        root, intervals = arrangement.chord(bar)
        if kind == "power":
            intervals = CHORD_INTERVALS["5"]
        notes = _voicing(root, intervals, kind == "power")
        n = max(int(seconds * sample_rate), 16)
        key = (kind, notes, n, upstroke)
        if key not in cache:
            cache[key] = render(kind, notes, n, upstroke)
        velocity = float(np.clip(1 + rng.normal(0, 0.06), 0.8, 1.2))
        add_at(buffer, arrangement.sample(max(onset, 0.0)), cache[key], gain * velocity)

    chord_span_s = style.bars_per_chord * BEATS_PER_BAR * arrangement.beat_seconds
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
