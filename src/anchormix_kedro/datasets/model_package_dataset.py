"""``ModelPackageDataset``: a trained model package (adapter, processor, base) as a folder."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_filepath_str
from mlflow.exceptions import MlflowException

from anchormix_kedro.model.package import PACKAGE_MANIFEST, point_adapter_at_base, read_manifest
from anchormix_kedro.model.tracking import process_rank

logger = logging.getLogger(__name__)


class ModelPackageDataset(AbstractVersionedDataset[str, str]):
    """Saves a package folder (given as a path) into place; loads the path of the saved folder.

    The folder is copied next to its destination first and renamed into place, so a run
    killed while saving leaves the previous version intact. With ``versioned: true`` every
    run keeps its own package. The adapter's ``base_model_name_or_path`` is pointed at the
    saved base. When an MLflow run is active the package is also logged as an MLflow
    model named ``artifact_path`` (:mod:`anchormix_kedro.model.mlflow_model`), in the run
    that trained it (its manifest's ``mlflow_run_id``) when that run is in the tracking
    store, else in the active run. Under torchrun only the first process saves.

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
        if process_rank() != 0:
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
        point_adapter_at_base(target)
        if self._artifact_path and mlflow.active_run():
            from anchormix_kedro.model.mlflow_model import log_package

            log_package(target, self._tracking_run(target), self._artifact_path)
        self._clear_version_cache()

    @staticmethod
    def _tracking_run(package: Path) -> str:
        """The run that trained the package when the tracking store has it, else the active one."""
        run_id = read_manifest(package).get("mlflow_run_id")
        if run_id:
            try:
                mlflow.MlflowClient().get_run(run_id)
                return run_id
            except MlflowException:
                logger.warning("%s: its training run %s is not in this store", package, run_id)
        return mlflow.active_run().info.run_id
