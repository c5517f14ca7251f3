"""AnchorMix: anchor-conditioned gain-balancing advice for music mixing."""

import os

__version__ = "0.1.0"

# Every entry point (kedro CLI, tests, scripts) imports this package first: keep the
# project offline and free of telemetry unless a user explicitly overrides these.
_OFFLINE_DEFAULTS = {
    "DO_NOT_TRACK": "true",
    "KEDRO_DISABLE_TELEMETRY": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}
for _name, _value in _OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
