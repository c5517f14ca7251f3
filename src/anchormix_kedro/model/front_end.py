"""The audio front end every model hears: Qwen2-Audio's Whisper log-mel features.

Its settings are the ``features`` parameters (conf/base/globals.yml holds them once); a
trained package records them in its manifest, so a package is always heard the way it was
trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from transformers import WhisperFeatureExtractor

# How the levelling measures the anchor: BS.1770 loudness read off the mel frames
# (:mod:`anchormix_kedro.model.loudness`), or the plain mean mel power of packages trained
# before it (which weighs the low bands far above what anyone hears).
LOUDNESS = "loudness"
MEL_POWER = "mel_power"
LEVEL_MEASURES = (LOUDNESS, MEL_POWER)
# Whisper's STFT (WhisperFeatureExtractor's defaults, which the front end keeps).
WHISPER_N_FFT = 400
WHISPER_HOP_LENGTH = 160


def check_level_measure(measure: str) -> None:
    if measure not in LEVEL_MEASURES:
        raise ValueError(
            f"front_end.anchor_level_measure {measure!r} is not one of {LEVEL_MEASURES}"
        )


@dataclass(frozen=True)
class AnchorLevel:
    """Where the levelling puts each conversation's anchor (``db``) and how it is measured."""

    db: float
    measure: str = MEL_POWER
    sampling_rate: int = 16000
    n_fft: int = WHISPER_N_FFT
    hop_length: int = WHISPER_HOP_LENGTH

    def __post_init__(self) -> None:
        check_level_measure(self.measure)

    def of_clip(self, raw: np.ndarray, frames: int) -> float:
        """The level of a cached clip's first ``frames`` log10-mel frames, in this measure."""
        from anchormix_kedro.model.features import clip_level_db
        from anchormix_kedro.model.loudness import k_weighting_band_weights, mel_loudness_db

        if self.measure == MEL_POWER:
            return clip_level_db(raw, frames)
        weights = k_weighting_band_weights(raw.shape[0], self.sampling_rate, self.n_fft)
        return mel_loudness_db(raw, frames, weights, self.hop_length / self.sampling_rate)


@dataclass(frozen=True)
class FrontEnd:
    """Mel bands, sample rate and the longest clip (seconds) the feature extractor takes.

    ``anchor_level_db``: every conversation is played with one common gain that brings its
    anchor to this level (``model.data.anchor_levelling_db``), so the model hears the
    balance and not the session's level; ``anchor_level_measure`` says how the anchor is
    measured (:data:`LEVEL_MEASURES`). ``None``: clips play as recorded.
    """

    n_mels: int
    sampling_rate: int
    max_clip_seconds: int
    anchor_level_db: float | None = None
    anchor_level_measure: str = MEL_POWER

    def __post_init__(self) -> None:
        check_level_measure(self.anchor_level_measure)

    @classmethod
    def from_params(cls, params: dict) -> FrontEnd:
        return cls(
            n_mels=int(params["n_mels"]),
            sampling_rate=int(params["sampling_rate"]),
            max_clip_seconds=int(params["max_clip_seconds"]),
            anchor_level_db=(
                None if params.get("anchor_level_db") is None else float(params["anchor_level_db"])
            ),
            # Packages that predate the measure were levelled by mean mel power.
            anchor_level_measure=str(params.get("anchor_level_measure", MEL_POWER)),
        )

    @property
    def anchor_level(self) -> AnchorLevel | None:
        """The levelling every conversation is played with; ``None``: as recorded."""
        if self.anchor_level_db is None:
            return None
        return AnchorLevel(self.anchor_level_db, self.anchor_level_measure, self.sampling_rate)

    def as_dict(self) -> dict:
        return asdict(self)

    def extractor(self, chunk_length: int | None = None) -> WhisperFeatureExtractor:
        """The Whisper feature extractor; ``chunk_length`` (seconds) overrides the window."""
        from transformers import WhisperFeatureExtractor

        return WhisperFeatureExtractor(
            feature_size=self.n_mels,
            sampling_rate=self.sampling_rate,
            chunk_length=chunk_length or self.max_clip_seconds,
        )


# Qwen2-Audio's own front end. Packages written before manifests recorded their front end
# were all trained on it.
QWEN2_AUDIO_FRONT_END = FrontEnd(n_mels=128, sampling_rate=16000, max_clip_seconds=30)
