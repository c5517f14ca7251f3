"""Training one variant, the top of the fine-tuning flow (as LLaMA-Factory's tuner is above
its ``run_sft``): from its resolved :class:`~anchormix_kedro.model.spec.TrainingSpec`, the
data prepared (:mod:`~anchormix_kedro.model.training_data`), fine-tuning in the variant's
own MLflow run (:mod:`~anchormix_kedro.model.workflow`), and a check of the directions it
gives on validation (:mod:`~anchormix_kedro.model.direction_check`).

Every call goes down; no module below imports this one.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from anchormix_kedro.model import tracking
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.direction_check import validation_direction_accuracy
from anchormix_kedro.model.package import update_manifest
from anchormix_kedro.model.spec import TrainingSpec
from anchormix_kedro.model.tracking import process_rank
from anchormix_kedro.model.training_data import FineTuneData, fine_tune_data
from anchormix_kedro.model.workflow import run_fine_tuning

logger = logging.getLogger(__name__)

__all__ = ["train_variant", "variant_params", "variant_tags"]


def variant_tags(spec: TrainingSpec, data_id: str) -> dict[str, str]:
    """The tags of a variant's MLflow run: what it is, what it learnt from, which code."""
    tags = {
        tracking.TAG_VARIANT: spec.variant,
        tracking.TAG_FORMULATION: spec.formulation,
        tracking.TAG_BASE_MODEL: tracking.base_model_name(asdict(spec.model)),
        tracking.TAG_DATASET_VERSION: data_id,
    }
    commit = tracking.git_commit(Path.cwd(), Path(__file__).parent)
    return {**tags, tracking.TAG_GIT_COMMIT: commit} if commit else tags


def variant_params(spec: TrainingSpec, data: FineTuneData) -> dict[str, str]:
    """The params of a variant's MLflow run: its effective settings and how much it learnt from."""
    return {
        "variant": spec.variant,
        **tracking.flat_params(spec.parameters, "training."),
        **tracking.flat_params(asdict(spec.model), "model."),
        "data.train_conversations": str(len(data.train)),
        "data.valid_conversations": str(len(data.valid)),
    }


def train_variant(
    dataset: pd.DataFrame,
    store: FeatureStore,
    spec: TrainingSpec,
    tracks: pd.DataFrame | None = None,
) -> tuple[str, dict]:
    """Fine-tune one variant on the training split, early-stopping on validation, and check
    its directions on validation. Returns the package folder (staged in the variant's work
    folder, replaced when it trains again, for the catalog to save) and the report.

    With an active MLflow run, the variant trains in a run of its own under it, named
    ``spec.variant``, with its parameters, losses and validation metrics; the same variant
    trained again on the same data continues that run. ``tracks`` (the ingestion's table)
    tells the model card where the songs came from.
    """
    data = fine_tune_data(dataset, store, spec, tracks)
    work_dir = spec.work_dir(data.data_id)
    # Each process of a data-parallel run stages its own; only the first one's is saved.
    rank = process_rank()
    staging = work_dir / ("package" if rank == 0 else f"package-rank{rank}")
    tags, params = variant_tags(spec, data.data_id), variant_params(spec, data)
    with tracking.variant_run(work_dir, spec.variant, tags, params) as run_id:
        report = run_fine_tuning(spec, data, staging)
        if rank != 0:
            return report.pop("package"), report  # data-parallel helpers: the first evaluates
        accuracy = validation_direction_accuracy(report["package"], dataset, store, spec)
        report["metrics"].update(accuracy)
        update_manifest(report["package"], metrics=accuracy, variant=spec.variant)
        if run_id:
            tracking.log_metrics(run_id, {f"valid/{k}": v for k, v in accuracy.items()})
            eval_loss = report["metrics"].get("eval_loss")
            tracking.log_metrics(run_id, {"valid/loss": eval_loss} if eval_loss else {})
    return report.pop("package"), {**report, "variant": spec.variant}
