"""Shared synthesis helpers: pitch, panning, mixing, wavetables and noise filters."""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from anchormix_kedro.instruction_data.synthetic.plan import Arrangement


def midi_to_hz(midi: np.ndarray | float) -> np.ndarray | float:
    return 440.0 * 2.0 ** ((np.asarray(midi) - 69.0) / 12.0)


def _pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power panning, scaled so a centred source keeps unit gain per channel."""
    angle = (pan + 1.0) * math.pi / 4
    return math.cos(angle) * math.sqrt(2), math.sin(angle) * math.sqrt(2)


def silence(arrangement: Arrangement) -> np.ndarray:
    """An empty (n_samples, 2) float32 stem."""
    return np.zeros((arrangement.n_samples, 2), dtype=np.float32)


def panned(sound: np.ndarray, pan: float) -> np.ndarray:
    """A mono sound as a (length, 2) float32 stereo sound placed at ``pan`` (-1 left, 1 right)."""
    left, right = _pan_gains(pan)
    return np.stack([sound * left, sound * right], axis=-1).astype(np.float32)


def add_at(buffer: np.ndarray, start: int, sound: np.ndarray, gain: float = 1.0) -> None:
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


TABLE_SIZE = 2048


def harmonic_table(amplitudes: np.ndarray) -> np.ndarray:
    """One period of sum_k a_k sin(2 pi k x), with a wrap-around sample for interpolation."""
    spectrum = np.zeros(TABLE_SIZE // 2 + 1, dtype=complex)
    count = min(len(amplitudes), TABLE_SIZE // 2 - 1)
    spectrum[1 : count + 1] = -0.5j * TABLE_SIZE * amplitudes[:count]
    table = np.fft.irfft(spectrum, TABLE_SIZE)
    return np.append(table, table[0])


def lookup(table: np.ndarray, phase_cycles: np.ndarray) -> np.ndarray:
    """Read a wavetable at a non-negative phase in cycles, with linear interpolation.

    The phase stays float64 (it grows to thousands of cycles); the rest runs in float32 and
    in place, which makes this several times faster on long notes and phrases.
    """
    values = table[:-1].astype(np.float32)
    slopes = np.diff(table).astype(np.float32)
    position = phase_cycles * TABLE_SIZE
    whole = position.astype(np.int64)
    fraction = (position - whole).astype(np.float32)
    whole &= TABLE_SIZE - 1  # the table size is a power of two: this wraps the phase
    out = np.take(slopes, whole)
    out *= fraction
    out += np.take(values, whole)
    return out


def upsample_linear(values: np.ndarray, hop: int, n: int) -> np.ndarray:
    """Linear interpolation of control values, one every ``hop`` samples, to ``n`` samples."""
    ramp = (np.arange(hop) / hop).astype(values.dtype)
    steps = np.diff(values)
    return (values[:-1, None] + steps[:, None] * ramp).ravel()[:n]


def lowpassed_saw(frequency: float, cutoff_hz: float, sample_rate: int, odd_only=False):
    """Band-limited sawtooth (or square) with a 2nd-order low-pass roll-off above cutoff."""
    count = max(1, int(0.45 * sample_rate / frequency))
    harmonics = np.arange(1, count + 1, dtype=float)
    amplitudes = 1.0 / harmonics / np.sqrt(1.0 + (harmonics * frequency / cutoff_hz) ** 4)
    if odd_only:
        amplitudes[1::2] = 0.0
    return harmonic_table(amplitudes)


def noise_filter(kind: str, cutoff_hz, sample_rate: int) -> np.ndarray:
    nyquist = sample_rate / 2
    cutoff = np.minimum(np.asarray(cutoff_hz, dtype=float), 0.9 * nyquist)
    return signal.butter(2, cutoff / nyquist, btype=kind, output="sos")
