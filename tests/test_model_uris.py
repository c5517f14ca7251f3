"""`anchormix advise --model` with MLflow URIs: the store named by --tracking-uri is the one
read, whatever the current folder, and nothing is created there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from anchormix_kedro.model.mlflow_model import log_package, register_package

DOWNLOAD = """
import sys
from anchormix_kedro.advise.model_advice import _download_from_mlflow
print(_download_from_mlflow(sys.argv[1], sys.argv[2]))
"""


def _store_with_package(root: Path) -> tuple[str, str]:
    """A SQLite store whose one run holds a package logged as the MLflow model ``advisor``,
    as fine-tuning logs it."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    package = root / "advisor"
    package.mkdir()
    (package / "anchormix.json").write_text('{"variant": "advisor"}')
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.MlflowClient().create_experiment(
            "uris", artifact_location=(root / "artifacts").as_uri()
        )
        mlflow.set_experiment(experiment_id=experiment)
        with mlflow.start_run() as run:
            log_package(package, run.info.run_id, "advisor")
    finally:
        mlflow.set_tracking_uri(previous)
    return uri, run.info.run_id


def _download(model: str, tracking_uri: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DOWNLOAD, model, tracking_uri],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_runs_uri_is_read_from_the_given_store_and_nothing_is_left_in_the_cwd(tmp_path):
    store = tmp_path / "project"
    store.mkdir()
    uri, run_id = _store_with_package(store)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _download(f"runs:/{run_id}/advisor", uri, elsewhere)
    assert done.returncode == 0, done.stderr[-2000:]
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert (folder / "anchormix.json").is_file()
    assert list(elsewhere.iterdir()) == []  # no stray mlflow.db or mlruns/


@pytest.fixture
def tracked(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("registry_test")
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def test_the_first_version_gets_the_alias_and_later_ones_leave_it(tracked, tmp_path, monkeypatch):
    """Registering by default: version 1 becomes @champion; version 2 does not take it."""
    import anchormix_kedro.model.mlflow_model as mlflow_model

    registry = {"register": True, "model_name": "anchormix-{variant}", "alias": "champion"}
    records = []
    for attempt in range(2):
        with mlflow.start_run() as run:
            model = mlflow.pyfunc.log_model(
                name="advisor", python_model=mlflow_model.PackageModel()
            )
            package = tmp_path / f"package{attempt}"
            package.mkdir()
            monkeypatch.setattr(
                mlflow_model, "read_manifest", lambda _: {"mlflow_run_id": run.info.run_id}
            )
            records.append(register_package(package, "advisor", registry))
            assert records[-1]["model_id"] == model.model_id
    assert [r["version"] for r in records] == ["1", "2"]
    assert [r["alias"]["version"] for r in records] == ["1", "1"]
    assert records[1]["alias"]["uri"] == "models:/anchormix-advisor@champion"
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("anchormix-advisor", "champion").version) == "1"


def test_without_a_tracked_run_nothing_is_registered_and_the_record_says_why(tmp_path, monkeypatch):
    import anchormix_kedro.model.mlflow_model as mlflow_model

    monkeypatch.setattr(mlflow_model, "read_manifest", lambda _: {"mlflow_run_id": None})
    record = register_package(tmp_path, "advisor", {"register": True, "alias": "champion"})
    assert record["registered"] is False and "no MLflow model 'advisor'" in record["reason"]


def test_a_download_puts_mlflows_global_store_back(tmp_path, monkeypatch):
    """advise --model in a longer process (a notebook, the suite) must not leave MLflow's
    global registry pointing at the store it read: a later kedro run would register its
    models there instead of in its own store."""
    from anchormix_kedro.advise.model_advice import _download_from_mlflow

    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = tmp_path / "project"
    store.mkdir()
    uri, run_id = _store_with_package(store)
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    folder = _download_from_mlflow(f"runs:/{run_id}/advisor", uri)
    assert (folder / "anchormix.json").is_file()
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert mlflow.get_registry_uri() != uri and mlflow.get_tracking_uri() != uri
