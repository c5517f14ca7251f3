"""The tiny base: its tokenizer and model built here, then pre-trained fully on generic
listening (its stand-in for pretraining), once for every variant that shares it.

A pretrained base needs none of this: it is loaded by name. Reads a
:class:`~anchormix_kedro.model.spec.TrainingSpec` and the prepared
:class:`~anchormix_kedro.model.training_data.FineTuneData`; calls down into the Trainer
stages (:mod:`~anchormix_kedro.model.stages`) and imports nothing above it.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from anchormix_kedro.model.callbacks import MlflowStepLogger, wait_for_everyone
from anchormix_kedro.model.data import ConversationDataset
from anchormix_kedro.model.factory import build_tiny_base
from anchormix_kedro.model.spec import TrainingSpec
from anchormix_kedro.model.stages import run_stage
from anchormix_kedro.model.tracking import process_rank
from anchormix_kedro.model.training_data import FineTuneData

logger = logging.getLogger(__name__)

#: In the tiny base's folder: its pre-training's log history, logged into every variant's run.
PRETRAINING_LOG = "pretraining_log.json"


def tiny_base(spec: TrainingSpec, data: FineTuneData, run_id: str | None) -> Path:
    """The tiny base's folder, built (and pre-trained) unless an earlier run did; its
    pre-training curve is logged into the variant's MLflow run either way."""
    base_dir = prepare_tiny_base(spec, data, spec.base_dir(data.data_id), run_id)
    if run_id:  # a base pre-trained for an earlier variant: its curve belongs here too
        MlflowStepLogger(run_id, "pretrain").replay(base_dir / PRETRAINING_LOG)
    return base_dir


def prepare_tiny_base(
    spec: TrainingSpec, data: FineTuneData, base_dir: Path, run_id: str | None
) -> Path:
    """Build the tiny base and, when enabled, pre-train it fully: its stand-in for pretraining.

    The base depends only on the model settings, the pre-training settings and the data, so
    every variant (and the generic-base ablation) shares one. Under torchrun every process
    builds it and pre-trains it together; the first saves it while the others wait.
    """
    pretraining = spec.pretrain
    if pretraining is None:
        raise ValueError("only the tiny base is built; a pretrained base is loaded by name")
    built = (base_dir / "config.json").is_file()
    wait_for_everyone()  # every process has looked before the first one writes
    if built:
        logger.info("Reusing the tiny base in %s", base_dir)
        return base_dir
    model, processor = build_tiny_base(spec.model, data.tokenizer_texts)
    history: list[dict] = []
    if pretraining.enabled:
        logger.info(
            "Pre-training the tiny base on %d generic listening conversations", len(data.pretrain)
        )
        level = spec.anchor_level
        train = ConversationDataset(data.pretrain, processor, data.store, anchor_level=level)
        evaluation = (
            ConversationDataset(data.pretrain_valid, processor, data.store, anchor_level=level)
            if data.pretrain_valid
            else None
        )
        stage = run_stage(
            model,
            processor,
            pretraining.stage,
            train,
            evaluation,
            base_dir.with_name(base_dir.name + ".checkpoints"),
            pretraining.seed,
            run_id,
            "pretrain/",
        )
        history = stage["trainer"].state.log_history
    if process_rank() == 0:
        staging = base_dir.with_name(base_dir.name + ".partial")
        if staging.exists():
            shutil.rmtree(staging)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        (staging / PRETRAINING_LOG).write_text(json.dumps(history, indent=1))
        staging.rename(base_dir)  # only a complete base counts as built
    wait_for_everyone()
    return base_dir
