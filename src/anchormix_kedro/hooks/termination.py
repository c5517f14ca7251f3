"""SIGTERM (scancel, Slurm preemption, torchrun stopping its workers) interrupts a run as
Ctrl-C does, so that what watches for an interrupted run (its MLflow runs ending KILLED,
nothing half-written marked done) sees one."""

from __future__ import annotations

import signal
from typing import Any

from kedro.framework.hooks import hook_impl


class TerminationHooks:
    """SIGTERM raises KeyboardInterrupt while a pipeline runs; the previous handler after."""

    def __init__(self) -> None:
        self._previous_sigterm: Any = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        """SIGTERM (scancel, Slurm preemption, torchrun stopping its workers) interrupts the
        run like Ctrl-C, so that its runs end KILLED instead of RUNNING forever."""

        def interrupt(signum, frame):
            raise KeyboardInterrupt(f"terminated by signal {signum}")

        try:
            self._previous_sigterm = signal.signal(signal.SIGTERM, interrupt)
        except ValueError:
            self._previous_sigterm = None  # not the main thread: leave signals alone

    def _restore(self) -> None:
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    @hook_impl
    def after_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        self._restore()

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict, pipeline, catalog) -> None:
        self._restore()
