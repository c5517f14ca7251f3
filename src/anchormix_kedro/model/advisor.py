"""A trained model package as an advisor for any anchor and target clips (``anchormix advise --model``)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers import WhisperFeatureExtractor

from anchormix_kedro.advice_language.parsing import parse_advice
from anchormix_kedro.advice_language.wording import (
    DEFAULT_SYSTEM_PROMPT,
    conversation,
    formulation_clips,
    instruction_text,
)
from anchormix_kedro.instruction_data.audio import integrated_loudness, resample, to_mono
from anchormix_kedro.instruction_data.prompts import PromptSettings, meter_sentence
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.features import log_mel_record
from anchormix_kedro.model.front_end import FrontEnd
from anchormix_kedro.model.generation import decode_advice, load_package
from anchormix_kedro.model.package import package_formulation, package_front_end
from anchormix_kedro.model.verdict_decoding import DecodingSettings, stem_pairs


@dataclass
class PackageAdvisor:
    """Wraps a loaded package; :meth:`advise` asks it about one anchor and one target clip."""

    model: object
    processor: object
    formulation: str
    front_end: FrontEnd
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    max_new_tokens: int = 64
    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    #: How the package's variant was asked (no genre, the meter's readings, ...).
    prompt: PromptSettings = field(default_factory=PromptSettings)
    extractor: WhisperFeatureExtractor = field(init=False)

    def __post_init__(self) -> None:
        # The front end the package was trained with, built once for every window asked about.
        self.extractor = self.front_end.extractor()

    @property
    def listening_seconds(self) -> float:
        """How much of each clip the model hears (its processor's window)."""
        return float(self.processor.feature_extractor.chunk_length)

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
        rate = self.front_end.sampling_rate
        clips = {
            anchor: resample(to_mono(anchor_audio), sample_rate, rate),
            target: resample(to_mono(target_audio), sample_rate, rate),
        }
        record = log_mel_record(clips, self.extractor)
        store = FeatureStore({"input": record})
        uris = formulation_clips(self.formulation, "input", anchor, target)
        if self.prompt.genre is False:
            genre = None
        instruction = instruction_text(self.formulation, anchor, target, random.Random(0), genre)
        if self.prompt.meter:  # a tool-assisted package reads the clips as they are given
            levels = [
                integrated_loudness(to_mono(a), sample_rate) for a in (anchor_audio, target_audio)
            ]
            instruction += " " + meter_sentence(self.formulation, anchor, target, *levels)
        messages = conversation(self.system_prompt, uris, instruction, "")
        ((text, latency),) = decode_advice(
            self.model,
            self.processor,
            [messages],
            stem_pairs(self.formulation, [anchor], [target]),
            store,
            self.decoding,
            batch_size=1,
            max_new_tokens=self.max_new_tokens,
            anchor_level=self.front_end.anchor_level,
        )
        parsed = parse_advice(text)
        return {
            "advice": text,
            "verdict": parsed.direction,
            "fader_move_db": parsed.fader_move_db,
            "latency_s": latency,
        }


def load_advisor(path: str | Path, decoding: DecodingSettings | None = None) -> PackageAdvisor:
    """Load a model package folder (as saved by the fine_tuning pipeline) as an advisor,
    decoding its advice as ``decoding`` says (default: median decoding)."""
    model, processor, manifest = load_package(path)
    return PackageAdvisor(
        model=model,
        processor=processor,
        formulation=package_formulation(manifest, path),
        front_end=package_front_end(manifest),
        system_prompt=manifest.get("system_prompt") or DEFAULT_SYSTEM_PROMPT,
        decoding=decoding or DecodingSettings(),
        prompt=PromptSettings.from_params(manifest.get("prompt")),
    )
