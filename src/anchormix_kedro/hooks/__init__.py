"""The project's Kedro hooks, one concern each: MLflow runs (:mod:`.mlflow_runs`), torchrun's
processes (:mod:`.distributed`) and SIGTERM as an interrupt (:mod:`.termination`)."""

from anchormix_kedro.hooks.distributed import RankZeroWrites, TorchrunHooks
from anchormix_kedro.hooks.mlflow_runs import TrackingHooks, test_metrics_by_variant
from anchormix_kedro.hooks.termination import TerminationHooks

__all__ = [
    "RankZeroWrites",
    "TerminationHooks",
    "TorchrunHooks",
    "TrackingHooks",
    "test_metrics_by_variant",
]
