"""Training callbacks, and the processes of a data-parallel (torchrun) run.

:class:`MlflowStepLogger` logs the Trainer's losses into a variant's MLflow run under keys
that are the same in every variant (``train/loss``, ``eval/loss``, ``pretrain/loss``), so
MLflow's Compare overlays their curves.
"""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import timedelta
from pathlib import Path

import mlflow
from transformers import TrainerCallback

from anchormix_kedro.model.tracking import process_rank, world_size

logger = logging.getLogger(__name__)

#: A stage's evaluation metrics go under this prefix (``eval/loss`` for ``train/loss``).
EVAL_PREFIX = {"train": "eval"}
# Long enough for the first process to evaluate and save a 7B variant while the others wait.
PROCESS_GROUP_TIMEOUT = timedelta(hours=2)


def metric_key(stage: str, key: str) -> str:
    """The MLflow key of one value the Trainer logs during ``stage`` (``train``, ``pretrain``).

    Evaluation values go under the stage's evaluation prefix; the run's closing summary
    (``train_loss``, ``train_runtime``) under the stage, with its mean loss named apart from
    the per-step loss.
    """
    if key.startswith("eval_"):
        return f"{EVAL_PREFIX.get(stage, stage + '_eval')}/{key.removeprefix('eval_')}"
    if key == "train_loss":
        return f"{stage}/mean_loss"
    return f"{stage}/{key.removeprefix('train_')}"


class MlflowStepLogger(TrainerCallback):
    """Logs the Trainer's losses and evaluation metrics per step into one MLflow run.

    A step already in the run's history (a run resumed from an earlier checkpoint repeats
    the steps after it) is not logged again, so every curve has one value per step.
    """

    def __init__(self, run_id: str | None, stage: str) -> None:
        self.run_id = run_id
        self.stage = stage.strip("/")
        self.client = mlflow.MlflowClient() if run_id else None
        self._last_step: dict[str, int] = {}

    def _last_logged_step(self, key: str) -> int:
        if key not in self._last_step:
            history = self.client.get_metric_history(self.run_id, key)
            self._last_step[key] = max((m.step for m in history), default=-1)
        return self._last_step[key]

    def log(self, logs: dict, step: int) -> None:
        if not self.client:
            return
        for name, value in logs.items():
            if not isinstance(value, int | float) or not math.isfinite(value):
                continue
            key = metric_key(self.stage, name)
            if step <= self._last_logged_step(key):
                continue
            self.client.log_metric(self.run_id, key, float(value), step=step)
            self._last_step[key] = step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            self.log(logs, state.global_step)

    def replay(self, history_file: Path) -> None:
        """Log a finished stage's history (the Trainer's ``log_history``) into the run: the
        tiny base's pre-training, run once and shared by every variant."""
        if not self.client or not history_file.is_file():
            return
        for entry in json.loads(history_file.read_text()):
            step = int(entry.get("step", 0))
            self.log({k: v for k, v in entry.items() if k != "step"}, step)


def wait_for_everyone() -> None:
    """Block until every process of a data-parallel run gets here (a no-op when alone).

    Starts torch's process group from torchrun's environment when nothing has yet (NCCL on
    GPUs, gloo on CPUs); the Trainer then uses it as it is.
    """
    if world_size() <= 1:
        return
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            dist.init_process_group(
                "nccl", timeout=PROCESS_GROUP_TIMEOUT, device_id=torch.device("cuda", local)
            )
        else:
            dist.init_process_group("gloo", timeout=PROCESS_GROUP_TIMEOUT)
        logger.info("Process %d of %d joined the process group", process_rank(), world_size())
    dist.barrier()


__all__ = ["MlflowStepLogger", "metric_key", "process_rank", "wait_for_everyone", "world_size"]
