"""MLflow that compares variants and registers models; training on several processes.

Against real MLflow: SQLite stores and a real ``mlflow server`` on 127.0.0.1, real Kedro
runs in subprocesses (killed with SIGTERM, under torchrun with two gloo processes).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import soundfile
import yaml

from anchormix_kedro.instruction_data.card import make_dataset_card
from anchormix_kedro.model import tracking
from anchormix_kedro.model.callbacks import MlflowStepLogger, metric_key
from anchormix_kedro.model.package import PACKAGE_MANIFEST
from conftest import PROJECT_ROOT, tiny_training, tone_stems

BIN = Path(sys.executable).parent
SMALL_CORPUS = {
    "ingestion": {
        "excerpt": {"seconds": 2.0},  # the tiny test model hears 2 s
        "synthetic": {"n_songs": 6, "seconds": 5.0, "seed": 3, "instrumental_fraction": 0.2},
    },
    "perturbation": {"offsets": {"mode": "grid", "values": [0, -6, 3]}},
}


@pytest.fixture
def sqlite_tracking(tmp_path):
    """A real SQLite MLflow store made the global tracking URI for the test."""
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("tracking_test")
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(previous)


def test_losses_have_the_same_keys_in_every_variant_and_each_step_once(sqlite_tracking):
    assert metric_key("train", "loss") == "train/loss"
    assert metric_key("train", "eval_loss") == "eval/loss"
    assert metric_key("pretrain", "eval_loss") == "pretrain_eval/loss"
    assert metric_key("train", "train_loss") == "train/mean_loss"  # the summary, not a step
    client = mlflow.MlflowClient()
    run_id = client.create_run(mlflow.get_experiment_by_name("tracking_test").experiment_id)
    run_id = run_id.info.run_id
    first = MlflowStepLogger(run_id, "train/")
    first.log({"loss": 2.0, "grad_norm": 1.0, "epoch": 0.5}, step=10)
    first.log({"eval_loss": 1.8, "epoch": 0.5}, step=10)
    first.log({"loss": 1.9}, step=20)  # logged before the kill; the checkpoint was at 10
    resumed = MlflowStepLogger(run_id, "train/")  # a new process resumes from step 10
    resumed.log({"loss": 1.95}, step=20)
    resumed.log({"loss": 1.5, "train_loss": 1.7, "train_runtime": 3.0}, step=30)
    history = [(m.step, m.value) for m in client.get_metric_history(run_id, "train/loss")]
    assert sorted(history) == [(10, 2.0), (20, 1.9), (30, 1.5)]
    metrics = client.get_run(run_id).data.metrics
    assert metrics["eval/loss"] == 1.8 and metrics["train/mean_loss"] == 1.7
    assert {"train/grad_norm", "train/epoch", "train/runtime"} <= set(metrics)


def test_a_variant_run_ends_as_it_ended_and_continues_under_the_next_parent(
    tmp_path, sqlite_tracking
):
    work = tmp_path / "work"
    tags = {tracking.TAG_VARIANT: "advisor", tracking.TAG_FORMULATION: "anchor_target"}
    params = {"training.formulation": "anchor_target", "training.lora.r": "32"}
    with mlflow.start_run(run_name="first") as first:
        with pytest.raises(KeyboardInterrupt), tracking.variant_run(work, "advisor", tags, params):
            run_id = tracking.run_for(work)
            raise KeyboardInterrupt
    assert tracking.run_for(work) is None
    client = mlflow.MlflowClient()
    killed = client.get_run(run_id)
    assert killed.info.status == "KILLED" and killed.info.run_name == "advisor"
    assert killed.data.tags["mlflow.parentRunId"] == first.info.run_id
    # The first parent was left running by a process that died without ending it.
    client.update_run(first.info.run_id, status="RUNNING")
    with mlflow.start_run(run_name="second") as second:
        with tracking.variant_run(work, "advisor", tags, params) as again:
            assert again == run_id
    resumed = client.get_run(run_id)
    assert resumed.info.status == "FINISHED" and resumed.data.tags[tracking.TAG_RESUMED] == "1"
    assert resumed.data.tags["mlflow.parentRunId"] == second.info.run_id
    assert resumed.data.params == params
    assert client.get_run(first.info.run_id).info.status == "KILLED"
    assert tracking.child_runs(second.info.run_id) == {"advisor": run_id}
    with mlflow.start_run(run_name="third"):
        with pytest.raises(ValueError), tracking.variant_run(work, "advisor", tags, params):
            raise ValueError("out of memory")
    assert client.get_run(run_id).info.status == "FAILED"
    # Without an active run nothing is tracked.
    with tracking.variant_run(work, "advisor", tags, params) as untracked:
        assert untracked is None and tracking.run_for(work) is None


def test_the_dataset_card_starts_with_source_licence_and_counts():
    stems = ["drums", "vocals"]
    dataset = pd.DataFrame(
        {
            "song": ["A", "A", "B", "C"],
            "split": ["train", "train", "valid", "test"],
            "anchor": stems[:1] * 4,
            "target": stems[1:] * 4,
            "label": ["too_loud", "balanced", "too_soft", "balanced"],
            "genre": ["Pop/Rock"] * 4,
        }
    )
    conventions = pd.DataFrame(
        columns=["genre", "anchor", "target", "n_songs", "median_db", "q25_db", "q75_db"]
    )
    ingestion = {"songs_skipped": {}, "songs_listed": 3, "songs_ingested": 3, "warnings": []}
    perturbation = {"pairs_formed": 3, "pairs_skipped": {}}
    tracks = pd.DataFrame({"song": ["A", "B", "C"], "source": "musdb", "layout": "wav_folder"})
    card = make_dataset_card(dataset, conventions, ingestion, perturbation, tracks)
    assert card.startswith("---\n")
    header = yaml.safe_load(card.split("---")[1])
    assert header["license"] == "other" and header["license_name"] == "musdb18-hq"
    assert header["source_datasets"] == ["musdb18-hq"]
    assert "non-commercial research" in header["anchormix"]["terms"]
    splits = {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}
    assert splits == {"test": 1, "train": 2, "valid": 1}
    assert header["anchormix"]["songs"] == {"test": 1, "train": 1, "valid": 1}
    stem_mp4 = tracks.assign(layout="stem_mp4")
    mp4_card = make_dataset_card(dataset, conventions, ingestion, perturbation, stem_mp4)
    assert yaml.safe_load(mp4_card.split("---")[1])["license_name"] == "musdb18"
    synthetic = tracks.assign(source="synthetic")
    header = yaml.safe_load(
        make_dataset_card(dataset, conventions, ingestion, perturbation, synthetic).split("---")[1]
    )
    assert header["license"] == "cc0-1.0" and header["source_datasets"] == ["synthetic"]


# --------------------------------------------------------------------------- whole runs


def _write_project(root: Path, tracking_uri: str, params: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root)
    if not (root / "conf" / "base").is_dir():
        shutil.copytree(PROJECT_ROOT / "conf" / "base", root / "conf" / "base")
    mlflow_yml = root / "conf" / "base" / "mlflow.yml"
    config = yaml.safe_load(mlflow_yml.read_text())
    config["server"]["mlflow_tracking_uri"] = tracking_uri
    mlflow_yml.write_text(yaml.safe_dump(config))
    (root / "conf" / "local").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(params))
    (root / "src").mkdir(exist_ok=True)  # the package itself is installed
    return root


def _kedro(project: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [str(BIN / "kedro"), "run", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A project whose data pipeline has run on a small synthetic corpus (copied per test)."""
    root = tmp_path_factory.mktemp("prepared") / "project"
    _write_project(root, f"sqlite:///{root}/mlflow.db", SMALL_CORPUS)
    _kedro(root, "--pipeline=data")
    return root


def _copy(prepared: Path, target: Path, tracking_uri: str, params: dict) -> Path:
    shutil.copytree(prepared, target, ignore=shutil.ignore_patterns("mlflow.db", "mlruns"))
    return _write_project(target, tracking_uri, {**SMALL_CORPUS, **params})


def _runs(client: mlflow.MlflowClient) -> tuple[list, dict]:
    experiment = client.get_experiment_by_name("anchormix_kedro")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children: dict[str, list] = {}
    for run in runs:
        if "mlflow.parentRunId" in run.data.tags:
            children.setdefault(run.data.tags["mlflow.parentRunId"], []).append(run)
    return parents, children


def _models(client: mlflow.MlflowClient, run) -> list[str]:
    found = client.search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    return [m.name for m in found]


def _steps(client: mlflow.MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


@pytest.mark.slow
def test_a_killed_training_ends_killed_and_resumes_in_the_same_run(prepared, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    project = _copy(prepared, tmp_path / "project", uri, tiny_training(steps=6, save_steps=3))
    log = (tmp_path / "killed.log").open("w")
    killed = subprocess.Popen(
        [str(BIN / "kedro"), "run", "--pipeline=fine_tuning"],
        cwd=project,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    work = project / "data" / "06_models" / "work"
    deadline = time.monotonic() + 400
    while not list(work.glob("finetune-*/checkpoints/checkpoint-3/trainer_state.json")):
        assert killed.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint was saved in time"
        time.sleep(0.1)
    killed.send_signal(signal.SIGTERM)  # as Slurm does when it cancels or preempts a job
    assert killed.wait(timeout=120) != 0
    client = mlflow.MlflowClient(uri)
    (first_parent,), children = _runs(client)
    (advisor,) = children[first_parent.info.run_id]
    assert first_parent.info.status == "KILLED" and advisor.info.status == "KILLED"
    assert (
        first_parent.info.run_name == "fine_tuning (local)" and advisor.info.run_name == "advisor"
    )
    assert _steps(client, advisor.info.run_id, "train/loss")[:3] == [1, 2, 3]

    _kedro(project, "--pipeline=fine_tuning")
    parents, children = _runs(client)
    (second_parent,) = [p for p in parents if p.info.run_id != first_parent.info.run_id]
    assert second_parent.info.status == "FINISHED"
    variants = {r.info.run_name: r for r in children[second_parent.info.run_id]}
    assert set(variants) == {"advisor", "no_anchor", "single_clip"}
    resumed = variants["advisor"]
    assert resumed.info.run_id == advisor.info.run_id  # the same run, continued
    assert resumed.info.status == "FINISHED" and resumed.data.tags[tracking.TAG_RESUMED] == "1"
    for key in ("train/loss", "eval/loss", "pretrain/loss"):
        steps = _steps(client, resumed.info.run_id, key)
        assert steps and max(Counter(steps).values()) == 1, (key, steps)
    assert _steps(client, resumed.info.run_id, "train/loss") == list(range(1, 7))
    assert resumed.data.params["training.formulation"] == "anchor_target"
    assert "valid/direction_accuracy" in resumed.data.metrics
    assert _models(client, resumed) == ["advisor"]
    assert client.get_run(first_parent.info.run_id).info.status == "KILLED"
    # Each variant stages its package in its own work folder (replaced when it trains
    # again), not in a temporary folder that would outlive the run.
    assert len(list(work.glob(f"finetune-*/package/{PACKAGE_MANIFEST}"))) == 3


@pytest.mark.slow
def test_two_processes_train_one_parent_run_and_one_package_per_variant(prepared, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    project = _copy(prepared, tmp_path / "project", uri, tiny_training(steps=3, save_steps=3))
    completed = subprocess.run(
        [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2"]
        + ["-m", "anchormix_kedro", "--pipeline=fine_tuning"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "250"},  # unwrapped log lines
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    assert "Process 1 of 2 joined the process group" in output
    assert "Process 1 loads what process 0 writes" in output
    client = mlflow.MlflowClient(uri)
    (parent,), children = _runs(client)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "fine_tuning (local)"
    variants = {r.info.run_name: r for r in children[parent.info.run_id]}
    assert set(variants) == {"advisor", "no_anchor", "single_clip"}
    for name, run in variants.items():
        assert _models(client, run) == [name]
        assert _steps(client, run.info.run_id, "train/loss") == [1, 2, 3]
        versions = list((project / "data" / "06_models" / name).iterdir())
        assert len(versions) == 1, versions  # written once, by the first process
        report = json.loads(
            (project / f"data/08_reporting/{name}_training_report.json").read_text()
        )
        assert report["mlflow_run_id"] == run.info.run_id
        assert "direction_accuracy" in report["metrics"]  # the first process's report


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {seconds} s: {log.read_text()[-3000:]}")


@pytest.fixture
def mlflow_server(tmp_path):
    """A real tracking server on 127.0.0.1 with its own store and artifact root."""
    port = _free_port()
    log = tmp_path / "server.log"
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
        + ["--backend-store-uri", f"sqlite:///{tmp_path}/server.db"]
        + ["--artifacts-destination", str(tmp_path / "server-artifacts"), "--workers", "1"],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers too are stopped with it
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{uri}/health", server, log)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


@pytest.mark.slow
def test_a_model_registered_on_a_tracking_server_advises(
    prepared, tmp_path, mlflow_server, monkeypatch
):
    params = {**tiny_training(steps=2, save_steps=2), "registry": {"register": True}}
    project = _copy(prepared, tmp_path / "project", mlflow_server, params)
    advisor = "advisor.train_advice_model,advisor.register_model"
    _kedro(project, "--pipeline=fine_tuning", f"--nodes=compute_log_mel_features,{advisor}")
    client = mlflow.MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("anchormix_kedro")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (parent,), children = _runs(client)
    (run,) = children[parent.info.run_id]
    assert run.info.run_name == "advisor" and _models(client, run) == ["advisor"]
    registration = json.loads(
        (project / "data/08_reporting/advisor_model_registration.json").read_text()
    )
    assert registration["registered"] and registration["uri"] == "models:/anchormix-advisor/1"
    assert registration["run_id"] == run.info.run_id
    (version,) = client.search_model_versions("name = 'anchormix-advisor'")
    assert version.source.startswith("models:/m-")
    model = client.get_logged_model(registration["model_id"])
    assert model.source_run_id == registration["run_id"] and model.name == "advisor"

    song = tmp_path / "song"
    song.mkdir()
    for stem, audio in tone_stems(3.0).items():
        soundfile.write(str(song / f"{stem}.wav"), audio, 44100)
    advised = subprocess.run(
        [str(BIN / "anchormix"), "advise", str(song), "--model", registration["uri"]]
        + ["--tracking-uri", mlflow_server, "--json", "--window-seconds", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert advised.returncode == 0, advised.stderr[-3000:]
    start = re.search(r'^\{\s*"', advised.stdout, re.MULTILINE).start()  # the JSON, not a log
    result, _ = json.JSONDecoder().raw_decode(advised.stdout[start:])
    assert result["model"] == "models:/anchormix-advisor/1"
    assert {t["stem"] for t in result["targets"]} == {"bass", "other", "vocals"}
    assert all(isinstance(t["advice"], str) and t["advice"] for t in result["targets"])

    # The same model through MLflow's pyfunc interface, on its fixed input example.
    from anchormix_kedro.model.mlflow_model import input_example

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    try:
        pyfunc = mlflow.pyfunc.load_model("models:/anchormix-advisor/1")
        answers = pyfunc.predict(input_example())
    finally:
        mlflow.set_tracking_uri(previous)
        # Unset, not the server's: MLflow keeps a set registry in the environment.
        mlflow.set_registry_uri(None)
        os.environ.pop("MLFLOW_REGISTRY_URI", None)
    assert list(answers.columns) == ["advice", "verdict", "fader_move_db"] and len(answers) == 1
    inputs = pyfunc.metadata.get_input_schema().input_names()
    assert inputs == ["anchor", "target", "anchor_audio", "target_audio", "sample_rate", "genre"]

    # Hugging Face conventions: the adapter names a base that resolves, and has a filled card.
    (package,) = (project / "data" / "06_models" / "advisor").glob("*/advisor")
    config = json.loads((package / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str((package / "base").resolve())
    card = (package / "adapter" / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["library_name"] == "peft" and header["license"] == "cc0-1.0"
    assert "anchor_target" in header["tags"]
    manifest = json.loads((package / "anchormix.json").read_text())
    accuracy = manifest["metrics"]["direction_accuracy"]
    assert f"| direction_accuracy | {accuracy:.4g} |" in card
    assert "AnchorMix synthetic multitracks" in card and "| train | " in card
    assert "PeftModel.from_pretrained" in card
    from peft import PeftModel
    from transformers import Qwen2AudioForConditionalGeneration

    monkeypatch.chdir(tmp_path)  # as a peft user elsewhere: the base from the adapter's config
    base = Qwen2AudioForConditionalGeneration.from_pretrained(config["base_model_name_or_path"])
    adapted = PeftModel.from_pretrained(base, package / "adapter")
    assert adapted.peft_config["default"].r == 32


@pytest.mark.slow
def test_make_mlflow_ui_works_in_a_fresh_shell(tmp_path):
    project = _write_project(tmp_path / "project", f"sqlite:///{tmp_path}/ui.db", {})
    shutil.copy(PROJECT_ROOT / "Makefile", project)
    (project / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    port = _free_port()
    log = tmp_path / "ui.log"
    shell = {  # no activated environment: the venv's bin is not on PATH
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        **{k: os.environ[k] for k in ("DO_NOT_TRACK", "MLFLOW_DISABLE_TELEMETRY")},
    }
    ui = subprocess.Popen(
        ["make", "-o", ".venv/bin/.installed", "mlflow-ui", f"ARGS=--port {port}"],
        cwd=project,
        env=shell,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, kedro and the mlflow server they start
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/", ui, log)
        _wait_for(f"http://127.0.0.1:{port}/health", ui, log)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)
    assert "FileNotFoundError" not in log.read_text()


# --------------------------------------------------------------------------- system runs


def test_every_system_gets_the_same_headline_names_and_nothing_that_was_not_computed():
    from anchormix_kedro.hooks.mlflow_runs import (
        HEADLINE_METRICS,
        headline_metrics,
        system_kind,
    )

    rows = []
    for system in ("advisor", "no_anchor", "dsp_baseline"):
        for condition in ("as_mixed", "gain_staged"):
            rows.append((condition, system, "direction_accuracy", 0.5, 6))
            rows.append((condition, system, "rouge_l", 0.25, 6))
            rows.append((condition, system, "rouge_l_as_written", 0.2, 6))  # not a headline
            rows.append((condition, system, "judge_mean", float("nan"), 0))  # no judge ran
            amount = float("nan") if system == "no_anchor" else 2.0  # never right: no amount
            rows.append((condition, system, "amount_mae_db", amount, 0 if amount != 2 else 4))
    summary = pd.DataFrame(rows, columns=["condition", "system", "metric", "estimate", "n"])
    found = headline_metrics(summary)
    assert set(found) == {"advisor", "no_anchor", "dsp_baseline"}
    assert (
        found["advisor"]
        == found["dsp_baseline"]
        == {
            "as_mixed/direction_accuracy": 0.5,
            "as_mixed/rouge_l": 0.25,
            "as_mixed/amount_mae_db": 2.0,
            "gain_staged/direction_accuracy": 0.5,
            "gain_staged/rouge_l": 0.25,
            "gain_staged/amount_mae_db": 2.0,
        }
    )
    assert "as_mixed/amount_mae_db" not in found["no_anchor"]  # absent, not NaN or zero
    assert not any("judge" in key for keys in found.values() for key in keys)
    assert all(key.split("/")[1] in HEADLINE_METRICS for keys in found.values() for key in keys)
    systems = {"variants": {"advisor": {}, "no_anchor": {}}, "baselines": ["dsp_baseline"]}
    assert system_kind("no_anchor", systems) == "trained variant"
    assert system_kind("dsp_baseline", systems) == "baseline"
    assert system_kind("oracle_meter", systems) == "oracle"
    assert system_kind("some_new_baseline", systems) == "baseline"  # any other name


def test_the_compare_link_names_every_run_and_the_experiment():
    import json as json_module
    import urllib.parse

    from anchormix_kedro.hooks.mlflow_runs import compare_link

    link = compare_link("http://127.0.0.1:5000", "3", ["a1", "b2"])
    assert link.startswith("http://127.0.0.1:5000/#/compare-runs?")
    query = urllib.parse.parse_qs(link.split("?", 1)[1])
    assert json_module.loads(query["runs"][0]) == ["a1", "b2"]
    assert json_module.loads(query["experiments"][0]) == ["3"]
