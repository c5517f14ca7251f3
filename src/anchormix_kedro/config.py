"""The one way the project reads its configuration: Kedro's ``OmegaConfigLoader`` over
``conf/`` with the project's loader settings (environments, merge strategy, resolvers),
whoever asks: ``kedro run`` itself (through :mod:`.settings`), its preflight, the pipeline
registry, the credentials dataset and the ``anchormix`` commands that read a project.

``anchormix advise`` needs no project: its defaults are the same facts packaged with the
code (:mod:`anchormix_kedro.vocabulary`, the shipped resources), which the tests hold equal
to ``conf/base/globals.yml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

BASE_ENV = "base"
DEFAULT_ENV = "local"

CONFIG_LOADER_ARGS: dict[str, Any] = {
    "base_env": BASE_ENV,
    "default_run_env": DEFAULT_ENV,
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


class UnknownEnvironment(ValueError):
    """An environment with no folder under ``conf/``."""


def check_environment(conf_source: str | Path, env: str | None) -> None:
    """Raise :class:`UnknownEnvironment` naming ``env`` when ``conf_source`` has no folder for
    it (Kedro's own error is a traceback about a path)."""
    if env and not (Path(conf_source) / env).is_dir():
        known = sorted(p.name for p in Path(conf_source).iterdir() if p.is_dir())
        raise UnknownEnvironment(
            f"{Path(conf_source).parent} has no Kedro environment {env!r} (no conf/{env}/ "
            f"folder; environments: {', '.join(known) or 'none'})"
        )


def project_config(
    conf_source: str | Path,
    env: str | None = None,
    runtime_params: dict[str, Any] | None = None,
) -> OmegaConfigLoader:
    """The configuration of the project whose ``conf/`` is ``conf_source``, as ``kedro run``
    reads it: ``env`` (default ``KEDRO_ENV``, else ``local``) over ``base``, with
    ``runtime_params`` (``--params``) on top. ``env="base"`` reads base alone."""
    return OmegaConfigLoader(
        conf_source=str(conf_source),
        env=env or os.environ.get("KEDRO_ENV") or DEFAULT_ENV,
        runtime_params=runtime_params or {},
        **CONFIG_LOADER_ARGS,
    )
