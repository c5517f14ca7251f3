"""The headphone and level check before the first scenario.

**Level**: the rater plays a clip of the study and sets a comfortable level, then leaves
it. **Headphones**: three trials of the antiphase test of Woods et al. (2017): three 200-Hz
tones, one 6 dB quieter, one with its right channel inverted; over headphones the quieter
one is easy to tell, over loudspeakers the inverted one sounds quietest (the channels
cancel in the air), so a rater on loudspeakers tends to pick it. Each rater gets the tones in
their own order (seeded by the rater); the number of trials answered right is stored and
reported, and the exclusion rule may use it.
"""

from __future__ import annotations

import io
import random

import numpy as np

TRIALS = 3
TONES = 3
RATE = 44100
QUIET_DB = -6.0


def trial_order(rater_id: int, trial: int) -> list[str]:
    """The three tones of a trial in the rater's order: ``quiet``, ``antiphase``, ``reference``."""
    order = ["quiet", "antiphase", "reference"]
    random.Random(f"headphone:{rater_id}:{trial}").shuffle(order)
    return order


def tone_wav(kind: str, seconds: float = 1.0, frequency: float = 200.0) -> bytes:
    """A stereo 16-bit WAV of one tone of the test (ramped on and off over 50 ms)."""
    import soundfile

    t = np.arange(int(seconds * RATE)) / RATE
    wave = 0.25 * np.sin(2 * np.pi * frequency * t)
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    wave = wave * ramp
    if kind == "quiet":
        wave = wave * 10 ** (QUIET_DB / 20)
    right = -wave if kind == "antiphase" else wave
    buffer = io.BytesIO()
    soundfile.write(buffer, np.stack([wave, right], axis=1).astype(np.float32), RATE,
                    format="WAV", subtype="PCM_16")  # fmt: skip
    return buffer.getvalue()


def score(rater_id: int, answers: dict[int, int]) -> int:
    """How many trials the rater answered right (``answers``: trial -> tone picked, 1-3)."""
    return sum(
        1 for trial in range(1, TRIALS + 1)
        if answers.get(trial) and trial_order(rater_id, trial)[answers[trial] - 1] == "quiet"
    )  # fmt: skip
