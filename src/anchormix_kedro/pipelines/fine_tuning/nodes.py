"""Nodes of the fine_tuning pipeline: cached features -> a LoRA/QLoRA adapter package."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from transformers import WhisperFeatureExtractor

from anchormix_kedro.advice import FORMULATIONS
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.factory import ModelSettings
from anchormix_kedro.model.features import raw_log_mel, valid_frames
from anchormix_kedro.model.pretraining import conversation_texts, listening_conversations
from anchormix_kedro.model.training import TrainingSettings, fine_tune, sample_rows

logger = logging.getLogger(__name__)


def compute_log_mel_features(
    excerpts: dict[str, Callable[[], dict]], features: dict
) -> dict[str, Callable[[], dict]]:
    """Raw log-mel frames of every stem of every excerpt, computed once for all gains and epochs.

    Returned lazily: one excerpt in memory at a time while the catalog writes them.
    """
    extractor = WhisperFeatureExtractor(
        feature_size=int(features["n_mels"]),
        sampling_rate=int(features["sampling_rate"]),
        chunk_length=int(features["max_clip_seconds"]),
    )

    def compute(excerpt_id: str) -> Callable[[], dict]:
        def record() -> dict:
            audio = excerpts[excerpt_id]()["audio"]
            return {
                "meta": {
                    "excerpt_id": excerpt_id,
                    "valid_frames": {
                        s: valid_frames(len(clip), extractor.hop_length)
                        for s, clip in audio.items()
                    },
                },
                "audio": {s: raw_log_mel(clip, extractor) for s, clip in audio.items()},
            }

        return record

    # Songs that failed ingestion have no audio and no features; their examples do not exist.
    return {excerpt_id: compute(excerpt_id) for excerpt_id in sorted(excerpts)}


def _conversations(
    dataset: pd.DataFrame, split: str, formulation: str, limit: int | None, seed: int
) -> list[str]:
    column = f"messages_{formulation}"
    if column not in dataset:
        raise ValueError(
            f"training.formulation {formulation!r} is unknown; expected one of {', '.join(FORMULATIONS)}"
        )
    return sample_rows(dataset.loc[dataset["split"] == split, column].tolist(), limit, seed)


def data_fingerprint(dataset: pd.DataFrame) -> str:
    """Identifies the instruction dataset's content (a resumed run must train on the same data)."""
    digest = hashlib.sha256()
    for column in ("example_id", "split", "advice"):
        digest.update("\n".join(dataset[column].astype(str)).encode())
    return digest.hexdigest()[:12]


def train_advice_model(
    instruction_dataset: pd.DataFrame,
    log_mel_features: dict[str, Callable[[], dict]],
    model: dict,
    training: dict,
) -> tuple[str, dict]:
    """Fine-tune (LoRA or QLoRA) on the training split with early stopping on the validation split.

    Returns the folder of the trained package (saved by the catalog) and a training report.
    """
    settings = ModelSettings.from_params(model)
    train_settings = TrainingSettings.from_params(training)
    seed = train_settings.seed
    train = _conversations(
        instruction_dataset,
        "train",
        train_settings.formulation,
        train_settings.max_train_examples,
        seed,
    )
    valid = _conversations(
        instruction_dataset,
        "valid",
        train_settings.formulation,
        train_settings.max_eval_examples,
        seed,
    )
    if not train:
        raise ValueError(
            "the instruction dataset has no training examples; check the ingestion summary"
        )
    logger.info(
        "Fine-tuning on %d training and %d validation conversations (%s)",
        len(train),
        len(valid),
        train_settings.formulation,
    )
    examples = instruction_dataset
    system_prompt = instruction_dataset.iloc[0]
    pretraining = None
    texts: list[str] = []
    if settings.source == "tiny":
        import json

        system_prompt = json.loads(system_prompt[f"messages_{train_settings.formulation}"])[0][
            "content"
        ]
        limits = train_settings.pretrain.get("max_examples")
        pre_train = sample_rows(
            listening_conversations(examples[examples["split"] == "train"], system_prompt, seed),
            limits,
            seed,
        )
        pre_eval = sample_rows(
            listening_conversations(examples[examples["split"] == "valid"], system_prompt, seed),
            train_settings.max_eval_examples,
            seed,
        )
        pretraining = (pre_train, pre_eval)
        every_formulation = [
            m
            for f in FORMULATIONS
            for m in instruction_dataset.loc[
                instruction_dataset["split"] == "train", f"messages_{f}"
            ]
        ]
        texts = conversation_texts(every_formulation + pre_train)
    staging = Path(tempfile.mkdtemp(prefix="anchormix-package-"))
    report = fine_tune(
        settings,
        train_settings,
        train,
        valid,
        texts,
        pretraining,
        FeatureStore(log_mel_features),
        data_fingerprint(instruction_dataset),
        staging / "package",
    )
    return report.pop("package"), report
