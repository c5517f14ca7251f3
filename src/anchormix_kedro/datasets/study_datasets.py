"""The listening study in the catalog: the built study's folder, and the answers in the
study database.

``StudyFolderDataset`` saves a :class:`~anchormix_kedro.study.material.BuiltStudy` as
``<path>/<version>/`` (never over an existing folder) and loads the latest one.
``StudyAnswersDataset`` loads the fully rated scenarios of every study from the database
at ``url`` (a missing SQLite file: none yet), in the columns of the page's CSV files, and
the tables the quality checks read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from kedro.io import AbstractDataset, DatasetError


class StudyFolderDataset(AbstractDataset):
    """Built studies under ``path``, one folder each, named by the build's version."""

    def __init__(self, path: str, metadata: dict[str, Any] | None = None):
        self._path = Path(path)
        self.metadata = metadata

    def load(self):
        from anchormix_kedro.study.material import load_study

        return load_study(self._path)

    def save(self, data) -> None:
        from anchormix_kedro.study.material import save_study

        save_study(data, self._path)

    def _exists(self) -> bool:
        from anchormix_kedro.study.material import study_versions

        return bool(study_versions(self._path))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class StudyAnswersDataset(AbstractDataset):
    """Read-only: the study database's ratings (``ANCHORMIX_STUDY_DATABASE`` or ``url``)."""

    def __init__(self, url: str, metadata: dict[str, Any] | None = None):
        self._url = url
        self.metadata = metadata

    def _missing_sqlite_file(self) -> bool:
        parsed = sa.engine.make_url(self._url)
        return parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file()

    def load(self) -> Callable[[], dict[str, pd.DataFrame]]:
        """A loader (called only by the analysis that reads this database, so a rehearsal on
        simulated raters never opens the real one) of ``{"ratings": ..., "raters",
        "assignments", "answers", "listened", "checks"}``: the fully rated scenarios and what
        the quality checks read (``anchormix_kedro.study.quality``)."""
        return self._read

    def _read(self) -> dict[str, pd.DataFrame]:
        from anchormix_kedro.study.answers import ratings_for_analysis
        from anchormix_kedro.study.quality import quality_inputs
        from anchormix_kedro.study.storage import StudyStore

        if self._missing_sqlite_file():
            return {"ratings": ratings_for_analysis(None), **_no_quality_inputs()}
        store = StudyStore.open(self._url)
        try:
            return {"ratings": ratings_for_analysis(store), **quality_inputs(store)}
        finally:
            store.close()

    def save(self, data) -> None:
        raise DatasetError("the study database is written by the study server, not by a node")

    def _describe(self) -> dict[str, Any]:
        return {"url": sa.engine.make_url(self._url).render_as_string(hide_password=True)}


def _no_quality_inputs() -> dict[str, pd.DataFrame]:
    from anchormix_kedro.study.quality import QUALITY_INPUT_COLUMNS

    return {name: pd.DataFrame(columns=list(cols)) for name, cols in QUALITY_INPUT_COLUMNS.items()}
