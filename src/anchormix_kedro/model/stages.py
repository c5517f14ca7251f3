"""The Trainer set-up: one stage, resumable (the tiny base's pre-training or a LoRA
fine-tuning), from its collator and Trainer to ``Trainer.train``.

A stage writes checkpoints into its folder; started again, it continues from the last one
saved completely (:func:`run_stage`), logging its losses into the variant's MLflow run.
It reads a :class:`~anchormix_kedro.model.spec.StageSettings` and imports nothing above it
(:mod:`~anchormix_kedro.model.base` and :mod:`~anchormix_kedro.model.workflow` call it).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from peft import PeftModel
from transformers import (
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from anchormix_kedro.model.callbacks import MlflowStepLogger
from anchormix_kedro.model.data import AudioChatCollator, ConversationDataset
from anchormix_kedro.model.spec import StageSettings

logger = logging.getLogger(__name__)


def training_arguments(
    stage: StageSettings, output_dir: Path, seed: int, use_cpu: bool
) -> TrainingArguments:
    """TrainingArguments from a stage's settings, with the project's fixed choices."""
    args = {
        "output_dir": str(output_dir),
        "seed": seed,
        "data_seed": seed,
        "report_to": [],
        "remove_unused_columns": False,  # the collator needs every field
        "use_cpu": use_cpu,
        "dataloader_num_workers": 0,
        "save_total_limit": 2,
        **stage.args,
    }
    if stage.early_stopping_patience:
        args.setdefault("load_best_model_at_end", True)
        args.setdefault("metric_for_best_model", "eval_loss")
        args.setdefault("greater_is_better", False)
    return TrainingArguments(**args)


def last_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest checkpoint that was saved to the end (the Trainer writes its state last):
    a run killed while saving one resumes from the one before."""
    if not output_dir.is_dir() or get_last_checkpoint(str(output_dir)) is None:
        return None
    checkpoints = sorted(
        (p for p in output_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for checkpoint in checkpoints:
        if (checkpoint / "trainer_state.json").is_file():
            return str(checkpoint)
        logger.warning("Ignoring %s: it was not saved completely", checkpoint)
    return None


class ResumingTrainer(Trainer):
    """``Trainer`` that restores a fully trained model (the tiny base's pre-training) from
    its checkpoint by name mapping.

    ``save_pretrained`` writes Qwen2-Audio's weights under their published names
    (``audio_tower.*``, ``language_model.model.*``), which the model's loading maps back to
    its own; the Trainer's resume loads the state dict as it is, so every key would miss
    and training would go on from the freshly built weights. A LoRA model's adapter resumes
    the Trainer's way.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        target = self.model if model is None else model
        if isinstance(target, PeftModel) or not hasattr(target, "from_pretrained"):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        restore_full_weights(target, resume_from_checkpoint)


def restore_full_weights(model, checkpoint: str) -> None:
    """Load a checkpoint written by ``save_pretrained`` into ``model``, names mapped as
    ``from_pretrained`` maps them; raise if any weight is missing or left over."""
    dtype = next(model.parameters()).dtype
    restored = type(model).from_pretrained(checkpoint, dtype=dtype)
    missing, unexpected = model.load_state_dict(restored.state_dict(), strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"checkpoint {checkpoint} does not fit the model: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}; delete it to start the stage again"
        )
    logger.info("Restored every weight from %s", checkpoint)


def run_stage(
    model,
    processor,
    stage: StageSettings,
    train: ConversationDataset,
    evaluation: ConversationDataset | None,
    output_dir: Path,
    seed: int,
    run_id: str | None,
    prefix: str,
) -> dict:
    """Train one stage, resuming from its last checkpoint when one exists.

    ``prefix`` names the stage in MLflow (``train/`` logs ``train/loss`` and ``eval/loss``).
    """
    use_cpu = not torch.cuda.is_available()
    args = training_arguments(stage, output_dir, seed, use_cpu)
    callbacks: list[TrainerCallback] = [MlflowStepLogger(run_id, prefix)]
    if stage.early_stopping_patience and evaluation is not None:
        callbacks.append(
            EarlyStoppingCallback(early_stopping_patience=stage.early_stopping_patience)
        )
    trainer = ResumingTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        data_collator=AudioChatCollator(processor.tokenizer.pad_token_id, padding_side="right"),
        callbacks=callbacks,
    )
    last = last_complete_checkpoint(output_dir)
    if last:
        logger.info("Resuming %s from %s", prefix.strip("/"), last)
    result = trainer.train(resume_from_checkpoint=last)
    metrics = dict(result.metrics)
    if evaluation is not None:
        metrics.update(trainer.evaluate())
    return {"metrics": metrics, "trainer": trainer}
