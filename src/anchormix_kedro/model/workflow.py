"""Fine-tuning with the transformers Trainer and peft: LoRA or QLoRA, resumable, tracked.

The workflow that strings the lower modules together, as LLaMA-Factory's ``run_sft``
does: for each member, tokenizer and model (:func:`~anchormix_kedro.model.factory.load_base`
on the base, which :mod:`~anchormix_kedro.model.base` builds and pre-trains when it is the
tiny one), LoRA (:mod:`~anchormix_kedro.model.adapter`), the datasets
(:class:`~anchormix_kedro.model.data.ConversationDataset`), then collator and Trainer
(:func:`~anchormix_kedro.model.stages.run_stage`); then the package. It reads a resolved
:class:`~anchormix_kedro.model.spec.TrainingSpec` (:func:`run_fine_tuning`) and calls only
down. A run's work folder (checkpoints, the record of its MLflow run) is named by a
fingerprint of its settings and data, so starting the same run again after it was killed
continues from its last checkpoint and keeps logging into the same MLflow run
(:mod:`anchormix_kedro.model.tracking`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import mlflow
import torch
from transformers import AutoProcessor, set_seed

from anchormix_kedro.model.adapter import lora_model, trainable_parameter_count
from anchormix_kedro.model.base import tiny_base
from anchormix_kedro.model.callbacks import wait_for_everyone
from anchormix_kedro.model.data import ConversationDataset
from anchormix_kedro.model.factory import ModelSettings, load_base
from anchormix_kedro.model.package import MEMBER_PREFIX, manifest, save_package
from anchormix_kedro.model.spec import TrainingSettings, TrainingSpec, resolve_spec
from anchormix_kedro.model.stages import run_stage
from anchormix_kedro.model.tracking import process_rank, run_for
from anchormix_kedro.model.training_data import FineTuneData

logger = logging.getLogger(__name__)

# FineTuneData and TrainingSettings are handed on for the library's callers.
__all__ = ["FineTuneData", "TrainingSettings", "fine_tune", "run_fine_tuning", "train_member"]

#: Beside a member's saved adapter: its metrics and parameter counts (written last).
MEMBER_REPORT = "member.json"


def fine_tune(
    settings: ModelSettings, training: TrainingSettings, data: FineTuneData, out_dir: Path
) -> dict:
    """Fine-tune from settings (a library caller's entry): the spec is resolved here, once,
    then :func:`run_fine_tuning` trains."""
    return run_fine_tuning(resolve_spec(settings, training), data, out_dir)


def train_member(
    spec: TrainingSpec,
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
    # Tokenizer (the processor) and model.
    model, processor = load_base(spec.model, base_path, device_map=device_map)
    model = lora_model(model, spec.model, spec.lora, spec.gradient_checkpointing)
    trainable, total = trainable_parameter_count(model)
    logger.info(
        "LoRA: %d of %d parameters trainable (%.2f%%)", trainable, total, 100 * trainable / total
    )
    # Datasets.
    level = spec.listening_level
    train = ConversationDataset(data.train, processor, data.store, anchor_level=level)
    evaluation = (
        ConversationDataset(data.valid, processor, data.store, anchor_level=level)
        if len(data.valid)
        else None
    )
    # Collator, Trainer and training, resumed from the last checkpoint.
    stage = run_stage(
        model,
        processor,
        spec.finetune,
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


def run_fine_tuning(spec: TrainingSpec, data: FineTuneData, out_dir: Path) -> dict:
    """Build or load the base, add LoRA, train with early stopping, save the package.

    Returns a report: metrics, parameter counts, the work folder and the package path.
    """
    set_seed(spec.seed)
    started = time.perf_counter()
    work_dir = spec.work_dir(data.data_id)
    work_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_for(work_dir)  # the variant's MLflow run, when the caller opened one
    # The base: the tiny one built here (its tokenizer trained on the data), or a pretrained one.
    base_dir = tiny_base(spec, data, run_id) if spec.pretrain is not None else None
    base_path: str | Path = base_dir if base_dir is not None else spec.model.name_or_path
    base_seconds = time.perf_counter() - started  # zero-ish when an earlier variant built the base
    # Under torchrun each process holds a whole model on its own GPU (the Trainer wraps it in DDP).
    device_map = {"": int(os.environ.get("LOCAL_RANK", "0"))} if torch.cuda.is_available() else None
    members = []
    for number, seed in enumerate(spec.member_seeds, start=1):
        if spec.members > 1:
            logger.info("Fine-tuning member %d of %d (seed %d)", number, spec.members, seed)
        members.append(
            train_member(
                spec,
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
        base="tiny" if base_dir is not None else spec.model.name_or_path,
        model_settings=asdict(spec.model),
        formulation=spec.formulation,
        system_prompt=data.system_prompt,
        front_end=spec.listening,
        anchor=spec.anchor,
        prompt=spec.prompt.as_dict(),
        advice_conventions=spec.advice_conventions,
        data_id=data.data_id,
        training_data=data.description,
        lora=spec.lora,
        metrics=first["metrics"],
        members=spec.members,
        member_seeds=list(spec.member_seeds),
        member_metrics=[m["metrics"] for m in members] if spec.members > 1 else None,
        timing=timing,
        trainable_parameters=trainable,
        total_parameters=total,
        mlflow_run_id=run_id,
    )
    if process_rank() == 0:
        processor = AutoProcessor.from_pretrained(base_path, cache_dir=spec.model.cache_dir)
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
