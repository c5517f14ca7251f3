"""Kedro settings of the AnchorMix project."""

import os

from omegaconf.resolvers import oc

from anchormix_kedro.hooks import TerminationHooks, TorchrunHooks, TrackingHooks
from anchormix_kedro.preflight import ParameterChecks

# The parameters are checked before kedro-mlflow opens its store (docs/cluster.md); SIGTERM
# interrupts like Ctrl-C; under torchrun the first process writes; one parent MLflow run per
# `kedro run` and one nested run per variant (docs/mlflow.md).
HOOKS = (ParameterChecks(), TerminationHooks(), TorchrunHooks(), TrackingHooks())

# Under torchrun every GPU runs the pipeline; only the first process tracks it in MLflow.
# (The plugin's distribution is named kedro_mlflow in recent builds, kedro-mlflow before.)
if int(os.environ.get("RANK", "0")) != 0:
    DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments (e.g. ``--env=pace``) override single keys, not whole top-level blocks.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft", "catalog": "soft"},
    # ``${oc.env:VAR,default}`` in parameters and catalog (scratch paths on clusters).
    # ``${study_outputs:<study.ratings>}``: an analysis of simulated ratings writes under
    # ``simulated/``, never over the real analysis (docs/study.md).
    "custom_resolvers": {
        "oc.env": oc.env,
        "study_outputs": lambda ratings: "simulated/" if str(ratings) == "simulated" else "",
    },
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"],
    },
}
