"""MLflow runs of a training: one parent run per ``kedro run``, one nested run per variant.

The parent is MLflow's active run (kedro-mlflow starts it; the project's hook names and
tags it). Each variant's run is created beside it with ``MlflowClient`` and never becomes
the active run, so whatever kedro-mlflow logs (parameters, evaluation metrics, reports)
stays in the parent. A variant's run id is recorded in its work folder: training the
same variant on the same data again, e.g. after the job was killed, continues that run.

Light on purpose (no torch): the Kedro hook imports it for every run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

logger = logging.getLogger(__name__)

TAG_VARIANT = "anchormix.variant"
TAG_FORMULATION = "anchormix.formulation"
TAG_BASE_MODEL = "anchormix.base_model"
TAG_DATASET_VERSION = "anchormix.dataset_version"
TAG_PIPELINE = "anchormix.pipeline"
TAG_ENV = "anchormix.env"
TAG_RATINGS = "anchormix.ratings"  # real or simulated: what the study's analysis read
TAG_GIT_COMMIT = MLFLOW_GIT_COMMIT
TAG_RESUMED = "anchormix.resumed"  # how many times the run was continued after a stop
TAG_TRAINING_RUN = "anchormix.training_run_id"  # an evaluation's child: the run that trained it
#: Makes the MLflow UI open the experiment on its runs (model training) view.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"

RUN_RECORD = "mlflow_runs.json"  # in a work folder: {variant: run id}
KILLED = RunStatus.to_string(RunStatus.KILLED)
FAILED = RunStatus.to_string(RunStatus.FAILED)
FINISHED = RunStatus.to_string(RunStatus.FINISHED)
RUNNING = RunStatus.to_string(RunStatus.RUNNING)

# Work folder -> the variant run open for it in this process (see :func:`variant_run`).
_open_runs: dict[Path, str] = {}


def process_rank() -> int:
    """This process's rank under torchrun (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes train together under torchrun (1 when not distributed)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def data_fingerprint(dataset: pd.DataFrame) -> str:
    """The instruction dataset's version: a hash of its content (examples, splits, advice)."""
    digest = hashlib.sha256()
    for column in ("example_id", "split", "advice"):
        digest.update("\n".join(dataset[column].astype(str)).encode())
    return digest.hexdigest()[:12]


def git_commit(*folders: str | Path) -> str | None:
    """The commit checked out in the first of ``folders`` that is in a git repository."""
    for folder in folders:
        try:
            found = subprocess.run(
                ["git", "-C", str(folder), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            return None  # no git on this machine
        if found.returncode == 0:
            return found.stdout.strip()
    return None


def flat_params(block: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow parameters (``training.lora.r``), long values truncated."""
    flat: dict[str, str] = {}
    for key, value in block.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_params(value, f"{name}."))
        else:
            flat[name] = str(value)[:MAX_PARAM_VAL_LENGTH]
    return flat


def base_model_name(model_params: Mapping[str, Any]) -> str:
    """The base model as a tag: the hub id or path, or ``tiny`` for the tiny base."""
    if model_params.get("source") == "pretrained":
        return str(model_params.get("name_or_path"))
    return "tiny"


def ensure_model_training_view(experiment_id: str) -> None:
    """Tag the experiment so that the UI opens it on its runs, not MLflow 3's GenAI overview."""
    client = mlflow.MlflowClient()
    experiment = client.get_experiment(experiment_id)
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)


def _existing_run(client: mlflow.MlflowClient, run_id: str | None, experiment_id: str):
    if not run_id:
        return None
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None  # recorded in another tracking store, or deleted for good
    if run.info.lifecycle_stage != "active" or run.info.experiment_id != experiment_id:
        return None
    return run


def _read_record(work_dir: Path) -> dict[str, str]:
    try:
        return json.loads((work_dir / RUN_RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def open_variant_run(
    work_dir: Path, variant: str, tags: Mapping[str, str], params: Mapping[str, str]
) -> str | None:
    """The variant's run under the active (parent) run: the one recorded in ``work_dir``
    when that run exists in this store (it is continued and moved under the current
    parent), else a new one. Returns None without an active run and on every process but
    the first of a data-parallel run: nothing is tracked then."""
    parent = mlflow.active_run()
    if parent is None or process_rank() != 0:
        return None
    client = mlflow.MlflowClient()
    record = _read_record(work_dir)
    previous = _existing_run(client, record.get(variant), parent.info.experiment_id)
    if previous is None:
        run_id = client.create_run(
            parent.info.experiment_id,
            run_name=variant,
            tags={MLFLOW_PARENT_RUN_ID: parent.info.run_id, **tags},
        ).info.run_id
        work_dir.mkdir(parents=True, exist_ok=True)
        (work_dir / RUN_RECORD).write_text(json.dumps({**record, variant: run_id}, indent=2))
        known: Mapping[str, str] = {}
    else:
        run_id = previous.info.run_id
        known = previous.data.params
        _take_over(client, previous, parent.info.run_id)
        for key, value in tags.items():
            client.set_tag(run_id, key, value)
        logger.info(
            "Continuing MLflow run %s (%s) under run %s", run_id, variant, parent.info.run_id
        )
    new = [Param(k, v) for k, v in params.items() if k not in known]
    for start in range(0, len(new), 100):  # MLflow takes at most 100 parameters a call
        client.log_batch(run_id, params=new[start : start + 100])
    return run_id


def _take_over(client: mlflow.MlflowClient, previous, parent_id: str) -> None:
    """Move a stopped variant run under the current parent and mark it running again."""
    run_id = previous.info.run_id
    old_parent = previous.data.tags.get(MLFLOW_PARENT_RUN_ID)
    if old_parent and old_parent != parent_id:
        # A parent still RUNNING belonged to a process that died without ending it.
        end_if_running(old_parent, KILLED)
    client.set_tag(run_id, MLFLOW_PARENT_RUN_ID, parent_id)
    client.set_tag(run_id, TAG_RESUMED, str(int(previous.data.tags.get(TAG_RESUMED, "0")) + 1))
    client.update_run(run_id, status=RUNNING)


def end_if_running(run_id: str, status: str) -> bool:
    """End a run with ``status`` unless it has ended already; True when it was ended."""
    client = mlflow.MlflowClient()
    try:
        if client.get_run(run_id).info.status != RUNNING:
            return False
        client.set_terminated(run_id, status)
    except MlflowException as exc:
        logger.warning("Could not end MLflow run %s as %s: %s", run_id, status, exc)
        return False
    return True


@contextmanager
def variant_run(
    work_dir: Path, variant: str, tags: Mapping[str, str], params: Mapping[str, str]
) -> Iterator[str | None]:
    """Open the variant's run (:func:`open_variant_run`) for the block: training in
    ``work_dir`` logs into it (:func:`run_for`). It ends FINISHED, FAILED on an error, and
    KILLED when the process is interrupted or terminated."""
    key = Path(work_dir).resolve()
    run_id = open_variant_run(work_dir, variant, tags, params)
    if run_id:
        _open_runs[key] = run_id
    status = FAILED
    try:
        yield run_id
        status = FINISHED
    except (KeyboardInterrupt, SystemExit):
        status = KILLED
        raise
    finally:
        _open_runs.pop(key, None)
        if run_id:
            end_if_running(run_id, status)


def run_for(work_dir: Path) -> str | None:
    """The variant run open for this work folder in this process, if any."""
    return _open_runs.get(Path(work_dir).resolve())


def child_runs(parent_id: str, named_by: str = TAG_VARIANT) -> dict[str, str]:
    """The runs under a parent that carry the tag ``named_by`` (the variant runs by
    default): ``{that tag's value: run id}``."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_id)
    found = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_id}'"
    )
    return {r.data.tags[named_by]: r.info.run_id for r in found if named_by in r.data.tags}


def child_run(parent_id: str, variant: str, tags: Mapping[str, str]) -> str:
    """The variant's run under ``parent_id``, created (and ended) when there is none yet,
    e.g. for the test metrics of an evaluation run alone."""
    existing = child_runs(parent_id).get(variant)
    if existing:
        return existing
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_id)
    run_id = client.create_run(
        parent.info.experiment_id,
        run_name=variant,
        tags={MLFLOW_PARENT_RUN_ID: parent_id, TAG_VARIANT: variant, **tags},
    ).info.run_id
    client.set_terminated(run_id, FINISHED)
    return run_id


def log_metrics(run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    """Log finite metrics into a run (NaN has no place in MLflow)."""
    client = mlflow.MlflowClient()
    for key, value in metrics.items():
        if value is not None and pd.notna(value):
            client.log_metric(run_id, key, float(value), step=step)
