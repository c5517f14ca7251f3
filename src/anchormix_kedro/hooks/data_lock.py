"""One run per data folder: two runs writing the same versioned datasets at once leave
each other's outputs half-written, so a run holds its data folder (``data_root``) from its
first node to its end, through a lock file there, ``.anchormix-run.lock``.

The processes of one ``torchrun`` launch (one ``TORCHELASTIC_RUN_ID``, or one agent on this
host) share the lock; the last one to finish removes it. A lock whose processes are all gone
from this host (a run killed with SIGKILL, a node that rebooted) is stale and taken over; a
lock held from another host is never taken over. A second launch stops with one line
naming the run that holds the folder, or waits for it with ``ANCHORMIX_WAIT_FOR_DATA``
(seconds). The listening study's server and its database are not covered: they take many
writers by design (docs/study.md).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from anchormix_kedro.redaction import redact

logger = logging.getLogger(__name__)

LOCK_FILE = ".anchormix-run.lock"
WAIT_VARIABLE = "ANCHORMIX_WAIT_FOR_DATA"


class DataFolderBusy(RuntimeError):
    """Another launch holds the data folder."""


def launch_id(environ: Mapping[str, str] = os.environ) -> str:
    """What the processes of one launch share: torchrun's rendezvous id, else (torchrun
    without one says ``none``) its agent, the parent of every worker on this host; a plain
    run is its own process."""
    host = socket.gethostname()
    run_id = environ.get("TORCHELASTIC_RUN_ID")
    if run_id and run_id != "none":
        return f"torchrun:{run_id}"
    if run_id or "LOCAL_RANK" in environ or "RANK" in environ:
        return f"torchrun:{host}:{os.getppid()}"
    return f"{host}:{os.getpid()}"


def wait_seconds(environ: Mapping[str, str] = os.environ) -> float:
    """How long a launch waits for a busy data folder (``ANCHORMIX_WAIT_FOR_DATA``; 0: not)."""
    value = environ.get(WAIT_VARIABLE, "").strip()
    try:
        seconds = float(value or 0)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ValueError(
            f"{WAIT_VARIABLE} is {value!r}: give the seconds to wait for a busy data folder"
        )
    return seconds


def _start_ticks(pid: int) -> str | None:
    """When process ``pid`` started (Linux), so a recycled pid is not taken for the holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _alive(member: Mapping[str, Any]) -> bool:
    try:
        os.kill(int(member["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    recorded = member.get("start")
    return recorded is None or _start_ticks(int(member["pid"])) in (None, recorded)


class DataFolderLock:
    """The lock of one data folder for one process of a launch."""

    def __init__(
        self,
        data_root: str | Path,
        launch: str | None = None,
        wait_s: float = 0.0,
        poll_s: float = 2.0,
        pid: int | None = None,
        host: str | None = None,
    ) -> None:
        self.data_root = Path(data_root)
        self.path = self.data_root / LOCK_FILE
        self.launch = launch or launch_id()
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.pid = pid or os.getpid()
        self.host = host or socket.gethostname()

    def acquire(self) -> None:
        """Hold the folder, waiting up to ``wait_s`` for another launch to end; raise
        :class:`DataFolderBusy` naming it if it does not."""
        deadline = time.monotonic() + self.wait_s
        announced = False
        while True:
            holder = self._try_acquire()
            if holder is None:
                return
            if time.monotonic() >= deadline:
                raise DataFolderBusy(self._busy(holder, waited=self.wait_s > 0))
            if not announced:
                logger.info(
                    "Waiting up to %g s for the run that holds %s (%s) to end",
                    self.wait_s,
                    self.data_root,
                    self._holder(holder),
                )
                announced = True
            time.sleep(min(self.poll_s, max(deadline - time.monotonic(), 0.01)))

    def release(self) -> None:
        """This process lets go; the last process of the launch removes the lock."""
        with self._guard():
            state = self._read()
            if state is None or state.get("launch") != self.launch:
                return
            state["members"] = [m for m in state["members"] if not self._is_me(m)]
            if state["members"]:
                self._write(state)
            else:
                self.path.unlink(missing_ok=True)

    # ----------------------------------------------------------------------- internals

    def _try_acquire(self) -> dict | None:
        """None once held; else the state of the launch that holds the folder."""
        self.data_root.mkdir(parents=True, exist_ok=True)
        with self._guard():
            state = self._read()
            if state is not None and state.get("launch") != self.launch:
                if not self._stale(state):
                    return state
                logger.warning(
                    "Taking over the stale lock of %s (pid %s no longer running on this host)",
                    self.data_root,
                    ", ".join(str(m["pid"]) for m in state["members"]),
                )
                state = None
            state = state or {"launch": self.launch, "members": []}
            state["members"] = [m for m in state["members"] if not self._is_me(m)] + [
                {
                    "pid": self.pid,
                    "host": self.host,
                    "start": _start_ticks(self.pid),
                    "since": dt.datetime.now().isoformat(timespec="seconds"),
                    "command": redact(" ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]))[
                        :120
                    ],
                }
            ]
            self._write(state)
            return None

    def _is_me(self, member: Mapping[str, Any]) -> bool:
        return member.get("pid") == self.pid and member.get("host") == self.host

    def _stale(self, state: Mapping[str, Any]) -> bool:
        members = state.get("members") or []
        if any(m.get("host") != self.host for m in members):
            return False  # another host's processes cannot be seen from here
        return not any(_alive(m) for m in members)

    @staticmethod
    def _holder(state: Mapping[str, Any]) -> str:
        first = (state.get("members") or [{}])[0]
        since = f", since {first.get('since')}" if first.get("since") else ""
        command = f": {first.get('command')}" if first.get("command") else ""
        return f"pid {first.get('pid')} on {first.get('host')}{since}{command}"

    def _busy(self, state: Mapping[str, Any], waited: bool) -> str:
        first = (state.get("members") or [{}])[0]
        still = f"still running after {self.wait_s:g} s" if waited else "already running"
        message = (
            f"another run is {still} on the data folder {self.data_root} "
            f"({self._holder(state)}); wait for it to end (set {WAIT_VARIABLE}=<seconds> to "
            "wait for it) or give this run a data folder of its own"
        )
        if first.get("host") != self.host:
            message += f"; if it is no longer running, delete {self.path}"
        return message

    def _read(self) -> dict | None:
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"launch": "unreadable", "members": []}  # half-written: stale
        return state if isinstance(state, dict) else None

    def _write(self, state: Mapping[str, Any]) -> None:
        partial = self.path.with_name(f"{LOCK_FILE}.{self.pid}.tmp")
        partial.write_text(json.dumps(state, indent=1))
        os.replace(partial, self.path)  # never a half-written lock

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Reading and writing the lock file is one step for every process of this host
        (an advisory lock on the folder itself)."""
        try:
            folder = os.open(self.data_root, os.O_RDONLY)
        except OSError:
            yield  # the folder is gone: nothing to guard
            return
        try:
            with contextlib.suppress(OSError):  # a file system without flock: unguarded
                fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # closing releases the flock


class DataLockHooks:
    """Holds ``data_root`` from before the first node (before kedro-mlflow opens a run:
    ``tryfirst``) to the end of the run, however it ends."""

    def __init__(self) -> None:
        self._data_root: Path | None = None
        self._lock: DataFolderLock | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        root = Path(str(context.config_loader["globals"].get("data_root") or "data"))
        self._data_root = root if root.is_absolute() else Path(context.project_path) / root

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        if self._data_root is None:
            return
        lock = DataFolderLock(self._data_root, wait_s=wait_seconds())
        lock.acquire()
        self._lock = lock
        # Ctrl-C and SIGTERM end a run with no Kedro hook: the lock goes at exit then.
        atexit.unregister(self.release_at_exit)
        atexit.register(self.release_at_exit)

    @hook_impl
    def after_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        self.release_at_exit()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict, pipeline, catalog) -> None:
        self.release_at_exit()

    def release_at_exit(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
