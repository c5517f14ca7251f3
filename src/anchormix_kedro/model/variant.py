"""Training one variant from the instruction dataset: split selection, the tiny base's
pre-training corpus, fine-tuning, and a check of the directions it gives on validation."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path

import mlflow
import pandas as pd

from anchormix_kedro.evaluation.parsing import parse_advice
from anchormix_kedro.model.callbacks import process_rank
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.factory import TINY, ModelSettings
from anchormix_kedro.model.generation import generate, load_package
from anchormix_kedro.model.pretraining import conversation_texts, listening_conversations
from anchormix_kedro.model.workflow import FineTuneData, TrainingSettings, fine_tune, sample_rows
from anchormix_kedro.vocabulary import FORMULATIONS, messages_column

logger = logging.getLogger(__name__)


def data_fingerprint(dataset: pd.DataFrame) -> str:
    """Identifies the instruction dataset's content (a resumed run must train on the same data)."""
    digest = hashlib.sha256()
    for column in ("example_id", "split", "advice"):
        digest.update("\n".join(dataset[column].astype(str)).encode())
    return digest.hexdigest()[:12]


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


def fine_tune_data(
    dataset: pd.DataFrame,
    store: FeatureStore,
    settings: ModelSettings,
    training: TrainingSettings,
) -> FineTuneData:
    """The variant's conversations, plus the tiny base's tokenizer texts and pre-training."""
    seed = training.seed
    column = messages_column(training.formulation)
    by_split = {split: dataset[dataset["split"] == split] for split in ("train", "valid")}
    if by_split["train"].empty:
        raise ValueError(
            "the instruction dataset has no training examples; check the ingestion summary"
        )
    train = sample_rows(by_split["train"][column].tolist(), training.max_train_examples, seed)
    valid = sample_rows(by_split["valid"][column].tolist(), training.max_eval_examples, seed)
    system_prompt = json.loads(train[0])[0]["content"]
    logger.info(
        "Fine-tuning on %d training and %d validation conversations (%s)",
        len(train),
        len(valid),
        training.formulation,
    )
    data = FineTuneData(train, valid, store, data_fingerprint(dataset), system_prompt)
    if settings.source != TINY:
        return data
    language = by_split["train"]["advice"].tolist()
    pretrain = sample_rows(
        listening_conversations(by_split["train"], system_prompt, seed, language),
        training.pretrain.get("max_examples"),
        seed,
    )
    pretrain_valid = sample_rows(
        listening_conversations(by_split["valid"], system_prompt, seed),
        training.max_eval_examples,
        seed,
    )
    every_formulation = [m for f in FORMULATIONS for m in by_split["train"][messages_column(f)]]
    return FineTuneData(
        train,
        valid,
        store,
        data.data_id,
        system_prompt,
        tokenizer_texts=conversation_texts(every_formulation + pretrain),
        pretrain=pretrain,
        pretrain_valid=pretrain_valid,
    )


def validation_direction_accuracy(
    package: str, dataset: pd.DataFrame, store: FeatureStore, training: TrainingSettings
) -> dict[str, float | int]:
    """Direction accuracy of the package's advice on validation offsets of at least
    ``direction_eval.min_abs_gain_db`` (a sample of ``max_examples``)."""
    evaluation = training.direction_eval
    min_gain = float(evaluation.get("min_abs_gain_db", 6.0))
    valid = dataset[dataset["split"] == "valid"]
    rows = valid[valid["gain_db"].abs() >= min_gain]
    rows = rows.sample(
        min(len(rows), int(evaluation.get("max_examples", 96))), random_state=training.seed
    )
    accuracy = direction_accuracy(
        package,
        rows,
        messages_column(training.formulation),
        store,
        int(evaluation.get("batch_size", 16)),
    )
    logger.info(
        "Validation direction accuracy (|gain| >= %.0f dB): %.3f on %d examples",
        min_gain,
        accuracy["direction_accuracy"],
        accuracy["direction_examples"],
    )
    return accuracy


def train_variant(
    dataset: pd.DataFrame,
    store: FeatureStore,
    settings: ModelSettings,
    training: TrainingSettings,
) -> tuple[str, dict]:
    """Fine-tune one variant on the training split, early-stopping on validation, and check
    its directions on validation. Returns the package folder (staged in a temporary folder
    for the catalog to save) and the report."""
    data = fine_tune_data(dataset, store, settings, training)
    staging = Path(tempfile.mkdtemp(prefix="anchormix-package-")) / "package"
    report = fine_tune(settings, training, data, staging)
    if process_rank() != 0:
        return report.pop("package"), report  # data-parallel helpers: the first process evaluates
    accuracy = validation_direction_accuracy(report["package"], dataset, store, training)
    report["metrics"].update(accuracy)
    if report["mlflow_run_id"]:
        mlflow.MlflowClient().log_metric(
            report["mlflow_run_id"],
            f"{training.formulation}/valid_direction_accuracy",
            accuracy["direction_accuracy"],
        )
    return report.pop("package"), report
