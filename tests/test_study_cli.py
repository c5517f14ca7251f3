"""``anchormix study``: run from a project with no other arguments, each command acts on
the latest study the pipeline built and on the project's study database."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from anchormix_kedro.commands import main
from anchormix_kedro.study.storage import StudyStore
from conftest import PROJECT_ROOT
from study_helpers import make_study

OLDER, NEWER = "2026-01-01T00.00.00.000Z", "2026-02-01T00.00.00.000Z"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project folder: its configuration, and two built studies (the newer one is used)."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf")
    (root / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "anchormix_kedro"\n')
    studies = root / "data" / "08_reporting" / "rating_study"
    make_study(studies, OLDER, n_examples=2)
    make_study(studies, NEWER, n_examples=3)
    monkeypatch.delenv("ANCHORMIX_STUDY_DATABASE", raising=False)
    monkeypatch.chdir(root / "conf")  # any folder inside the project will do
    return root


def store_of(project: Path) -> StudyStore:
    return StudyStore.open(f"sqlite:///{project / 'data' / '01_raw' / 'study.db'}")


def test_an_unknown_environment_is_one_line_naming_the_known_ones(project, capsys):
    assert main(["study", "status", "--env", "nowhere"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no Kedro environment 'nowhere'" in error
    assert "environments: ablations, base, local, pace" in error


def test_invite_prints_one_working_link_per_rater_for_the_latest_study(project, capsys):
    assert main(["study", "invite", "--n", "3"]) == 0
    out, err = capsys.readouterr()
    links = out.splitlines()
    assert len(links) == 3 and len(set(links)) == 3
    assert all(link.startswith("http://127.0.0.1:8000/r/") and link.endswith("/") for link in links)
    assert "Invited 3 raters (rater-001 to rater-003)" in err and NEWER in err
    store = store_of(project)
    raters = [store.rater_by_token(link.split("/r/")[1].strip("/")) for link in links]
    assert [r.label for r in raters] == ["rater-001", "rater-002", "rater-003"]
    assert {r.study_version for r in raters} == {NEWER}
    assert main(["study", "invite", "--n", "1", "--study", OLDER,
                 "--base-url", "https://study.example.org/"]) == 0  # fmt: skip
    (link,) = capsys.readouterr().out.splitlines()
    assert link.startswith("https://study.example.org/r/")
    assert main(["study", "invite", "--n", "0"]) == 2
    assert "--n must be at least 1" in capsys.readouterr().err
    # A newer build does not take over a study that raters were invited to.
    make_study(project / "data" / "08_reporting" / "rating_study", "2026-03-01T00.00.00.000Z")
    assert main(["study", "status"]) == 0
    out, err = capsys.readouterr()
    assert f"Study {OLDER}" in out and "rater-001" in out  # invited to last, with --study
    assert "a newer one was built since (2026-03-01T00.00.00.000Z)" in err


def test_status_and_export_before_and_after_answers(project, capsys):
    assert main(["study", "status"]) == 0
    assert "No rater is invited yet" in capsys.readouterr().out
    main(["study", "invite", "--n", "2"])
    token = capsys.readouterr().out.splitlines()[0].split("/r/")[1].strip("/")
    store = store_of(project)
    rater = store.rater_by_token(token)
    store.consent(rater.id)
    study_ids = [s["scenario_id"] for s in _manifest(project, NEWER)["scenarios"]]
    store.save_answer(rater.id, study_ids[0], 0, {"effectiveness": 6, "musicality": 5,
                      "actionability": 4, "helpfulness": 6}, {}, "a")  # fmt: skip
    assert main(["study", "status", "--study", NEWER]) == 0
    table = capsys.readouterr().out
    assert "rater-001" in table and "rater-002" in table and "invited" in table
    output = project / "exports" / "ratings.csv"
    assert main(["study", "export", "--study", NEWER, "--output", str(output)]) == 0
    long = pd.read_csv(output)
    assert len(long) == 4 and set(long["rater"]) == {"rater-001"}
    assert (project / "exports" / "ratings_events.csv").is_file()
    assert main(["study", "export", "--study", NEWER, "--output", str(output)]) == 2
    assert "exist already" in capsys.readouterr().err


def _manifest(project: Path, version: str) -> dict:
    import json

    folder = project / "data" / "08_reporting" / "rating_study" / version
    return json.loads((folder / "study.json").read_text())


def test_without_a_built_study_the_commands_say_how_to_build_one(tmp_path, monkeypatch, capsys):
    root = tmp_path / "empty"
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf")
    (root / "pyproject.toml").write_text("[tool.kedro]\n")
    monkeypatch.chdir(root)
    assert main(["study", "status"]) == 2
    assert "no study has been built" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)
    assert main(["study", "status"]) == 2
    assert "no Kedro project" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_a_raters_link_on_loopback(project, capsys):
    main(["study", "invite", "--n", "1"])
    link = capsys.readouterr().out.strip()
    port = _free_port()
    link = link.replace(":8000/", f":{port}/")
    anchormix = Path(sys.executable).with_name("anchormix")
    server = subprocess.Popen([str(anchormix), "study", "serve", "--port", str(port)],
                              cwd=project, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert NEWER in r.read().decode()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and server.poll() is None, "no server"
                time.sleep(0.3)
        with urllib.request.urlopen(link, timeout=5) as page:  # follows the redirect
            assert page.status == 200 and page.url.endswith("/consent")
            assert "About this study" in page.read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(link.replace("/r/", "/r/x"), timeout=5)
        assert refused.value.code == 404
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "Serving study" in err and link.split("/r/")[1].strip("/") not in err
