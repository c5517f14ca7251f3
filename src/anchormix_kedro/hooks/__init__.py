"""The project's Kedro hooks, one concern each: MLflow runs (:mod:`.mlflow_runs`), torchrun's
processes (:mod:`.distributed`), SIGTERM and Ctrl-C as an interrupt (:mod:`.termination`)
and one run per data folder (:mod:`.data_lock`)."""

from anchormix_kedro.hooks.data_lock import DataFolderBusy, DataFolderLock, DataLockHooks
from anchormix_kedro.hooks.distributed import RankZeroWrites, TorchrunHooks
from anchormix_kedro.hooks.mlflow_runs import TrackingHooks, headline_metrics
from anchormix_kedro.hooks.termination import TerminationHooks

__all__ = [
    "DataFolderBusy",
    "DataFolderLock",
    "DataLockHooks",
    "RankZeroWrites",
    "TerminationHooks",
    "TorchrunHooks",
    "TrackingHooks",
    "headline_metrics",
]
