"""Training callbacks and the MLflow run a work folder logs into."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import mlflow
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run_id.txt"


def process_rank() -> int:
    """This process's rank under torchrun (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


class MlflowStepLogger(TrainerCallback):
    """Logs the Trainer's losses and evaluation metrics per step into one MLflow run.

    The run is the one recorded in the work folder, so a resumed run continues the
    history of the run that was killed rather than starting a new one.
    """

    def __init__(self, run_id: str | None, prefix: str) -> None:
        self.run_id = run_id
        self.prefix = prefix
        self.client = mlflow.MlflowClient() if run_id else None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self.client or not logs:
            return
        for key, value in logs.items():
            if isinstance(value, int | float) and math.isfinite(value):
                self.client.log_metric(
                    self.run_id, f"{self.prefix}{key}", float(value), step=state.global_step
                )


def mlflow_run_for(work_dir: Path) -> str | None:
    """The MLflow run this work folder logs into: the first run that started it.

    Returns None when no MLflow run is active (e.g. library use without tracking) and on
    every data-parallel process but the first.
    """
    if process_rank() != 0:
        return None
    record = work_dir / RUN_ID_FILE
    if record.is_file():
        run_id = record.read_text().strip()
        active = mlflow.active_run()
        if active and active.info.run_id != run_id:
            mlflow.set_tag("anchormix.resumes_run_id", run_id)
            logger.info("Resuming: metrics continue in MLflow run %s", run_id)
        return run_id
    active = mlflow.active_run()
    if active is None:
        return None
    work_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(active.info.run_id)
    return active.info.run_id
