"""The checks a run makes before any node runs: parameters, the model, CUDA, folders, the
tracking store; and one-line errors from `kedro run`."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from anchormix_kedro.preflight import (
    PreflightError,
    environment_problems,
    model_problems,
    parameter_problems,
    raise_for,
    tracking_problems,
)
from conftest import PROJECT_ROOT, tone_stems, write_hq_song

KEDRO = Path(sys.executable).parent / "kedro"
PAIRS = {"anchors": ["drums"], "targets": ["vocals"]}


def test_one_stem_name_is_a_list_and_unknown_names_are_named():
    assert parameter_problems({"pairs": {"anchors": "bass", "targets": ["vocals"]}}) == []
    (problem,) = parameter_problems({"pairs": {"anchors": ["drums"], "targets": ["vocal"]}})
    assert "['vocal'] in pairs.targets" in str(problem) and "drums, bass, other, vocals" in str(
        problem
    )
    with pytest.raises(PreflightError, match=r"unknown stem name\(s\) \['vocal'\]"):
        raise_for([problem])


def test_roots_tolerance_and_systems_are_checked_together(tmp_path):
    (tmp_path / "empty").mkdir()
    problems = parameter_problems(
        {
            "pairs": PAIRS,
            "musdb_root": str(tmp_path / "empty"),
            "perturbation": {"balanced_tolerance_db": -1, "offsets": {"values": [0, "six"]}},
            "systems": {"variants": {"advisor": {}}, "baselines": ["rule"]},
        }
    )
    text = "\n".join(map(str, problems))
    assert len(problems) == 4, text
    assert "holds no songs: it has no train/ or test/ folder" in text and "MUSDB_PATH" in text
    assert "balanced_tolerance_db is -1" in text and "'six'" in text
    assert "unknown baseline(s) ['rule']" in text
    assert parameter_problems({"pairs": PAIRS, "musdb_root": str(tmp_path / "none")})[0].what == (
        f"musdb_root {tmp_path / 'none'} is not a folder"
    )


def test_a_missing_base_model_names_the_cache_and_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "hf"
    (problem,) = model_problems(
        {"source": "pretrained", "name_or_path": "Qwen/Qwen2-Audio-7B-Instruct", "cache_dir": cache}
    )
    assert "Qwen/Qwen2-Audio-7B-Instruct" in problem.what and str(cache) in problem.what
    assert f"hf download Qwen/Qwen2-Audio-7B-Instruct --cache-dir {cache}" in problem.fix
    saved = tmp_path / "model"
    saved.mkdir()
    assert (
        "no config.json" in model_problems({"source": "pretrained", "name_or_path": saved})[0].what
    )
    (saved / "config.json").write_text("{}")
    assert model_problems({"source": "pretrained", "name_or_path": str(saved)}) == []
    assert model_problems({"source": "tiny"}) == []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  (the http.server name)
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


def test_the_tracking_server_must_answer(tmp_path):
    port = free_port()
    (problem,) = tracking_problems(f"http://127.0.0.1:{port}", timeout_s=2)
    assert f"http://127.0.0.1:{port} does not answer" in problem.what
    server = http.server.HTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert tracking_problems(f"http://127.0.0.1:{port}") == []
    finally:
        server.shutdown()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        (problem,) = environment_problems({}, ["data"], locked / "data", None)
        assert "data_root" in problem.what and "not writable" in problem.what
    finally:
        locked.chmod(0o700)


def cli_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project)
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    (project / "logs").mkdir()
    (project / "src").mkdir()
    return project


def kedro(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "COLUMNS": "200", **env}
    environment.pop("MUSDB_PATH", None)
    return subprocess.run(
        [str(KEDRO), *args],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_pace_training_without_the_model_stops_in_a_few_lines(tmp_path):
    project = cli_project(tmp_path)
    result = kedro(
        project,
        "run",
        "--pipeline=training",
        "--env=pace",
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_CACHE=str(tmp_path / "hf-cache"),
        ANCHORMIX_DATA_ROOT=str(tmp_path / "scratch"),
        ANCHORMIX_MLFLOW_URI=f"sqlite:///{tmp_path}/mlflow.db",
    )
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2, output
    assert len(output) <= 10, output
    text = "\n".join(output)
    assert "Qwen/Qwen2-Audio-7B-Instruct" in text and str(tmp_path / "hf-cache") in text
    assert "hf download Qwen/Qwen2-Audio-7B-Instruct" in text
    assert not (tmp_path / "mlflow.db").exists()  # the store was never opened
    assert not (tmp_path / "scratch").exists()  # nothing was written


def test_preflight_alone_and_a_failed_run_in_one_line(tmp_path):
    project = cli_project(tmp_path)
    passed = kedro(project, "preflight", "--pipeline=data")
    assert passed.returncode == 0 and "Preflight passed" in passed.stdout, passed.stderr
    bad = kedro(project, "preflight", "--params", "pairs.anchors=drum")
    assert bad.returncode == 2 and "unknown stem name(s) ['drum'] in pairs.anchors" in bad.stderr
    root = tmp_path / "musdb"
    write_hq_song(root, "train", "Broken", tone_stems(2.0))
    for stem in (root / "train" / "Broken").glob("*.wav"):
        stem.write_bytes(b"not audio")
    failed = kedro(project, "run", "--pipeline=ingestion", "--params", f"musdb_root={root}")
    lines = (failed.stdout + failed.stderr).strip().splitlines()
    assert failed.returncode == 1
    assert lines[-2].startswith("The run failed: ") and "logs/anchormix.log" in lines[-1]
    assert "Traceback" not in failed.stdout + failed.stderr
    assert "Traceback" in (project / "logs" / "anchormix.log").read_text()


def test_a_secret_given_as_a_parameter_stops_the_run_without_being_shown(tmp_path):
    secret = "sk-do-not-log-me"
    params = {
        "pairs": PAIRS,
        "automated_eval": {"judge": {"api_key": secret, "api_key_env": "OPENAI_API_KEY"}},
    }
    (problem,) = parameter_problems(params)
    assert "automated_eval.judge.api_key holds a secret" in str(problem)
    assert secret not in str(problem) and "credentials.yml" in problem.fix
    assert parameter_problems({"pairs": PAIRS, "judge": {"token": ""}}) == []
    project = cli_project(tmp_path)
    result = kedro(
        project,
        "run",
        "--pipeline=automated_eval",
        "--params",
        f"automated_eval.judge.api_key={secret}",
    )
    assert result.returncode == 2 and "api_key holds a secret" in result.stderr
    written = [
        p for p in project.rglob("*") if p.is_file() and secret in p.read_text(errors="ignore")
    ]
    assert written == [] and secret not in result.stdout + result.stderr
    assert not (project / "mlflow.db").exists()


def test_the_model_must_hear_the_whole_excerpt_and_conditions_are_checked():
    tiny = {"source": "tiny", "tiny": {"audio_seconds": 5}}
    fits = {"pairs": PAIRS, "ingestion": {"excerpt": {"seconds": 5.0}}, "model": tiny}
    assert parameter_problems(fits) == []
    (problem,) = parameter_problems({**fits, "ingestion": {"excerpt": {"seconds": 10.0}}})
    assert "excerpt.seconds is 10 s but the model hears 5 s" in problem.what
    assert "model.tiny.audio_seconds to at least 10" in problem.fix
    real = {"source": "pretrained", "front_end": {"max_clip_seconds": 30}}
    assert parameter_problems({**fits, "model": real}) == []
    (problem,) = parameter_problems(
        {**fits, "model": real, "ingestion": {"excerpt": {"seconds": 45.0}}}
    )
    assert "the model hears 30 s" in problem.what
    (problem,) = parameter_problems({**fits, "inference": {"conditions": {"gain_staged": {}}}})
    assert "must include as_mixed" in problem.what and "inference.yml" in problem.fix


def test_an_unknown_pipeline_is_one_line_naming_the_known_ones_and_creates_nothing(tmp_path):
    project = cli_project(tmp_path)
    for command in ("run", "preflight"):
        result = kedro(project, command, "--pipeline=nosuch")
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, lines
        assert "no pipeline 'nosuch'" in lines[0] and "ingestion" in lines[0]
        assert "__default__" in lines[0]
    assert not (project / "mlflow.db").exists() and not (project / "data").exists()


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("pairs.anchors=[drums", "--params pairs.anchors=[drums cannot be read"),
        ("perturbation.offsets.values=5", "perturbation.offsets.values is 5, not a list"),
        ("ingestion.excerpt.seconds=abc", "ingestion.excerpt.seconds is 'abc', not a number"),
        ("perturbation.balanced_tolerance_db=true", "balanced_tolerance_db is true, not a number"),
        ("perturbation.typo_tolerance=3", "did you mean perturbation.balanced_tolerance_db"),
    ],
)
def test_bad_parameters_are_one_line_before_any_work(tmp_path, given, named):
    project = cli_project(tmp_path)
    result = kedro(project, "preflight", "--pipeline=data", "--params", given)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("Cannot start: ") and named in lines[0], lines


def test_a_bad_parameter_stops_kedro_run_before_the_store_opens(tmp_path):
    project = cli_project(tmp_path)
    for given in ("pairs.anchors=[drums", "perturbation.typo_tolerance=3"):
        result = kedro(project, "run", "--pipeline=data", "--params", given)
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, lines
    assert not (project / "mlflow.db").exists() and not (project / "data").exists()


@pytest.mark.parametrize(
    "given",
    [
        "automated_eval.judge.apikey=sk-X",
        "automated_eval.judge.openai_api_key=sk-Y",
        "automated_eval.judge.access_token=hf_Z",
        "automated_eval.judge.base_url=http://alice:s3cr3t@judge.example.org/v1",
    ],
)
def test_secrets_of_any_name_are_refused_by_name_never_shown(tmp_path, given):
    key, _, value = given.partition("=")
    project = cli_project(tmp_path)
    result = kedro(project, "preflight", "--pipeline=automated_eval", "--params", given)
    output = result.stdout + result.stderr
    assert result.returncode == 2 and f"{key} holds a secret" in output, output
    assert "conf/local/credentials.yml" in output
    assert value not in output and "s3cr3t" not in output


def test_a_password_in_the_tracking_uri_is_never_printed(tmp_path):
    project = cli_project(tmp_path)
    port = free_port()
    result = kedro(
        project,
        "preflight",
        "--env=pace",
        "--pipeline=data",
        ANCHORMIX_MLFLOW_URI=f"http://alice:s3cr3t@127.0.0.1:{port}",
        ANCHORMIX_DATA_ROOT=str(tmp_path / "scratch"),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "does not answer" in output, output
    assert "s3cr3t" not in output and f"http://alice:***@127.0.0.1:{port}" in output


def test_a_missing_local_model_folder_is_one_line(tmp_path):
    missing = tmp_path / "models" / "Qwen2-Audio-7B-Instruct"
    (problem,) = model_problems({"source": "pretrained", "name_or_path": str(missing)})
    assert problem.what == f"model.name_or_path {missing} is not a folder"
    assert "hub id" in problem.fix
    project = cli_project(tmp_path)
    result = kedro(
        project,
        "run",
        "--env=pace",
        "--pipeline=training",
        "--params",
        f"model.name_or_path={missing},model.require_cuda=false",
        ANCHORMIX_DATA_ROOT=str(tmp_path / "scratch"),
        ANCHORMIX_MLFLOW_URI=f"sqlite:///{tmp_path}/mlflow.db",
    )
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, lines
    assert lines[0] == f"Cannot start: model.name_or_path {missing} is not a folder: {problem.fix}"
