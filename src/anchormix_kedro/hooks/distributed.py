"""Pipelines that run on several processes: under torchrun every process runs the
pipeline, the first one writes every dataset and the others load what it wrote, each
waiting at the same points (before the first node and after every save)."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset, MemoryDataset

from anchormix_kedro.model import tracking

logger = logging.getLogger(__name__)


class RankZeroWrites(AbstractDataset):
    """A dataset as the helper processes of a torchrun run see it: they load what the first
    process wrote and save nothing."""

    def __init__(self, dataset: AbstractDataset) -> None:
        self._dataset = dataset

    def load(self) -> Any:
        return self._dataset.load()

    def save(self, data: Any) -> None:
        return None  # the first process writes it

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": str(self._dataset), "writes": False}


class TorchrunHooks:
    """Barriers at the same points in every process, and nothing written by the helpers."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict, pipeline, catalog) -> None:
        if tracking.world_size() <= 1:
            return
        from anchormix_kedro.model.callbacks import wait_for_everyone

        wait_for_everyone()  # every process joins before the first node
        if tracking.process_rank() != 0:
            self._write_nothing(pipeline, catalog)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        if tracking.world_size() > 1:
            from anchormix_kedro.model.callbacks import wait_for_everyone

            wait_for_everyone()  # the others load it once the first process has written it

    def _write_nothing(self, pipeline, catalog) -> None:
        replaced = []
        catalog_logger = logging.getLogger("kedro.io.data_catalog")
        level = catalog_logger.level
        catalog_logger.setLevel(logging.ERROR)  # "Replacing dataset" is what is meant here
        try:
            for name in pipeline.datasets():
                if name.startswith("params:") or name == "parameters":
                    continue
                dataset = catalog.get(name)
                if dataset is not None and not isinstance(dataset, MemoryDataset | RankZeroWrites):
                    catalog[name] = RankZeroWrites(dataset)
                    replaced.append(name)
        finally:
            catalog_logger.setLevel(level)
        logger.info(
            "Process %d loads what process 0 writes (%d datasets)",
            tracking.process_rank(),
            len(replaced),
        )
