"""Ctrl-C (SIGINT) and SIGTERM (scancel, Slurm preemption, torchrun stopping its workers)
interrupt a run once, so that what watches for an interrupted run (its MLflow runs ending
KILLED, the data folder's lock let go: both at exit, where no Kedro hook runs) sees one and
finishes. A second Ctrl-C while that happens is answered with a line, not a second
interrupt: one would cut the cleanup short and MLflow's own exit handler would then end
the run FINISHED."""

from __future__ import annotations

import signal
import sys
from typing import Any

from kedro.framework.hooks import hook_impl

INTERRUPTING = (signal.SIGINT, signal.SIGTERM)


class TerminationHooks:
    """While a pipeline runs, the first SIGINT or SIGTERM raises KeyboardInterrupt and the
    next ones wait for the cleanup; the previous handlers after."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        for signum in INTERRUPTING:
            current = signal.getsignal(signum)
            if signum == signal.SIGINT and current is signal.SIG_IGN:
                continue  # started with Ctrl-C ignored (nohup, a background job): so it stays
            try:
                self._previous[signum] = signal.signal(signum, self._interrupt)
            except ValueError:
                return  # not the main thread: leave signals alone

    def _interrupt(self, signum: int, frame: Any) -> None:
        for handled in self._previous:
            signal.signal(handled, self._already_stopping)
        raise KeyboardInterrupt(f"interrupted by {signal.Signals(signum).name}")

    @staticmethod
    def _already_stopping(signum: int, frame: Any) -> None:
        sys.stderr.write(
            "Stopping: the MLflow runs are being ended KILLED and the data folder freed.\n"
        )

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    @hook_impl
    def after_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        self._restore()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict, pipeline, catalog) -> None:
        self._restore()
