"""Nodes of the fine_tuning pipeline: cached features -> a LoRA/QLoRA adapter package."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
from transformers import WhisperFeatureExtractor

from anchormix_kedro.evaluation.parsing import parse_advice
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.factory import TINY, ModelSettings
from anchormix_kedro.model.features import log_mel_record
from anchormix_kedro.model.generation import generate, load_package
from anchormix_kedro.model.pretraining import conversation_texts, listening_conversations
from anchormix_kedro.model.training import TrainingSettings, fine_tune, process_rank, sample_rows
from anchormix_kedro.vocabulary import FORMULATIONS

logger = logging.getLogger(__name__)


def compute_log_mel_features(
    excerpts: dict[str, Callable[[], dict]], features: dict
) -> dict[str, Callable[[], dict]]:
    """Raw log-mel frames of every stem of every excerpt, computed once for every gain, epoch,
    variant and system. Returned lazily: one excerpt in memory at a time while they are saved.
    """
    extractor = WhisperFeatureExtractor(
        feature_size=int(features["n_mels"]),
        sampling_rate=int(features["sampling_rate"]),
        chunk_length=int(features["max_clip_seconds"]),
    )

    def compute(excerpt_id: str) -> Callable[[], dict]:
        def record() -> dict:
            audio = excerpts[excerpt_id]()["audio"]  # empty for a song that failed ingestion
            return log_mel_record(audio, extractor, excerpt_id=excerpt_id)

        return record

    return {excerpt_id: compute(excerpt_id) for excerpt_id in sorted(excerpts)}


def data_fingerprint(dataset: pd.DataFrame) -> str:
    """Identifies the instruction dataset's content (a resumed run must train on the same data)."""
    digest = hashlib.sha256()
    for column in ("example_id", "split", "advice"):
        digest.update("\n".join(dataset[column].astype(str)).encode())
    return digest.hexdigest()[:12]


def _column(formulation: str) -> str:
    if formulation not in FORMULATIONS:
        raise ValueError(
            f"training formulation {formulation!r} is unknown; expected one of {', '.join(FORMULATIONS)}"
        )
    return f"messages_{formulation}"


def direction_accuracy(
    package: str, rows: pd.DataFrame, column: str, store: FeatureStore, batch_size: int
) -> dict[str, float | int]:
    """Share of ``rows`` whose generated advice names the right direction (unparsed counts wrong)."""
    if rows.empty:
        return {"direction_accuracy": float("nan"), "direction_examples": 0}
    model, processor, _ = load_package(package)
    outputs = generate(model, processor, [json.loads(m) for m in rows[column]], store, batch_size)
    correct = [
        parse_advice(text).direction == label
        for (text, _), label in zip(outputs, rows["label"], strict=True)
    ]
    return {"direction_accuracy": sum(correct) / len(correct), "direction_examples": len(correct)}


def train_advice_model(
    instruction_dataset: pd.DataFrame,
    log_mel_features: dict[str, Callable[[], dict]],
    model: dict,
    training: dict,
    variant: dict,
) -> tuple[str, dict]:
    """Fine-tune one variant (LoRA or QLoRA) on the training split, early-stopping on validation.

    ``variant`` overrides the shared ``training`` settings (e.g. the formulation of the
    no-anchor ablation). Reports the validation direction accuracy on offsets of at least
    ``direction_eval.min_abs_gain_db``. Returns the package folder (the catalog saves it)
    and the report.
    """
    settings = ModelSettings.from_params(model)
    train_settings = TrainingSettings.from_params({**training, **variant})
    seed = train_settings.seed
    column = _column(train_settings.formulation)
    by_split = {
        split: instruction_dataset[instruction_dataset["split"] == split]
        for split in ("train", "valid")
    }
    if by_split["train"].empty:
        raise ValueError(
            "the instruction dataset has no training examples; check the ingestion summary"
        )
    train = sample_rows(by_split["train"][column].tolist(), train_settings.max_train_examples, seed)
    valid = sample_rows(by_split["valid"][column].tolist(), train_settings.max_eval_examples, seed)
    system_prompt = json.loads(train[0])[0]["content"]
    logger.info(
        "Fine-tuning on %d training and %d validation conversations (%s)",
        len(train),
        len(valid),
        train_settings.formulation,
    )
    store = FeatureStore(log_mel_features)
    pretraining: tuple[list[str], list[str]] = ([], [])
    texts: list[str] = []
    if settings.source == TINY:
        limit = train_settings.pretrain.get("max_examples")
        language = by_split["train"]["advice"].tolist()
        pretraining = (
            sample_rows(
                listening_conversations(by_split["train"], system_prompt, seed, language),
                limit,
                seed,
            ),
            sample_rows(
                listening_conversations(by_split["valid"], system_prompt, seed),
                train_settings.max_eval_examples,
                seed,
            ),
        )
        every_formulation = [m for f in FORMULATIONS for m in by_split["train"][f"messages_{f}"]]
        texts = conversation_texts(every_formulation + pretraining[0])
    staging = Path(tempfile.mkdtemp(prefix="anchormix-package-")) / "package"
    report = fine_tune(
        settings,
        train_settings,
        train,
        valid,
        texts,
        pretraining,
        store,
        data_fingerprint(instruction_dataset),
        staging,
        system_prompt,
    )
    if process_rank() != 0:
        return report.pop("package"), report  # data-parallel helpers: the first process evaluates
    evaluation = train_settings.direction_eval
    min_gain = float(evaluation.get("min_abs_gain_db", 6.0))
    rows = by_split["valid"][by_split["valid"]["gain_db"].abs() >= min_gain]
    rows = rows.sample(min(len(rows), int(evaluation.get("max_examples", 96))), random_state=seed)
    accuracy = direction_accuracy(
        report["package"], rows, column, store, int(evaluation.get("batch_size", 16))
    )
    report["metrics"].update(accuracy)
    logger.info(
        "Validation direction accuracy (|gain| >= %.0f dB): %.3f on %d examples",
        min_gain,
        accuracy["direction_accuracy"],
        accuracy["direction_examples"],
    )
    if report["mlflow_run_id"]:
        mlflow.MlflowClient().log_metric(
            report["mlflow_run_id"],
            f"{train_settings.formulation}/valid_direction_accuracy",
            accuracy["direction_accuracy"],
        )
    return report.pop("package"), report
