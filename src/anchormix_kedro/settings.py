"""Kedro settings of the AnchorMix project."""

from omegaconf.resolvers import oc

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Environments (e.g. ``--env=pace``) override single keys, not whole top-level blocks.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft", "catalog": "soft"},
    # ``${oc.env:VAR,default}`` in parameters and catalog (scratch paths on clusters).
    "custom_resolvers": {"oc.env": oc.env},
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"],
    },
}
