"""MLflow runs that compare: :class:`TrackingHooks` names the run kedro-mlflow opens for a
``kedro run`` by pipeline and environment and tags it; every system evaluated gets a nested
run named after it, trained variants (their training run, :mod:`anchormix_kedro.model.tracking`)
and baselines alike, holding the same few headline metrics (``<condition>/<metric>``), its
rows of the summary and its per-example advice as a table. Runs stopped by an error end
FAILED, runs stopped by Ctrl-C or SIGTERM (a cancelled or preempted Slurm job, see
:mod:`.termination`) end KILLED.
"""

from __future__ import annotations

import atexit
import json
import logging
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from kedro.framework.hooks import hook_impl
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from anchormix_kedro.evaluation import meter_oracle
from anchormix_kedro.evaluation.conditions import AS_MIXED
from anchormix_kedro.evaluation.meter_oracle import system_kind as evaluated_kind
from anchormix_kedro.model import tracking
from anchormix_kedro.model.package import PackageError, read_manifest

logger = logging.getLogger(__name__)

#: Its data's fingerprint is the dataset version every run is tagged with.
INSTRUCTION_DATASET = "instruction_dataset"
#: The evaluation's own MLflow metrics: only its coverage (``judge.*``, ``listwise.*``)
#: goes to the parent; each system's numbers go to the system's run.
EVALUATION_METRICS = "automated_eval_mlflow_metrics"
#: Per example and system: what each system's run shows as its advice table.
PER_EXAMPLE_METRICS = "evaluation_metrics"
#: Per condition, system and metric, with intervals: each system's headline metrics.
SYSTEM_SUMMARY = "system_summary"
DEFAULT_ENV = "local"
MODEL_TRAINING_VIEW = "machine_learning"  # the UI's "Model training" workflow

NOTE_TAG = "mlflow.note.content"  # the run's description in the UI (markdown)
TAG_SYSTEM = "anchormix.system"
TAG_KIND = "anchormix.kind"
TRAINED = "trained variant"
BASELINE = "baseline"
ORACLE = meter_oracle.ORACLE
#: The metrics every system's run carries, per condition: the few a comparison starts from.
#: The full summary (every metric, its interval and counts) is the run's artifact.
HEADLINE_METRICS = (
    "direction_accuracy",
    "balanced_f1",
    "parse_rate",
    "fader_move_mae_db",
    "amount_mae_db",
    "bertscore_f1",
    "rouge_l",
    "meteor",
    "judge_mean",
    "listwise_mean_rank",
    "latency_s",
)
#: The per-example table's columns an analyst reads first, when the run has them.
ADVICE_COLUMNS = (
    "condition",
    "example_id",
    "song",
    "genre",
    "anchor",
    "target",
    "gain_db",
    "label",
    "advice",
    "reference_advice",
    "predicted_direction",
    "predicted_amount_db",
    "direction_correct",
    "fader_move_error_db",
    "bertscore_f1",
    "rouge_l",
    "meteor",
    "judge_mean",
    "latency_s",
)
SUMMARY_ARTIFACT = "evaluation/summary.csv"
ADVICE_ARTIFACT = "evaluation/advice.json"


def headline_metrics(summary: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{system: {"<condition>/<metric>": estimate}}`` for the headline metrics: the same
    names in every system's run. A metric that was not computed (no examples, no estimate,
    e.g. the judge's when no judge ran) is absent, not zero."""
    found: dict[str, dict[str, float]] = {}
    rows = summary[summary["metric"].isin(HEADLINE_METRICS)]
    for row in rows.itertuples(index=False):
        estimate = pd.to_numeric(row.estimate, errors="coerce")
        examples = pd.to_numeric(getattr(row, "n", 1), errors="coerce")
        if pd.isna(estimate) or not np.isfinite(estimate) or not examples or pd.isna(examples):
            continue
        condition = str(getattr(row, "condition", None) or AS_MIXED)
        found.setdefault(str(row.system), {})[f"{condition}/{row.metric}"] = float(estimate)
    return found


def system_kind(system: str, systems: dict) -> str:
    """``trained variant`` for a system declared in ``systems.variants``, ``oracle`` for the
    exact level meter beside the systems, else ``baseline``."""
    if system in ((systems or {}).get("variants") or {}):
        return TRAINED
    return ORACLE if evaluated_kind(system, systems) == meter_oracle.ORACLE else BASELINE


def advice_table(per_example: pd.DataFrame, system: str) -> pd.DataFrame:
    """The system's examples as an analyst reads them: what it said beside the truth."""
    rows = per_example[per_example["system"] == system]
    columns = [c for c in ADVICE_COLUMNS if c in rows.columns]
    return rows[columns].reset_index(drop=True)


def compare_link(ui_url: str, experiment_id: str, run_ids: list[str]) -> str:
    """The UI's Compare page for these runs (MLflow reads JSON lists from the link)."""
    query = urllib.parse.urlencode(
        {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])}
    )
    return f"{ui_url}/#/compare-runs?{query}"


class TrackingHooks:
    """One parent run per ``kedro run`` and a nested run per system; runs that end as they
    ended."""

    def __init__(self) -> None:
        self._env = DEFAULT_ENV
        self._params: dict = {}
        self._project_path = None
        self._parent_id: str | None = None
        self._ui_url = "http://127.0.0.1:5000"
        self._training_runs: dict[str, str] = {}
        self._per_example: pd.DataFrame | None = None

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
        elif dataset_name == PER_EXAMPLE_METRICS and isinstance(data, pd.DataFrame):
            self._per_example = data
        elif dataset_name == SYSTEM_SUMMARY and isinstance(data, pd.DataFrame):
            self._log_system_runs(data)
        elif dataset_name == EVALUATION_METRICS and isinstance(data, dict):
            coverage = {
                k: v["value"] for k, v in data.items() if k.startswith(("judge.", "listwise."))
            }
            tracking.log_metrics(self._parent_id, coverage)

    def _tag_dataset_version(self, dataset) -> None:
        version = tracking.data_fingerprint(dataset)
        mlflow.MlflowClient().set_tag(self._parent_id, tracking.TAG_DATASET_VERSION, version)

    def _log_system_runs(self, summary: pd.DataFrame) -> None:
        """One nested run per system in the summary, named after it: a trained variant's
        training run when this ``kedro run`` trained it, else a new run (tagged with the run
        that trained the package it evaluated, when known)."""
        systems = self._params.get("systems") or {}
        variants = systems.get("variants") or {}
        training = self._params.get("training") or {}
        client = mlflow.MlflowClient()
        parent = client.get_run(self._parent_id).data.tags
        shared = {
            k: parent[k]
            for k in (
                tracking.TAG_BASE_MODEL,
                tracking.TAG_DATASET_VERSION,
                tracking.TAG_GIT_COMMIT,
            )
            if k in parent
        }
        metrics = headline_metrics(summary)
        for system in dict.fromkeys(summary["system"].astype(str)):
            kind = system_kind(system, systems)
            tags = {**shared, TAG_SYSTEM: system, TAG_KIND: kind}
            if kind == TRAINED:
                block = variants.get(system) or {}
                tags[tracking.TAG_FORMULATION] = str(
                    block.get("formulation", training.get("formulation"))
                )
                run_id = tracking.child_run(self._parent_id, system, tags)
                trained_by = self._training_runs.get(system)
                if trained_by and trained_by != run_id:  # evaluated here, trained elsewhere
                    tags[tracking.TAG_TRAINING_RUN] = trained_by
            else:
                run_id = self._baseline_run(system, tags)
            for key, value in tags.items():
                client.set_tag(run_id, key, value)
            tracking.log_metrics(run_id, metrics.get(system, {}))
            self._log_tables(client, run_id, system, summary)

    def _baseline_run(self, system: str, tags: dict[str, str]) -> str:
        client = mlflow.MlflowClient()
        parent = client.get_run(self._parent_id)
        found = client.search_runs(
            [parent.info.experiment_id],
            filter_string=(
                f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self._parent_id}' "
                f"AND tags.`{TAG_SYSTEM}` = '{system}'"
            ),
        )
        if found:
            return found[0].info.run_id
        run_id = client.create_run(
            parent.info.experiment_id,
            run_name=system,
            tags={MLFLOW_PARENT_RUN_ID: self._parent_id, **tags},
        ).info.run_id
        client.set_terminated(run_id, tracking.FINISHED)
        return run_id

    def _log_tables(
        self, client: mlflow.MlflowClient, run_id: str, system: str, summary: pd.DataFrame
    ) -> None:
        rows = summary[summary["system"].astype(str) == system]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / Path(SUMMARY_ARTIFACT).name
            rows.to_csv(path, index=False)
            client.log_artifact(run_id, str(path), str(Path(SUMMARY_ARTIFACT).parent))
        if self._per_example is not None and "system" in self._per_example:
            client.log_table(run_id, advice_table(self._per_example, system), ADVICE_ARTIFACT)

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
            systems = tracking.child_runs(self._parent_id, named_by=TAG_SYSTEM)
            if systems:
                link = compare_link("", run.info.experiment_id, list(systems.values()))
                # The parent's description links them too: two clicks from the experiment.
                mlflow.MlflowClient().set_tag(
                    self._parent_id,
                    NOTE_TAG,
                    f"[Compare the {len(systems)} systems: {', '.join(systems)}]({link})",
                )
                logger.info("Its %d systems side by side: %s%s", len(systems), self._ui_url, link)
        self._parent_id = None
        self._training_runs = {}
        self._per_example = None

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict, pipeline, catalog) -> None:
        """kedro-mlflow ends the parent FAILED; the variant runs under it end FAILED too."""
        if self._parent_id is not None:
            for run_id in tracking.child_runs(self._parent_id).values():
                tracking.end_if_running(run_id, tracking.FAILED)
        self._parent_id = None
        self._training_runs = {}
        self._per_example = None

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
