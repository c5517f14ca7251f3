"""The project's commands: ``kedro run`` with a preflight and one-line errors, and
``kedro preflight`` alone.

``kedro run`` is Kedro's own, wrapped: before a session exists (so before any node runs
and before the MLflow store is opened) it checks the parameters and what the chosen
pipelines need from this machine (:mod:`anchormix_kedro.preflight`), printing one line per
problem and its fix (exit code 2); a run whose data folder another run holds stops with
one line naming it (exit code 3, :mod:`anchormix_kedro.hooks.data_lock`). A run that fails
later prints one line naming the error; its full traceback goes to the log file of
``conf/logging.yml`` (logs/anchormix.log). Every line printed is redacted
(:mod:`anchormix_kedro.redaction`).
"""

from __future__ import annotations

import copy
import logging
import sys
from pathlib import Path

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import settings

from anchormix_kedro.config import project_config
from anchormix_kedro.hooks.data_lock import DataFolderBusy
from anchormix_kedro.parameter_schema import ParameterSchema
from anchormix_kedro.preflight import (
    PreflightError,
    Problem,
    environment_problems,
    parameter_problems,
    pipeline_problems,
    raise_for,
)
from anchormix_kedro.redaction import install_log_redaction, redact

install_log_redaction()

LOG_FILE = Path("logs") / "anchormix.log"
fatal = logging.getLogger("anchormix_kedro.fatal")


def _pipelines(options: dict) -> list[str]:
    named = options.get("pipelines") or []
    single = options.get("pipeline")
    return [single] if single else list(named) or ["__default__"]


def _registered_pipelines() -> list[str]:
    from kedro.framework.project import pipelines

    return list(pipelines)


def check_run(options: dict) -> None:
    """Raise :class:`PreflightError` with every problem of the run ``options`` describe
    (those of ``kedro run``: env, conf_source, params, pipeline)."""
    raise_for(pipeline_problems(_pipelines(options), _registered_pipelines()))
    runtime = dict(options.get("params") or {})
    conf_source = options.get("conf_source") or Path.cwd() / settings.CONF_SOURCE
    loader = project_config(conf_source, options.get("env"), runtime)
    try:
        params = dict(loader["parameters"])
        config_globals = loader["globals"]
        tracking = loader["mlflow"]["server"].get("mlflow_tracking_uri")
        schema = ParameterSchema.from_conf(conf_source)
    except Exception as exc:  # noqa: BLE001  (any unreadable configuration stops the run)
        raise PreflightError([_problem(exc)]) from None
    params.setdefault("musdb_root", runtime.get("musdb_root", config_globals.get("musdb_root")))
    problems = parameter_problems(params, schema)
    data_root = config_globals.get("data_root", "data")
    problems += environment_problems(params, _pipelines(options), data_root, tracking)
    raise_for(problems)


def _problem(exc: Exception) -> Problem:
    return Problem(f"the configuration cannot be read ({type(exc).__name__}: {exc})", "fix conf/")


def innermost(exc: BaseException) -> BaseException:
    """The error Kedro wrapped in dataset and node errors."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def root_cause(exc: BaseException) -> str:
    """The innermost error's first line: the sentence that names the file or value (Kedro
    wraps it in dataset and node errors)."""
    exc = innermost(exc)
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _stop(lines: list[str], code: int) -> None:
    for line in lines:
        click.secho(redact(line), fg="red", err=True)
    sys.exit(code)


def _read_params(ctx: click.Context, param: click.Parameter, value):
    """Kedro's reading of ``--params``, with one line naming the item it cannot read (its
    own answer is a parser's traceback)."""
    from kedro.framework.cli.utils import split_string
    from omegaconf import OmegaConf

    try:
        return KEDRO_READ_PARAMS(ctx, param, value)
    except click.UsageError:
        raise
    except Exception:  # noqa: BLE001  (OmegaConf's grammar errors have no common base)
        for item in split_string(ctx, param, value):
            try:
                OmegaConf.from_dotlist([item])
            except Exception as exc:  # noqa: BLE001
                _stop(
                    [
                        f"Cannot start: --params {item} cannot be read ({type(exc).__name__}): "
                        "write key=value, a list of one as key=[a]; --params splits at commas, "
                        "so give longer lists in conf/local/parameters.yml"
                    ],
                    2,
                )
        raise


def _with_read_params(params: list[click.Parameter]) -> list[click.Parameter]:
    """Kedro's ``kedro run`` options, ``--params`` read by :func:`_read_params`."""
    options = []
    for option in params:
        if option.name == "params":
            option = copy.copy(option)
            option.callback = _read_params
        options.append(option)
    return options


_PARAMS_OPTION = next(p for p in kedro_run.params if p.name == "params")
KEDRO_READ_PARAMS = _PARAMS_OPTION.callback


@click.group(name="AnchorMix")
def cli() -> None:
    """AnchorMix's project commands."""


@cli.command(name="run", params=_with_read_params(kedro_run.params), help=kedro_run.help)
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
        if isinstance(innermost(exc), DataFolderBusy):
            _stop([f"Cannot start: {innermost(exc)}"], 3)
        fatal.error("The run failed", exc_info=exc)
        _stop([f"The run failed: {root_cause(exc)}", f"The full traceback is in {LOG_FILE}."], 1)


@cli.command(name="preflight")
@click.option("--env", "-e", default=None, help="The configuration environment (e.g. pace).")
@click.option("--pipeline", "-p", default=None, help="The pipeline the run would start.")
@click.option(
    "--params",
    default="",
    callback=_read_params,
    help="Parameters as for kedro run.",
)
def preflight(env: str | None, pipeline: str | None, params: dict) -> None:
    """Check a run's parameters and environment without starting it."""
    try:
        check_run({"env": env, "pipeline": pipeline, "params": params})
    except PreflightError as exc:
        _stop([f"Cannot start: {p}" for p in exc.problems], 2)
    click.echo(f"Preflight passed for pipeline {pipeline or '__default__'} ({env or 'local'}).")
