"""MLflow as a user meets it after the suite's small default run: one run per system with
the same headline names, the registry's advisor at @champion used by `anchormix advise`
from another folder, and the UI itself in headless Chromium (Compare, the registry)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import soundfile

from conftest import PROJECT_ROOT, playwright_and_chromium, tone_stems
from test_pipelines import TINY_TRAINING, run

BIN = Path(sys.executable).parent


@pytest.mark.slow
def test_every_system_is_a_run_compared_in_the_ui_and_the_champion_advises(project, tmp_path):
    run(project, "__default__", TINY_TRAINING)
    store = f"sqlite:///{project / 'mlflow.db'}"
    client = mlflow.MlflowClient(store, registry_uri=store)
    experiment = client.get_experiment_by_name("anchormix_kedro")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    systems = {r.info.run_name: r for r in runs if r.info.run_id != parent.info.run_id}
    assert {
        "advisor",
        "no_anchor",
        "single_clip",
        "generic_base",
        "text_only",
        "dsp_baseline",
        "oracle_meter",
    } <= set(systems)
    kinds = {"advisor": "trained variant", "no_anchor": "trained variant"}
    kinds |= {"single_clip": "trained variant", "oracle_meter": "oracle"}
    for name, child in systems.items():
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["anchormix.system"] == name
        assert child.data.tags["anchormix.kind"] == kinds.get(name, "baseline")
        headline = {k for k in child.data.metrics if k.startswith(("as_mixed/", "gain_staged/"))}
        assert {"as_mixed/direction_accuracy", "gain_staged/direction_accuracy"} <= headline
        assert not any(k.endswith((".n", ".n_songs", ".ci_low")) for k in headline)
        assert not any("judge" in k for k in child.data.metrics)  # no judge ran: absent
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "evaluation")}
        assert artifacts == {"evaluation/summary.csv", "evaluation/advice.json"}
    # The same number under the same name in the variant's run and in the summary table.
    summary = Path(
        client.download_artifacts(
            systems["dsp_baseline"].info.run_id, "evaluation/summary.csv", str(tmp_path)
        )
    ).read_text()
    assert "direction_accuracy" in summary and "dsp_baseline" in summary
    assert not [k for k in parent.data.metrics if k.startswith("automated_eval")]
    assert "#/compare-runs?" in parent.data.tags["mlflow.note.content"]

    version = client.get_model_version_by_alias("anchormix-advisor", "champion")
    assert str(version.version) == "1"

    song = tmp_path / "song"
    song.mkdir()
    for stem, audio in tone_stems(3.0).items():
        soundfile.write(str(song / f"{stem}.wav"), audio, 44100)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    advised = subprocess.run(
        [
            str(BIN / "anchormix"),
            "advise",
            str(song),
            "--model",
            "models:/anchormix-advisor@champion",
        ]
        + ["--tracking-uri", store, "--json", "--window-seconds", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=elsewhere,
    )
    assert advised.returncode == 0, advised.stderr[-3000:]
    start = re.search(r'^\{\s*"', advised.stdout, re.MULTILINE).start()
    result, _ = json.JSONDecoder().raw_decode(advised.stdout[start:])
    assert all(isinstance(t["advice"], str) and t["advice"] for t in result["targets"])
    assert list(elsewhere.iterdir()) == []  # no stray mlflow.db

    # The UI, as a user sees it: Compare lists every system's headline rows; the registry
    # shows the version and its alias.
    _, chromium = playwright_and_chromium()
    shots = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tools" / "ui_screenshots.py")]
        + ["--project", str(project), "--chromium", chromium, "--skip-viz"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=project,
    )
    assert shots.returncode == 0, shots.stdout[-3000:] + shots.stderr[-3000:]
    seen = dict(line.split(": ", 1) for line in shots.stdout.splitlines() if ": " in line)
    for name in systems:
        assert f"'{name}'" in seen["compared"]
    # The rows the page draws first (it draws more as one scrolls): one name for all systems.
    assert "'as_mixed/direction_accuracy'" in seen["metric rows"]
    assert "'anchor_swapped/direction_accuracy'" in seen["metric rows"]
    assert "Version 1" in seen["registry page"] and "champion" in seen["registry page"]
    for picture in ("mlflow_compare.png", "mlflow_registry.png", "mlflow_parent.png"):
        assert (project / "data/08_reporting/screenshots" / picture).stat().st_size > 10_000
