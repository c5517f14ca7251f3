"""The notebook a researcher opens first runs top to bottom on a real (small) run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import PROJECT_ROOT
from test_pipelines import TINY_TRAINING, run

NOTEBOOK = PROJECT_ROOT / "notebooks" / "first_look.ipynb"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def outputs_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        for mime in ("text/plain", "text/markdown", "text/html"):
            parts.append(str(output.get("data", {}).get(mime, "")))
    return "\n".join(parts)


@pytest.mark.slow
def test_first_look_notebook_runs_on_the_suites_own_run(project):
    run(project, "__default__", TINY_TRAINING)
    # As shipped: the store's address relative to the project (the fixture made it absolute).
    mlflow_yml = project / "conf" / "base" / "mlflow.yml"
    mlflow_yml.write_text(mlflow_yml.read_text().replace(f"sqlite:///{project}/", "sqlite:///"))
    notebooks = project / "notebooks"
    notebooks.mkdir()
    shutil.copy(NOTEBOOK, notebooks)
    notebook = nbformat.read(notebooks / NOTEBOOK.name, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": notebooks}}
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [o for cell in code for o in cell.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, errors
    assert not (notebooks / "mlflow.db").exists()  # the project's store, not a stray one
    assert (project / "mlflow.db").is_file()
    texts = [outputs_text(cell) for cell in code]
    assert "AnchorMix instruction dataset" in texts[1]  # the card
    assert "vocals" in texts[2] and "bass" in texts[2]  # reference levels by target
    assert "songs" in texts[3]
    images = [o for o in code[4].get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the spectrogram figure is shown"
    assert "Ablation" in texts[5] and "advisor" in texts[5]
    assert "direction_accuracy" in texts[6]


@pytest.mark.parametrize("interface", ["lab", "notebook"])
def test_kedro_jupyter_starts_a_server_in_a_fresh_project(project, interface, tmp_path):
    """The dev extra holds what `kedro jupyter lab|notebook` needs: the server answers."""
    port = _free_port()
    log = tmp_path / "jupyter.log"
    server = subprocess.Popen(
        [str(BIN / "kedro"), "jupyter", interface, "--no-browser", f"--port={port}"]
        + ["--IdentityProvider.token=", "--ServerApp.ip=127.0.0.1"]
        + (["--allow-root"] if os.geteuid() == 0 else []),  # e.g. in a container
        cwd=project,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # kedro and the server it starts
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as answer:
                    assert json.load(answer)["version"]
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert "NoneType: None" not in log.read_text()
