"""Nodes of the fine_tuning pipeline: cached features -> a LoRA/QLoRA adapter package."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.features import log_mel_record
from anchormix_kedro.model.front_end import FrontEnd
from anchormix_kedro.model.mlflow_model import register_package
from anchormix_kedro.model.spec import variant_spec
from anchormix_kedro.model.variant import train_variant


def compute_log_mel_features(
    excerpts: dict[str, Callable[[], dict]], features: dict
) -> dict[str, Callable[[], dict]]:
    """Raw log-mel frames of every stem of every excerpt, computed once for every gain, epoch,
    variant and system. Returned lazily: one excerpt in memory at a time while they are saved.
    """
    extractor = FrontEnd.from_params(features).extractor()

    def compute(excerpt_id: str) -> Callable[[], dict]:
        def record() -> dict:
            audio = excerpts[excerpt_id]()["audio"]  # empty for a song that failed ingestion
            return log_mel_record(audio, extractor, excerpt_id=excerpt_id)

        return record

    return {excerpt_id: compute(excerpt_id) for excerpt_id in sorted(excerpts)}


def train_advice_model(
    instruction_dataset: pd.DataFrame,
    log_mel_features: dict[str, Callable[[], dict]],
    tracks: pd.DataFrame,
    model: dict,
    training: dict,
    variant: dict,
    *,
    variant_name: str,
) -> tuple[str, dict]:
    """Fine-tune one variant (LoRA or QLoRA); ``variant`` overrides the shared ``training``
    settings (e.g. the formulation of the no-anchor ablation). Returns the package folder
    (the catalog saves it and logs it to MLflow) and the training report. ``tracks`` tells
    the model card where the songs came from.

    The parameters are resolved here, once, into the variant's spec; everything below reads
    the spec (:mod:`anchormix_kedro.model.spec`)."""
    spec = variant_spec(model, training, variant, variant_name)
    return train_variant(instruction_dataset, FeatureStore(log_mel_features), spec, tracks)


def register_model(model_package: str, registry: dict, *, variant_name: str) -> dict:
    """The variant's package, as logged to MLflow, becomes a new version of the registered
    model ``registry.model_name`` when ``registry.register`` is true. Returns what was done."""
    return register_package(model_package, variant_name, registry)
