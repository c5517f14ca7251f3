"""After training: the share of validation examples whose generated advice names the right
direction. Reads a :class:`~anchormix_kedro.model.spec.TrainingSpec` and a saved package;
imports nothing above it."""

from __future__ import annotations

import json
import logging

import pandas as pd

from anchormix_kedro.advice_language.parsing import parse_advice
from anchormix_kedro.instruction_data.prompts import stem_loudness
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.generation import generate, load_package
from anchormix_kedro.model.package import package_front_end
from anchormix_kedro.model.spec import TrainingSpec
from anchormix_kedro.model.training_data import variant_messages, variant_rows

logger = logging.getLogger(__name__)


def direction_accuracy(
    package: str,
    rows: pd.DataFrame,
    conversations: list[str],
    store: FeatureStore,
    batch_size: int,
) -> dict[str, float | int]:
    """Share of ``rows`` whose generated advice (to their ``conversations``) names the right
    direction (unparsed counts wrong)."""
    if rows.empty:
        return {"direction_accuracy": float("nan"), "direction_examples": 0}
    model, processor, manifest = load_package(package)
    outputs = generate(
        model,
        processor,
        [json.loads(m) for m in conversations],
        store,
        batch_size,
        anchor_level=package_front_end(manifest).anchor_level,
    )
    correct = [
        parse_advice(text).direction == label
        for (text, _), label in zip(outputs, rows["label"], strict=True)
    ]
    return {"direction_accuracy": sum(correct) / len(correct), "direction_examples": len(correct)}


def validation_direction_accuracy(
    package: str, dataset: pd.DataFrame, store: FeatureStore, spec: TrainingSpec
) -> dict[str, float | int]:
    """Direction accuracy of the package's advice on validation offsets of at least
    ``direction_eval.min_abs_gain_db`` (a sample of ``max_examples``)."""
    check = spec.direction_check
    valid = variant_rows(dataset[dataset["split"] == "valid"], spec)
    rows = valid[valid["gain_db"].abs() >= check.min_abs_gain_db]
    rows = rows.sample(min(len(rows), check.max_examples), random_state=spec.seed)
    conversations = variant_messages(rows, spec, levels=stem_loudness(dataset))
    accuracy = direction_accuracy(package, rows, conversations, store, check.batch_size)
    logger.info(
        "Validation direction accuracy (|gain| >= %.0f dB): %.3f on %d examples",
        check.min_abs_gain_db,
        accuracy["direction_accuracy"],
        accuracy["direction_examples"],
    )
    return accuracy
