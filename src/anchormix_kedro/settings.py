"""Kedro settings of the AnchorMix project."""

import os

# Kedro reads the loader settings here; they live in config.py, the one way every part reads
# conf/ (the preflight, the registry, the credentials dataset, the anchormix commands).
from anchormix_kedro.config import CONFIG_LOADER_ARGS  # noqa: F401
from anchormix_kedro.hooks import DataLockHooks, TerminationHooks, TorchrunHooks, TrackingHooks
from anchormix_kedro.preflight import ParameterChecks
from anchormix_kedro.redaction import install_log_redaction

# Every log record is redacted (URL passwords, tokens) whatever handlers conf/logging.yml sets.
install_log_redaction()

# The parameters are checked before kedro-mlflow opens its store (docs/cluster.md); one run
# holds the data folder at a time (docs/reliability.md); SIGTERM interrupts like Ctrl-C;
# under torchrun the first process writes; one parent MLflow run per `kedro run` and one
# nested run per variant (docs/mlflow.md).
HOOKS = (
    ParameterChecks(),
    DataLockHooks(),
    TerminationHooks(),
    TorchrunHooks(),
    TrackingHooks(),
)

# Under torchrun every GPU runs the pipeline; only the first process tracks it in MLflow.
# (The plugin's distribution is named kedro_mlflow in recent builds, kedro-mlflow before.)
if int(os.environ.get("RANK", "0")) != 0:
    DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")
