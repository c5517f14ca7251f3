"""Ctrl-C and SIGTERM interrupt a run once; a second Ctrl-C while its MLflow runs are ended
KILLED and the data folder is freed does not cut that short."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from anchormix_kedro.hooks.data_lock import LOCK_FILE
from anchormix_kedro.hooks.termination import TerminationHooks
from test_preflight import KEDRO, cli_project


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_interrupts_and_later_ones_wait_for_the_cleanup(signum):
    hooks = TerminationHooks()
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    hooks.before_pipeline_run({}, None, None)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signum)
            time.sleep(1)  # the handler runs here
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C: no interrupt
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
    finally:
        hooks.after_pipeline_run({}, None, None)
    assert {s: signal.getsignal(s) for s in before} == before


def test_an_ignored_ctrl_c_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # e.g. `nohup kedro run &`
    hooks = TerminationHooks()
    try:
        hooks.before_pipeline_run({}, None, None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        hooks.on_pipeline_error(RuntimeError("x"), {}, None, None)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_pressed_again_and_again_ends_the_run_killed_and_frees_the_folder(tmp_path):
    project = cli_project(tmp_path)
    log = tmp_path / "run.log"
    environment = {**os.environ, "COLUMNS": "200"}
    environment.pop("MUSDB_PATH", None)
    with log.open("w") as out:
        run = subprocess.Popen(
            [str(KEDRO), "run", "--pipeline=ingestion"],
            cwd=project,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a terminal's foreground job
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 240
        while "Synthetic song 2/" not in log.read_text() and time.monotonic() < deadline:
            assert run.poll() is None, log.read_text()
            time.sleep(0.2)
        os.killpg(run.pid, signal.SIGINT)
        while run.poll() is None:  # an impatient user, until the run has stopped
            time.sleep(0.02)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=120) != 0
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    with sqlite3.connect(project / "mlflow.db") as db:
        statuses = db.execute("select status from runs").fetchall()
    assert statuses == [("KILLED",)], log.read_text()[-2000:]
    assert not (project / "data" / LOCK_FILE).exists()
    assert "Aborted!" in log.read_text()


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("POSIX signals", allow_module_level=True)
