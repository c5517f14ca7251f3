"""The audio front end every model hears: Qwen2-Audio's Whisper log-mel features.

Its settings are the ``features`` parameters (conf/base/globals.yml holds them once); a
trained package records them in its manifest, so a package is always heard the way it was
trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import WhisperFeatureExtractor


@dataclass(frozen=True)
class FrontEnd:
    """Mel bands, sample rate and the longest clip (seconds) the feature extractor takes.

    ``anchor_level_db``: every conversation is played with one common gain that brings its
    anchor to this mel-power level (``model.data.anchor_levelling_db``), so the model hears
    the balance and not the session's level. ``None``: clips play as recorded.
    """

    n_mels: int
    sampling_rate: int
    max_clip_seconds: int
    anchor_level_db: float | None = None

    @classmethod
    def from_params(cls, params: dict) -> FrontEnd:
        return cls(
            n_mels=int(params["n_mels"]),
            sampling_rate=int(params["sampling_rate"]),
            max_clip_seconds=int(params["max_clip_seconds"]),
            anchor_level_db=(
                None if params.get("anchor_level_db") is None else float(params["anchor_level_db"])
            ),
        )

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
