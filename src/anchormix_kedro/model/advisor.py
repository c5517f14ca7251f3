"""A trained model package as an advisor for any anchor and target clips (``anchormix advise --model``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import WhisperFeatureExtractor

from anchormix_kedro.evaluation.parsing import parse_advice
from anchormix_kedro.instruction_data.advice import (
    DEFAULT_SYSTEM_PROMPT,
    audio_uri,
    conversation,
    instruction_text,
)
from anchormix_kedro.instruction_data.audio import resample, to_mono
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.features import log_mel_record
from anchormix_kedro.model.generation import generate, load_package
from anchormix_kedro.vocabulary import FORMULATIONS

MODEL_SAMPLE_RATE = 16000


@dataclass
class PackageAdvisor:
    """Wraps a loaded package; :meth:`advise` asks it about one anchor and one target clip."""

    model: object
    processor: object
    formulation: str
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_new_tokens: int = 64
    # Qwen2-Audio's front end, built once for every window asked about.
    extractor: WhisperFeatureExtractor = field(
        default_factory=lambda: WhisperFeatureExtractor(
            feature_size=128, sampling_rate=MODEL_SAMPLE_RATE, chunk_length=30
        )
    )

    def advise(
        self,
        anchor: str,
        target: str,
        anchor_audio: np.ndarray,
        target_audio: np.ndarray,
        sample_rate: int,
        genre: str | None = None,
    ) -> dict:
        """The model's advice for the target relative to the anchor, with its parsed verdict and move."""
        clips = {
            anchor: resample(to_mono(anchor_audio), sample_rate, MODEL_SAMPLE_RATE),
            target: resample(to_mono(target_audio), sample_rate, MODEL_SAMPLE_RATE),
        }
        record = log_mel_record(clips, self.extractor)
        store = FeatureStore({"input": record})
        uris = {
            "anchor_target": [audio_uri("input", anchor), audio_uri("input", target)],
            "target_only": [audio_uri("input", target)],
            "single_clip": [audio_uri("input", [anchor, target])],
        }[self.formulation]
        instruction = instruction_text(self.formulation, anchor, target, random.Random(0), genre)
        messages = conversation(self.system_prompt, uris, instruction, "")
        ((text, latency),) = generate(
            self.model, self.processor, [messages], store, 1, self.max_new_tokens
        )
        parsed = parse_advice(text)
        return {
            "advice": text,
            "verdict": parsed.direction,
            "fader_move_db": parsed.fader_move_db,
            "latency_s": latency,
        }


def load_advisor(path: str | Path) -> PackageAdvisor:
    """Load a model package folder (as saved by the fine_tuning pipeline) as an advisor."""
    model, processor, manifest = load_package(path)
    formulation = manifest.get("formulation", "anchor_target")
    if formulation not in FORMULATIONS:
        raise ValueError(f"{path}: unknown formulation {formulation!r} in the package manifest")
    system_prompt = manifest.get("system_prompt") or DEFAULT_SYSTEM_PROMPT
    return PackageAdvisor(
        model=model, processor=processor, formulation=formulation, system_prompt=system_prompt
    )
