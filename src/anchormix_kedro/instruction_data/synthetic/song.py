"""Rendering one song: its four stems balanced to the drawn loudness differences."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from anchormix_kedro.instruction_data.audio import gated_loudness, gating_block_powers
from anchormix_kedro.instruction_data.synthetic.bass import render_bass
from anchormix_kedro.instruction_data.synthetic.drums import render_drums
from anchormix_kedro.instruction_data.synthetic.other import render_other
from anchormix_kedro.instruction_data.synthetic.plan import (
    BASS_STREAM,
    CHORDS_STREAM,
    DRUMS_STREAM,
    VOCALS_STREAM,
    SongPlan,
    check_genre,
    check_seconds,
    drawn_relative_lufs,
    plan_arrangement,
)
from anchormix_kedro.instruction_data.synthetic.sound import silence
from anchormix_kedro.instruction_data.synthetic.styles import DEFAULT_GENRES, GenreStyle
from anchormix_kedro.instruction_data.synthetic.vocals import render_vocals
from anchormix_kedro.vocabulary import STEM_NAMES

MIN_SAMPLE_RATE = 8000
PEAK_LIMIT = 0.99
# Scale a clipping song to below the limit, leaving room for the re-balancing afterwards.
_PEAK_TARGET = 0.97


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
    check_genre(plan.genre, styles)
    check_seconds(plan.seconds)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise ValueError(f"sample_rate must be an integer, got {sample_rate!r}")
    if sample_rate < MIN_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be >= {MIN_SAMPLE_RATE} Hz, got {sample_rate!r}")
    if not math.isfinite(drums_lufs):
        raise ValueError(f"drums_lufs must be a finite loudness in LUFS, got {drums_lufs!r}")
    sample_rate = int(sample_rate)
    style = styles[plan.genre]
    arrangement = plan_arrangement(plan, style, sample_rate)

    def stream(number: int) -> np.random.Generator:
        return np.random.default_rng([plan.seed, number])

    stems = {
        "drums": render_drums(arrangement, stream(DRUMS_STREAM)),
        "bass": render_bass(arrangement, stream(BASS_STREAM)),
        "other": render_other(arrangement, stream(CHORDS_STREAM)),
        "vocals": (
            silence(arrangement)
            if plan.instrumental
            else render_vocals(arrangement, stream(VOCALS_STREAM))
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
