"""Training one variant from the instruction dataset: split selection, the tiny base's
pre-training corpus, fine-tuning in the variant's own MLflow run, and a check of the
directions it gives on validation."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from anchormix_kedro.advice_language.parsing import parse_advice
from anchormix_kedro.instruction_data.card import CORPORA, corpus_source
from anchormix_kedro.model import tracking
from anchormix_kedro.model.data import EqualisationLoudness, FeatureStore
from anchormix_kedro.model.factory import TINY, ModelSettings
from anchormix_kedro.model.generation import generate, load_package
from anchormix_kedro.model.package import package_front_end, update_manifest
from anchormix_kedro.model.pretraining import (
    ANCHOR_TARGET,
    conversation_texts,
    listening_conversations,
)
from anchormix_kedro.model.timbre import TimbreAugmentation, coloured_conversations
from anchormix_kedro.model.tracking import data_fingerprint, process_rank
from anchormix_kedro.model.workflow import (
    FineTuneData,
    TrainingSettings,
    fine_tune,
    sample_rows,
    work_folder,
)
from anchormix_kedro.vocabulary import FORMULATIONS, messages_column

logger = logging.getLogger(__name__)

__all__ = ["data_fingerprint", "fine_tune_data", "train_variant", "training_data_description"]


def training_data_description(
    dataset: pd.DataFrame, tracks: pd.DataFrame | None, used: dict[str, int]
) -> dict:
    """What the model card says of the training data: source and terms, examples and songs
    per split, and how many of each split training used."""
    source = corpus_source(tracks)
    return {
        "source": source,
        **CORPORA[source],
        "splits": {
            str(split): {"examples": int(len(rows)), "songs": int(rows["song"].nunique())}
            for split, rows in dataset.groupby("split")
        },
        "examples_used": used,
    }


def direction_accuracy(
    package: str, rows: pd.DataFrame, column: str, store: FeatureStore, batch_size: int
) -> dict[str, float | int]:
    """Share of ``rows`` whose generated advice names the right direction (unparsed counts wrong)."""
    if rows.empty:
        return {"direction_accuracy": float("nan"), "direction_examples": 0}
    model, processor, manifest = load_package(package)
    outputs = generate(
        model,
        processor,
        [json.loads(m) for m in rows[column]],
        store,
        batch_size,
        anchor_level=package_front_end(manifest).anchor_level,
    )
    correct = [
        parse_advice(text).direction == label
        for (text, _), label in zip(outputs, rows["label"], strict=True)
    ]
    return {"direction_accuracy": sum(correct) / len(correct), "direction_examples": len(correct)}


def repeated_by_label(rows: pd.DataFrame, column: str, repeats: dict | None) -> list:
    """The conversations of ``column``, each repeated as its label says (default once)."""
    times = rows["label"].map(lambda label: int((repeats or {}).get(label, 1)))
    unknown = sorted(set(repeats or {}) - set(rows["label"]))
    if unknown:
        logger.warning("training.label_repeats names labels without examples: %s", unknown)
    return [m for m, k in zip(rows[column], times, strict=True) for _ in range(k)]


def fine_tune_data(
    dataset: pd.DataFrame,
    store: FeatureStore,
    settings: ModelSettings,
    training: TrainingSettings,
    tracks: pd.DataFrame | None = None,
) -> FineTuneData:
    """The variant's conversations, plus the tiny base's tokenizer texts and pre-training.
    ``tracks`` (the ingestion's table) tells where the songs came from."""
    seed = training.seed
    column = messages_column(training.formulation)
    by_split = {split: dataset[dataset["split"] == split] for split in ("train", "valid")}
    if by_split["train"].empty:
        raise ValueError(
            "the instruction dataset has no training examples; check the ingestion summary"
        )
    train = sample_rows(
        repeated_by_label(by_split["train"], column, training.label_repeats),
        training.max_train_examples,
        seed,
    )
    loudness_change = EqualisationLoudness(store, settings.front_end_settings.sampling_rate)
    train = coloured_conversations(
        train,
        TimbreAugmentation.from_params(training.finetune_timbre, "training.finetune_timbre"),
        loudness_change,
        seed,
    )
    valid = sample_rows(by_split["valid"][column].tolist(), training.max_eval_examples, seed)
    system_prompt = json.loads(train[0])[0]["content"]
    logger.info(
        "Fine-tuning on %d training and %d validation conversations (%s)",
        len(train),
        len(valid),
        training.formulation,
    )
    description = training_data_description(
        dataset, tracks, {"train": len(train), "valid": len(valid)}
    )
    data = FineTuneData(
        train, valid, store, data_fingerprint(dataset), system_prompt, description=description
    )
    if settings.source != TINY:
        return data
    language = by_split["train"]["advice"].tolist()
    absolute_levels = settings.front_end_settings.anchor_level_db is None
    comparisons = training.pretrain.get("comparisons", ANCHOR_TARGET)
    timbre = TimbreAugmentation.from_params(
        training.pretrain.get("timbre"), "training.pretrain.timbre"
    )
    pretrain_seed = training.pretrain_seed
    pretrain = sample_rows(
        listening_conversations(
            by_split["train"],
            system_prompt,
            pretrain_seed,
            language,
            absolute_levels,
            comparisons,
            timbre,
            loudness_change,
        ),
        training.pretrain.get("max_examples"),
        pretrain_seed,
    )
    pretrain_valid = sample_rows(
        listening_conversations(
            by_split["valid"], system_prompt, pretrain_seed, (), absolute_levels, comparisons
        ),
        training.max_eval_examples,
        pretrain_seed,
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
        description=description,
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


def variant_tags(variant: str, settings: ModelSettings, training: TrainingSettings, data_id: str):
    """The tags of a variant's MLflow run: what it is, what it learnt from, which code."""
    tags = {
        tracking.TAG_VARIANT: variant,
        tracking.TAG_FORMULATION: training.formulation,
        tracking.TAG_BASE_MODEL: tracking.base_model_name(asdict(settings)),
        tracking.TAG_DATASET_VERSION: data_id,
    }
    commit = tracking.git_commit(Path.cwd(), Path(__file__).parent)
    return {**tags, tracking.TAG_GIT_COMMIT: commit} if commit else tags


def train_variant(
    dataset: pd.DataFrame,
    store: FeatureStore,
    settings: ModelSettings,
    training: TrainingSettings,
    variant: str | None = None,
    tracks: pd.DataFrame | None = None,
) -> tuple[str, dict]:
    """Fine-tune one variant on the training split, early-stopping on validation, and check
    its directions on validation. Returns the package folder (staged in the variant's work
    folder, replaced when it trains again, for the catalog to save) and the report.

    With an active MLflow run, the variant trains in a run of its own under it, named
    ``variant`` (default: the formulation), with its parameters, losses and validation
    metrics; the same variant trained again on the same data continues that run.
    """
    name = variant or training.formulation
    data = fine_tune_data(dataset, store, settings, training, tracks)
    params = {
        "variant": name,
        **tracking.flat_params(asdict(training), "training."),
        **tracking.flat_params(asdict(settings), "model."),
        "data.train_conversations": str(len(data.train)),
        "data.valid_conversations": str(len(data.valid)),
    }
    work_dir = work_folder(settings, training, data.data_id)
    # Each process of a data-parallel run stages its own; only the first one's is saved.
    rank = process_rank()
    staging = work_dir / ("package" if rank == 0 else f"package-rank{rank}")
    tags = variant_tags(name, settings, training, data.data_id)
    with tracking.variant_run(work_dir, name, tags, params) as run_id:
        report = fine_tune(settings, training, data, staging)
        if rank != 0:
            return report.pop("package"), report  # data-parallel helpers: the first evaluates
        accuracy = validation_direction_accuracy(report["package"], dataset, store, training)
        report["metrics"].update(accuracy)
        update_manifest(report["package"], metrics=accuracy, variant=name)
        if run_id:
            tracking.log_metrics(run_id, {f"valid/{k}": v for k, v in accuracy.items()})
            eval_loss = report["metrics"].get("eval_loss")
            tracking.log_metrics(run_id, {"valid/loss": eval_loss} if eval_loss else {})
    return report.pop("package"), {**report, "variant": name}
