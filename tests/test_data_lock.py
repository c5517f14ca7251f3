"""One run per data folder: a second launch stops (or waits) naming the run that holds the
folder; the processes of one torchrun launch share it; a lock left by a killed run is
taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from anchormix_kedro.hooks.data_lock import (
    LOCK_FILE,
    DataFolderBusy,
    DataFolderLock,
    DataLockHooks,
    launch_id,
    wait_seconds,
)


def test_a_second_launch_stops_naming_the_run_that_holds_the_folder(tmp_path):
    first = DataFolderLock(tmp_path / "data", launch="first")
    first.acquire()
    assert json.loads((tmp_path / "data" / LOCK_FILE).read_text())["members"][0]["pid"] == (
        os.getpid()
    )
    with pytest.raises(DataFolderBusy) as busy:
        DataFolderLock(tmp_path / "data", launch="second").acquire()
    message = str(busy.value)
    assert "already running" in message and f"pid {os.getpid()}" in message
    assert str(tmp_path / "data") in message and "ANCHORMIX_WAIT_FOR_DATA" in message
    first.release()
    assert not (tmp_path / "data" / LOCK_FILE).exists()
    second = DataFolderLock(tmp_path / "data", launch="second")
    second.acquire()
    second.release()


def test_the_processes_of_one_torchrun_launch_share_the_lock(tmp_path):
    env = {"TORCHELASTIC_RUN_ID": "job-42", "RANK": "0", "LOCAL_RANK": "0"}
    assert launch_id(env) == launch_id({**env, "RANK": "1", "LOCAL_RANK": "1"})
    assert launch_id(env) != launch_id({**env, "TORCHELASTIC_RUN_ID": "job-43"})
    # torchrun without a rendezvous id says "none": the launch is its agent (our parent).
    standalone = {"TORCHELASTIC_RUN_ID": "none", "RANK": "1"}
    assert launch_id(standalone) == f"torchrun:{socket.gethostname()}:{os.getppid()}"
    assert launch_id({}) == f"{socket.gethostname()}:{os.getpid()}"
    rank0 = DataFolderLock(tmp_path, launch="torchrun:job-42")
    rank1 = DataFolderLock(tmp_path, launch="torchrun:job-42", pid=os.getppid())
    rank0.acquire()
    rank1.acquire()
    with pytest.raises(DataFolderBusy):
        DataFolderLock(tmp_path, launch="torchrun:job-43").acquire()
    rank0.release()
    assert (tmp_path / LOCK_FILE).exists()  # rank 1 still holds it
    rank1.release()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    DataFolderLock(tmp_path, launch="killed", pid=dead.pid).acquire()
    lock = DataFolderLock(tmp_path, launch="next")
    lock.acquire()
    assert "stale" in caplog.text and str(dead.pid) in caplog.text
    holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder["launch"] == "next"
    lock.release()


def test_a_lock_held_on_another_host_is_never_taken_over(tmp_path):
    DataFolderLock(tmp_path, launch="remote", pid=1, host="gpu-node-7").acquire()
    with pytest.raises(DataFolderBusy) as busy:
        DataFolderLock(tmp_path, launch="here").acquire()
    assert "pid 1 on gpu-node-7" in str(busy.value)
    assert f"if it is no longer running, delete {tmp_path / LOCK_FILE}" in str(busy.value)


def test_a_launch_asked_to_wait_starts_when_the_folder_is_free(tmp_path):
    first = DataFolderLock(tmp_path, launch="first")
    first.acquire()
    threading.Timer(0.6, first.release).start()
    started = time.monotonic()
    DataFolderLock(tmp_path, launch="second", wait_s=10, poll_s=0.1).acquire()
    assert 0.5 < time.monotonic() - started < 5
    with pytest.raises(DataFolderBusy, match="still running after 0.3 s"):
        DataFolderLock(tmp_path, launch="third", wait_s=0.3, poll_s=0.1).acquire()
    assert wait_seconds({}) == 0 and wait_seconds({"ANCHORMIX_WAIT_FOR_DATA": "90"}) == 90
    with pytest.raises(ValueError, match="ANCHORMIX_WAIT_FOR_DATA is 'soon'"):
        wait_seconds({"ANCHORMIX_WAIT_FOR_DATA": "soon"})


def test_another_process_holding_the_folder_stops_this_one(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from anchormix_kedro.hooks.data_lock import DataFolderLock; "
            f"DataFolderLock({str(tmp_path)!r}).acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DataFolderBusy, match=f"pid {holder.pid}"):
            DataFolderLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    lock = DataFolderLock(tmp_path)  # killed: its lock is stale
    lock.acquire()
    lock.release()


class Context:
    def __init__(self, project_path, data_root):
        self.project_path = project_path
        self.config_loader = {"globals": {"data_root": data_root}}


def test_the_hook_holds_the_folder_for_the_run_and_frees_it_however_it_ends(tmp_path):
    hooks = DataLockHooks()
    hooks.after_context_created(Context(tmp_path, "data"))
    hooks.before_pipeline_run({}, None, None)
    assert (tmp_path / "data" / LOCK_FILE).exists()
    hooks.after_pipeline_run({}, None, None)
    assert not (tmp_path / "data" / LOCK_FILE).exists()
    hooks.before_pipeline_run({}, None, None)
    hooks.on_pipeline_error(RuntimeError("x"), {}, None, None)
    assert not (tmp_path / "data" / LOCK_FILE).exists()
    hooks.before_pipeline_run({}, None, None)
    hooks.release_at_exit()  # Ctrl-C or SIGTERM: no Kedro hook runs
    assert not (tmp_path / "data" / LOCK_FILE).exists()
