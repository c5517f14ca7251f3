"""A project's run, opened the Kedro way, for the analyses to read.

:func:`open_run` bootstraps the project, creates a :class:`~kedro.framework.session.KedroSession`
in the given environment and keeps its context's catalog: an analysis loads each dataset by
its catalog name (a versioned dataset's load gives its latest version), and where a
dataset is missing :meth:`Run.load` says in one line what to run first.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchormix_kedro.config import UnknownEnvironment, check_environment
from anchormix_kedro.errors import CliError

#: Where each analysis writes its tables and figures, below the project's data root.
ANALYSES_FOLDER = Path("08_reporting") / "analyses"

#: What writes each dataset an analysis reads: the command to run first where it is missing.
PRODUCED_BY = {
    "tracks": "kedro run --pipeline=ingestion",
    "loudness": "kedro run --pipeline=ingestion",
    "examples": "kedro run --pipeline=data",
    "genre_conventions": "kedro run --pipeline=data",
    "instruction_dataset": "kedro run --pipeline=data",
    "log_mel_features": "kedro run --nodes=compute_log_mel_features",
    "model_package": "kedro run --pipeline=training",
    "evaluation_metrics": "kedro run --pipeline=automated_eval",
}


@contextlib.contextmanager
def quiet_kedro(level: int = logging.INFO) -> Iterator[None]:
    """Log records up to ``level`` held back (Kedro's and MLflow's chatter while a session
    opens and datasets load: the analyses' tables go to stdout, where Kedro's console
    handler writes too), and OmegaConf's deprecation warning about Kedro's resolvers."""
    before = logging.root.manager.disable
    logging.disable(max(level, before))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)
            yield
    finally:
        logging.disable(before)


def is_kedro_project(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    return (
        (folder / "conf" / "base").is_dir()
        and pyproject.is_file()
        and "[tool.kedro]" in pyproject.read_text(encoding="utf-8")
    )


def project_root(project: str | Path | None = None) -> Path:
    """``project`` (default: the working directory), checked to be a Kedro project."""
    root = Path(project or Path.cwd()).expanduser().resolve()
    if not is_kedro_project(root):
        raise CliError(
            f"{root} is not a Kedro project (it needs conf/base/ and a pyproject.toml with "
            "[tool.kedro]): run from the project's folder or give --project DIR"
        )
    return root


def project_globals(root: Path, env: str | None = None) -> dict:
    """The project's globals (``conf/base`` under ``env``'s), without opening a session."""
    from anchormix_kedro.config import project_config

    with quiet_kedro():
        loader = project_config(root / "conf", env)
        return dict(loader["globals"] or {})


def data_root(root: Path, found_globals: dict) -> Path:
    """The ``data_root`` global (``data`` by default), absolute."""
    data = Path(str(found_globals.get("data_root") or "data")).expanduser()
    return data if data.is_absolute() else root / data


def output_folder(root: Path, analysis: str, env: str | None = None) -> Path:
    """``<data_root>/08_reporting/analyses/<analysis>/`` of the project at ``root``."""
    return data_root(root, project_globals(root, env)) / ANALYSES_FOLDER / analysis


@dataclass
class Run:
    """A project's catalog, parameters and globals in one environment."""

    root: Path
    env: str | None
    catalog: Any
    params: dict
    globals: dict = field(default_factory=dict)

    @property
    def data_root(self) -> Path:
        """The ``data_root`` global (``data`` by default), absolute."""
        return data_root(self.root, self.globals)

    def output(self, analysis: str) -> Path:
        """``<data_root>/08_reporting/analyses/<analysis>/``, created."""
        folder = self.data_root / ANALYSES_FOLDER / analysis
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def where(self, name: str) -> str:
        """Where the catalog keeps ``name`` (its path, else its name)."""
        dataset = self.catalog.get(name)
        path = getattr(dataset, "_filepath", None) or getattr(dataset, "_path", None)
        if path is None:
            return name
        path = Path(str(path))
        with contextlib.suppress(ValueError):
            path = path.relative_to(self.root)
        return str(path)

    def has(self, name: str) -> bool:
        with quiet_kedro(logging.WARNING):  # "exists() not implemented": assumed absent
            return bool(self.catalog.exists(name))

    def load(self, name: str, produced_by: str | None = None) -> Any:
        """The dataset ``name`` (its latest version); a :class:`CliError` saying what to run
        first where the run has not written it."""
        from kedro.io.core import DatasetError

        try:
            with quiet_kedro():
                return self.catalog.load(name)
        except DatasetError as error:
            where = self.where(name)
            where = f" ({where})" if where != name else ""
            if self.has(name):
                first = (str(error).strip().splitlines() or [""])[0]
                raise CliError(f"cannot load {name}{where}: {first}") from None
            command = produced_by or PRODUCED_BY.get(name.split(".")[-1], "kedro run")
            environment = f" --env={self.env}" if self.env else ""
            raise CliError(
                f"{self.root} has no {name} yet{where}: run `{command}{environment}` there first"
            ) from None


def open_run(project: str | Path | None = None, env: str | None = None) -> Run:
    """The project's catalog in environment ``env`` (default: Kedro's, ``local``)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    root = project_root(project)
    try:
        check_environment(root / "conf", env)
    except UnknownEnvironment as exc:
        raise CliError(str(exc)) from None
    try:
        with quiet_kedro():
            bootstrap_project(root)
            with KedroSession.create(project_path=root, env=env) as session:
                context = session.load_context()
                catalog, params = context.catalog, dict(context.params)
                found_globals = dict(context.config_loader["globals"] or {})
    except CliError:
        raise
    except Exception as error:  # a bad environment or configuration: one line, not a traceback
        first = (str(error).strip().splitlines() or [""])[0]
        raise CliError(
            f"cannot open the Kedro project {root}"
            f"{f' in environment {env!r}' if env else ''}: {type(error).__name__}: {first}"
        ) from None
    return Run(root=root, env=env, catalog=catalog, params=params, globals=found_globals)
