"""MLflow runs that compare: :class:`TrackingHooks` names the run kedro-mlflow opens for a
``kedro run`` by pipeline and environment and tags it; each trained variant gets a nested
run of its own (:mod:`anchormix_kedro.model.tracking`), and its test metrics follow it
there. Runs stopped by an error end FAILED, runs stopped by Ctrl-C or SIGTERM (a cancelled
or preempted Slurm job, see :mod:`.termination`) end KILLED.
"""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl

from anchormix_kedro.evaluation.conditions import AS_MIXED
from anchormix_kedro.model import tracking
from anchormix_kedro.model.package import PackageError, read_manifest

logger = logging.getLogger(__name__)

#: Its data's fingerprint is the dataset version every run is tagged with.
INSTRUCTION_DATASET = "instruction_dataset"
#: The evaluation's summary metrics (``<system>.<metric>.<stat>``): each variant's go to its run.
TEST_METRICS = "automated_eval_mlflow_metrics"
DEFAULT_ENV = "local"
MODEL_TRAINING_VIEW = "machine_learning"  # the UI's "Model training" workflow


def test_metrics_by_variant(metrics: dict, variants: list[str]) -> dict[str, dict[str, float]]:
    """``{variant: {"test/<metric>": estimate, "test/<metric>.ci_low": ...}}`` from the
    evaluation's ``<condition>/<system>.<metric>.<stat>`` metrics: ``test/`` for
    ``as_mixed``, ``test_<condition>/`` for the other conditions. The keys are the same for
    every variant, so Compare shows them side by side."""
    found: dict[str, dict[str, float]] = {}
    for key, entry in metrics.items():
        condition, slash, rest = key.partition("/")
        if not slash:
            continue
        for variant in variants:
            if not rest.startswith(f"{variant}."):
                continue
            metric, _, stat = rest.removeprefix(f"{variant}.").rpartition(".")
            group = "test" if condition == AS_MIXED else f"test_{condition}"
            name = f"{group}/{metric}" if stat == "estimate" else f"{group}/{metric}.{stat}"
            found.setdefault(variant, {})[name] = float(entry["value"])
    return found


class TrackingHooks:
    """One parent run per ``kedro run`` and a nested run per variant; runs that end as they
    ended."""

    def __init__(self) -> None:
        self._env = DEFAULT_ENV
        self._params: dict = {}
        self._project_path = None
        self._parent_id: str | None = None
        self._ui_url = "http://127.0.0.1:5000"
        self._training_runs: dict[str, str] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        self._env = context.env or DEFAULT_ENV
        self._project_path = context.project_path
        self._params = context.params
        config = getattr(context, "mlflow", None)  # kedro-mlflow's, set before this hook
        if config is not None:
            uri = str(config.server.mlflow_tracking_uri)
            ui = f"http://{config.ui.host}:{config.ui.port}"
            self._ui_url = uri.rstrip("/") if uri.startswith(("http://", "https://")) else ui

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        active = mlflow.active_run()
        if active is None:
            return  # tracking is off for this pipeline
        self._parent_id = active.info.run_id
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name")]
        pipeline_name = "+".join(n for n in names if n) or "__default__"
        client = mlflow.MlflowClient()
        ratings = str((self._params.get("study") or {}).get("ratings") or "real")
        simulated = ", simulated ratings" if ratings == "simulated" else ""  # say so everywhere
        client.update_run(self._parent_id, name=f"{pipeline_name} ({self._env}{simulated})")
        variants = (self._params.get("systems") or {}).get("variants") or {}
        training = self._params.get("training") or {}
        tags = {
            tracking.TAG_PIPELINE: pipeline_name,
            tracking.TAG_ENV: self._env,
            tracking.TAG_RATINGS: ratings,
            tracking.TAG_VARIANT: ", ".join(variants),
            tracking.TAG_FORMULATION: ", ".join(
                (block or {}).get("formulation", training.get("formulation", "?"))
                for block in variants.values()
            ),
            tracking.TAG_BASE_MODEL: tracking.base_model_name(self._params.get("model") or {}),
        }
        commit = tracking.git_commit(self._project_path, Path(__file__).parent)
        for key, value in {**tags, tracking.TAG_GIT_COMMIT: commit}.items():
            if value:
                client.set_tag(self._parent_id, key, value)
        tracking.ensure_model_training_view(active.info.experiment_id)
        # Registered after MLflow's own exit handler (imported lazily), so it runs before it.
        atexit.unregister(self._end_interrupted_runs)
        atexit.register(self._end_interrupted_runs)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any, node) -> None:
        if self._parent_id is None:
            return
        if dataset_name == INSTRUCTION_DATASET:
            self._tag_dataset_version(data)
        elif dataset_name.endswith(".model_package") and isinstance(data, str):
            try:
                run_id = read_manifest(data).get("mlflow_run_id")
            except PackageError:
                return
            if run_id:
                self._training_runs[dataset_name.removesuffix(".model_package")] = run_id

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        if self._parent_id is None:
            return
        if dataset_name == INSTRUCTION_DATASET:
            self._tag_dataset_version(data)
        elif dataset_name == TEST_METRICS:
            self._log_test_metrics(data)

    def _tag_dataset_version(self, dataset) -> None:
        version = tracking.data_fingerprint(dataset)
        mlflow.MlflowClient().set_tag(self._parent_id, tracking.TAG_DATASET_VERSION, version)

    def _log_test_metrics(self, metrics: dict) -> None:
        variants = (self._params.get("systems") or {}).get("variants") or {}
        parent = mlflow.MlflowClient().get_run(self._parent_id).data.tags
        shared = {
            k: parent[k]
            for k in (
                tracking.TAG_BASE_MODEL,
                tracking.TAG_DATASET_VERSION,
                tracking.TAG_GIT_COMMIT,
            )
            if k in parent
        }
        training = self._params.get("training") or {}
        for variant, values in test_metrics_by_variant(metrics, list(variants)).items():
            formulation = (variants[variant] or {}).get("formulation", training.get("formulation"))
            tags = {**shared, tracking.TAG_FORMULATION: str(formulation)}
            if variant in self._training_runs:
                tags[tracking.TAG_TRAINING_RUN] = self._training_runs[variant]
            run_id = tracking.child_run(self._parent_id, variant, tags)
            tracking.log_metrics(run_id, values)

    @hook_impl
    def after_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        if self._parent_id is not None:
            run = mlflow.MlflowClient().get_run(self._parent_id)
            # MLflow 3's UI opens experiments on its GenAI view unless the link asks otherwise.
            logger.info(
                "MLflow run %r (make mlflow-ui): %s/#/experiments/%s/runs?workflowType=%s",
                run.info.run_name,
                self._ui_url,
                run.info.experiment_id,
                MODEL_TRAINING_VIEW,
            )
        self._parent_id = None
        self._training_runs = {}

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict, pipeline, catalog) -> None:
        """kedro-mlflow ends the parent FAILED; the variant runs under it end FAILED too."""
        if self._parent_id is not None:
            for run_id in tracking.child_runs(self._parent_id).values():
                tracking.end_if_running(run_id, tracking.FAILED)
        self._parent_id = None
        self._training_runs = {}

    def _end_interrupted_runs(self) -> None:
        """At exit after Ctrl-C or SIGTERM (no Kedro hook sees those): the parent and its
        running variant runs end KILLED, before MLflow's own exit handler could end the
        active run FINISHED."""
        if self._parent_id is None:
            return
        for run_id in tracking.child_runs(self._parent_id).values():
            tracking.end_if_running(run_id, tracking.KILLED)
        # kedro-mlflow reopens the parent before each node: it may be on the stack more than once.
        while (active := mlflow.active_run()) and active.info.run_id == self._parent_id:
            mlflow.end_run(tracking.KILLED)
        tracking.end_if_running(self._parent_id, tracking.KILLED)
        self._parent_id = None
