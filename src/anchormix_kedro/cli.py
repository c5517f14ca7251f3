"""The project's commands: ``kedro run`` with a preflight and one-line errors, and
``kedro preflight`` alone.

``kedro run`` is Kedro's own, wrapped: before a session exists (so before any node runs
and before the MLflow store is opened) it checks the parameters and what the chosen
pipelines need from this machine (:mod:`anchormix_kedro.preflight`), printing one line per
problem and its fix. A run that fails later prints one line naming the error; its full
traceback goes to the log file of ``conf/logging.yml`` (logs/anchormix.log).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import settings

from anchormix_kedro.config import project_config
from anchormix_kedro.preflight import (
    PreflightError,
    environment_problems,
    parameter_problems,
    raise_for,
)

LOG_FILE = Path("logs") / "anchormix.log"
fatal = logging.getLogger("anchormix_kedro.fatal")


def _pipelines(options: dict) -> list[str]:
    named = options.get("pipelines") or []
    single = options.get("pipeline")
    return [single] if single else list(named) or ["__default__"]


def check_run(options: dict) -> None:
    """Raise :class:`PreflightError` with every problem of the run ``options`` describe
    (those of ``kedro run``: env, conf_source, params, pipeline)."""
    runtime = dict(options.get("params") or {})
    loader = project_config(
        options.get("conf_source") or Path.cwd() / settings.CONF_SOURCE,
        options.get("env"),
        runtime,
    )
    try:
        params = dict(loader["parameters"])
        config_globals = loader["globals"]
        tracking = loader["mlflow"]["server"].get("mlflow_tracking_uri")
    except Exception as exc:  # noqa: BLE001  (any unreadable configuration stops the run)
        raise PreflightError([_problem(exc)]) from None
    params.setdefault("musdb_root", runtime.get("musdb_root", config_globals.get("musdb_root")))
    problems = parameter_problems(params)
    data_root = config_globals.get("data_root", "data")
    problems += environment_problems(params, _pipelines(options), data_root, tracking)
    raise_for(problems)


def _problem(exc: Exception):
    from anchormix_kedro.preflight import Problem

    return Problem(f"the configuration cannot be read ({type(exc).__name__}: {exc})", "fix conf/")


def root_cause(exc: BaseException) -> str:
    """The innermost error's first line: the sentence that names the file or value (Kedro
    wraps it in dataset and node errors)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _stop(lines: list[str], code: int) -> None:
    for line in lines:
        click.secho(line, fg="red", err=True)
    sys.exit(code)


@click.group(name="AnchorMix")
def cli() -> None:
    """AnchorMix's project commands."""


@cli.command(name="run", params=kedro_run.params, help=kedro_run.help)
def run(**options) -> None:
    try:
        check_run(options)
    except PreflightError as exc:
        _stop([f"Cannot start: {p}" for p in exc.problems], 2)
    try:
        kedro_run.callback(**options)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001  (one line here, the traceback in the log)
        fatal.error("The run failed", exc_info=exc)
        _stop([f"The run failed: {root_cause(exc)}", f"The full traceback is in {LOG_FILE}."], 1)


@cli.command(name="preflight")
@click.option("--env", "-e", default=None, help="The configuration environment (e.g. pace).")
@click.option("--pipeline", "-p", default=None, help="The pipeline the run would start.")
@click.option(
    "--params",
    default="",
    callback=kedro_run.params[[p.name for p in kedro_run.params].index("params")].callback,
    help="Parameters as for kedro run.",
)
def preflight(env: str | None, pipeline: str | None, params: dict) -> None:
    """Check a run's parameters and environment without starting it."""
    try:
        check_run({"env": env, "pipeline": pipeline, "params": params})
    except PreflightError as exc:
        _stop([f"Cannot start: {p}" for p in exc.problems], 2)
    click.echo(f"Preflight passed for pipeline {pipeline or '__default__'} ({env or 'local'}).")
