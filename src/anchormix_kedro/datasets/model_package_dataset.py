"""``ModelPackageDataset``: a trained model package (adapter, processor, base) as a folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_filepath_str

from anchormix_kedro.model.package import PACKAGE_MANIFEST


class ModelPackageDataset(AbstractVersionedDataset[str, str]):
    """Saves a package folder (given as a path) into place; loads the path of the saved folder.

    The folder is copied next to its destination first and renamed into place, so a run
    killed while saving leaves the previous version intact. With ``versioned: true`` every
    run keeps its own package. When an MLflow run is active the package is also logged as
    the run's artifact ``artifact_path``.

    Example::

        model_package:
          type: anchormix_kedro.datasets.ModelPackageDataset
          path: data/06_models/advisor
          versioned: true
          artifact_path: advisor
    """

    def __init__(
        self,
        path: str,
        artifact_path: str | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._artifact_path = artifact_path
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path), version=version, exists_function=self._folder_exists
        )

    @staticmethod
    def _folder_exists(path: str) -> bool:
        return (Path(path) / PACKAGE_MANIFEST).is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "path": self._filepath,
            "version": self._version,
            "artifact_path": self._artifact_path,
        }

    def load(self) -> str:
        path = Path(get_filepath_str(self._get_load_path(), "file"))
        if not (path / PACKAGE_MANIFEST).is_file():
            raise DatasetError(
                f"{path} holds no trained model package; run the fine_tuning pipeline first"
            )
        return str(path)

    def save(self, data: str) -> None:
        if int(os.environ.get("RANK", "0")) != 0:
            return  # under torchrun only the first process writes the shared package
        source = Path(data)
        if not (source / PACKAGE_MANIFEST).is_file():
            raise DatasetError(f"{source} is not a model package (no {PACKAGE_MANIFEST})")
        target = Path(get_filepath_str(self._get_save_path(), "file"))
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(target.name + ".partial")
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(source, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        manifest = json.loads((target / PACKAGE_MANIFEST).read_text())
        if self._artifact_path and mlflow.active_run():
            mlflow.log_artifacts(str(target), artifact_path=self._artifact_path)
            mlflow.set_tag(
                f"anchormix.{self._artifact_path}.formulation", manifest.get("formulation", "")
            )
        self._clear_version_cache()
