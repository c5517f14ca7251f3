"""Fine-tuning with the transformers Trainer and peft: LoRA or QLoRA, resumable, tracked.

Tokenizer, data, model, collator and Trainer in one short function (:func:`fine_tune`), as
in LLaMA-Factory's and trl's SFT workflows. A run's work folder (checkpoints, the tiny
base, the record of its MLflow run) is named by a fingerprint of its settings and data, so
starting the same run again after it was killed continues from its last checkpoint and
keeps logging into the same MLflow run (:mod:`anchormix_kedro.model.tracking`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import torch
from transformers import AutoProcessor, set_seed

from anchormix_kedro.model.adapter import lora_model, trainable_parameter_count
from anchormix_kedro.model.callbacks import MlflowStepLogger, wait_for_everyone
from anchormix_kedro.model.data import ConversationDataset, FeatureStore
from anchormix_kedro.model.factory import TINY, ModelSettings, build_tiny_base, load_base
from anchormix_kedro.model.package import MEMBER_PREFIX, manifest, save_package
from anchormix_kedro.model.stages import StageSettings, run_stage
from anchormix_kedro.model.tracking import process_rank, run_for

logger = logging.getLogger(__name__)

#: In the tiny base's folder: its pre-training's log history, logged into every variant's run.
PRETRAINING_LOG = "pretraining_log.json"


@dataclass(frozen=True)
class TrainingSettings:
    """The ``training`` parameters block."""

    formulation: str = "anchor_target"
    seed: int = 42
    max_train_examples: int | None = None
    max_eval_examples: int | None = 64
    work_root: str = "data/06_models/work"
    lora: dict = field(default_factory=dict)
    # Written into the package so `anchormix advise --model` judges as the pipeline does.
    advice_conventions: dict = field(default_factory=dict)
    pretrain: dict = field(
        default_factory=dict
    )  # tiny base only: {"enabled": bool, "stage": {...}}
    finetune: dict = field(default_factory=dict)
    #: Fine-tuning's clips coloured by a random EQ at their recorded loudness
    #: (``{tilt_db, bell_db}``; empty: as recorded).
    finetune_timbre: dict = field(default_factory=dict)
    direction_eval: dict = field(default_factory=dict)
    #: How many times each training example of a label is shown (default 1): the rarer
    #: "balanced" examples repeated so the model learns to say it.
    label_repeats: dict = field(default_factory=dict)
    #: Fine-tunings of the one base, with seeds ``seed``, ``seed + 1``, ...: the package holds
    #: an adapter each, and median decoding states the median of their averaged belief.
    members: int = 1

    @classmethod
    def from_params(cls, params: dict) -> TrainingSettings:
        settings = cls(**params)
        for label, times in (settings.label_repeats or {}).items():
            if not isinstance(times, int) or times < 1:
                raise ValueError(
                    f"training.label_repeats.{label} must be a whole number of at least 1, "
                    f"got {times!r}"
                )
        if not isinstance(settings.members, int) or isinstance(settings.members, bool):
            raise ValueError(f"training.members must be a whole number, got {settings.members!r}")
        if settings.members < 1:
            raise ValueError(f"training.members must be at least 1, got {settings.members}")
        return settings

    @property
    def member_seeds(self) -> tuple[int, ...]:
        return tuple(self.seed + number for number in range(self.members))

    @property
    def finetune_stage(self) -> StageSettings:
        return StageSettings(**self.finetune)

    @property
    def pretrain_stage(self) -> StageSettings:
        return StageSettings(**self.pretrain.get("stage", {}))

    @property
    def pretrain_seed(self) -> int:
        """The stand-in's own seed (``training.pretrain.seed``; unset: ``training.seed``), so
        fine-tunings with other seeds can share one base."""
        seed = self.pretrain.get("seed")
        if seed is None:
            return self.seed
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"training.pretrain.seed must be a whole number, got {seed!r}")
        return seed


def fingerprint(*parts: Any) -> str:
    """Short stable hash of JSON-able settings and data identifiers."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def sample_rows(rows: Sequence[Any], limit: int | None, seed: int) -> list[Any]:
    """Up to ``limit`` rows drawn without replacement, the same ones for the same seed."""
    rows = list(rows)
    if limit is None or limit >= len(rows):
        return rows
    return random.Random(seed).sample(rows, limit)


def prepare_tiny_base(
    settings: ModelSettings,
    training: TrainingSettings,
    texts: Sequence[str],
    pretrain_train: Sequence[str],
    pretrain_eval: Sequence[str],
    store: FeatureStore,
    base_dir: Path,
    run_id: str | None,
) -> Path:
    """Build the tiny base and, when enabled, pre-train it fully: its stand-in for pretraining.

    The base depends only on the model settings, the pre-training settings and the data, so
    every variant (and the generic-base ablation) shares one. Under torchrun every process
    builds it and pre-trains it together; the first saves it while the others wait.
    """
    built = (base_dir / "config.json").is_file()
    wait_for_everyone()  # every process has looked before the first one writes
    if built:
        logger.info("Reusing the tiny base in %s", base_dir)
        return base_dir
    model, processor = build_tiny_base(settings, texts)
    history: list[dict] = []
    if training.pretrain.get("enabled", False):
        logger.info(
            "Pre-training the tiny base on %d generic listening conversations", len(pretrain_train)
        )
        level = settings.front_end_settings.anchor_level
        train = ConversationDataset(pretrain_train, processor, store, anchor_level=level)
        evaluation = (
            ConversationDataset(pretrain_eval, processor, store, anchor_level=level)
            if pretrain_eval
            else None
        )
        stage = run_stage(
            model,
            processor,
            training.pretrain_stage,
            train,
            evaluation,
            base_dir.with_name(base_dir.name + ".checkpoints"),
            training.pretrain_seed,
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


@dataclass(frozen=True)
class FineTuneData:
    """What one fine-tuning run learns from.

    ``train`` and ``valid`` are JSON conversations of the variant's formulation; the tiny
    base also needs texts to train its tokenizer on and its generic pre-training
    conversations (``pretrain``, ``pretrain_valid``). ``data_id`` names the data (a resumed
    run must train on the same); ``description`` tells the model card where it came from
    (source, licence, examples and songs per split).
    """

    train: Sequence[str]
    valid: Sequence[str]
    store: FeatureStore
    data_id: str
    system_prompt: str
    tokenizer_texts: Sequence[str] = ()
    pretrain: Sequence[str] = ()
    pretrain_valid: Sequence[str] = ()
    description: dict = field(default_factory=dict)


def work_folder(settings: ModelSettings, training: TrainingSettings, data_id: str) -> Path:
    """Where a run keeps its checkpoints: named by its settings and data, so that starting
    the same run again finds them."""
    return (
        Path(training.work_root)
        / f"finetune-{fingerprint(asdict(settings), asdict(training), data_id)}"
    )


#: Beside a member's saved adapter: its metrics and parameter counts (written last).
MEMBER_REPORT = "member.json"


def train_member(
    settings: ModelSettings,
    training: TrainingSettings,
    data: FineTuneData,
    base_path: str | Path,
    device_map: dict | None,
    member_dir: Path,
    seed: int,
    run_id: str | None,
    stage_name: str,
    reseed: bool,
) -> dict:
    """Add LoRA to the base and fine-tune it with ``seed``; save the adapter in
    ``member_dir/adapter``. A member whose adapter and report were saved is not trained
    again, so a run killed in a later member keeps the earlier ones. Returns its report
    (metrics, parameter counts) and the adapter's folder. ``reseed``: seed the random state
    first (the first member goes on with the run's, so a run of one member is as before)."""
    adapter_dir, report_file = member_dir / "adapter", member_dir / MEMBER_REPORT
    if report_file.is_file() and adapter_dir.is_dir():
        logger.info("Reusing the adapter trained in %s", member_dir)
        return json.loads(report_file.read_text()) | {"adapter": adapter_dir}
    if reseed:
        set_seed(seed)
    model, processor = load_base(settings, base_path, device_map=device_map)
    gradient_checkpointing = bool(
        training.finetune.get("args", {}).get("gradient_checkpointing", False)
    )
    model = lora_model(model, settings, training.lora, gradient_checkpointing)
    trainable, total = trainable_parameter_count(model)
    logger.info(
        "LoRA: %d of %d parameters trainable (%.2f%%)", trainable, total, 100 * trainable / total
    )
    level = settings.front_end_settings.anchor_level
    train = ConversationDataset(data.train, processor, data.store, anchor_level=level)
    evaluation = (
        ConversationDataset(data.valid, processor, data.store, anchor_level=level)
        if len(data.valid)
        else None
    )
    stage = run_stage(
        model,
        processor,
        training.finetune_stage,
        train,
        evaluation,
        member_dir / "checkpoints",
        seed,
        run_id,
        stage_name,
    )
    report = {
        "seed": seed,
        "metrics": stage["metrics"],
        "trainable_parameters": trainable,
        "total_parameters": total,
    }
    if process_rank() == 0:
        staging = member_dir / "adapter.partial"
        for stale in (staging, adapter_dir):
            if stale.exists():
                shutil.rmtree(stale)
        stage["trainer"].model.save_pretrained(staging)
        staging.rename(adapter_dir)
        report_file.write_text(json.dumps(report, indent=1, default=str))
    wait_for_everyone()
    return report | {"adapter": adapter_dir}


def fine_tune(
    settings: ModelSettings, training: TrainingSettings, data: FineTuneData, out_dir: Path
) -> dict:
    """Build or load the base, add LoRA, train with early stopping, save the package.

    Returns a report: metrics, parameter counts, the work folder and the package path.
    """
    set_seed(training.seed)
    started = time.perf_counter()
    root = Path(training.work_root)
    work_dir = work_folder(settings, training, data.data_id)
    work_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_for(work_dir)  # the variant's MLflow run, when the caller opened one
    base_dir = None
    if settings.source == TINY:
        # The base's own settings only: an unset pretrain seed names the same base as before.
        pretrain = {k: v for k, v in training.pretrain.items() if k != "seed"}
        base_id = fingerprint(asdict(settings), pretrain, training.pretrain_seed, data.data_id)
        base_dir = prepare_tiny_base(
            settings,
            training,
            data.tokenizer_texts,
            data.pretrain,
            data.pretrain_valid,
            data.store,
            root / f"tiny-base-{base_id}",
            run_id,
        )
        if run_id:  # a base pre-trained for an earlier variant: its curve belongs here too
            MlflowStepLogger(run_id, "pretrain").replay(base_dir / PRETRAINING_LOG)
        base_path: str | Path = base_dir
    else:
        base_path = settings.name_or_path
    base_seconds = time.perf_counter() - started  # zero-ish when an earlier variant built the base
    # Under torchrun each process holds a whole model on its own GPU (the Trainer wraps it in DDP).
    device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))} if torch.cuda.is_available() else None
    members = []
    for number, seed in enumerate(training.member_seeds, start=1):
        if training.members > 1:
            logger.info("Fine-tuning member %d of %d (seed %d)", number, training.members, seed)
        members.append(
            train_member(
                settings,
                training,
                data,
                base_path,
                device_map,
                work_dir if number == 1 else work_dir / f"{MEMBER_PREFIX}{number}",
                seed,
                run_id,
                "train/" if number == 1 else f"train_member{number}/",
                reseed=number > 1,
            )
        )
    first = members[0]
    trainable, total = first["trainable_parameters"], first["total_parameters"]
    timing = {
        "base_seconds": round(base_seconds, 1),
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    package_manifest = manifest(
        base="tiny" if base_dir is not None else settings.name_or_path,
        model_settings=asdict(settings),
        formulation=training.formulation,
        system_prompt=data.system_prompt,
        front_end=settings.front_end_settings,
        advice_conventions=training.advice_conventions,
        data_id=data.data_id,
        training_data=data.description,
        lora=training.lora,
        metrics=first["metrics"],
        members=training.members,
        member_seeds=list(training.member_seeds),
        member_metrics=[m["metrics"] for m in members] if training.members > 1 else None,
        timing=timing,
        trainable_parameters=trainable,
        total_parameters=total,
        mlflow_run_id=run_id,
    )
    if process_rank() == 0:
        processor = AutoProcessor.from_pretrained(base_path, cache_dir=settings.cache_dir)
        save_package(
            [m["adapter"] for m in members], processor, out_dir, package_manifest, base_dir
        )
    wait_for_everyone()
    if run_id:
        client = mlflow.MlflowClient()
        for name, value in timing.items():
            client.log_metric(run_id, f"timing/{name}", value)
        client.log_metric(run_id, "model/trainable_parameters", trainable)
        client.log_metric(run_id, "model/total_parameters", total)
    return {
        "metrics": first["metrics"],
        "timing": timing,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "work_dir": str(work_dir),
        "package": str(out_dir),
        "mlflow_run_id": run_id,
    }
