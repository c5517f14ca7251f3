"""``OptionalPartitionedDataset``: a folder of files that may not exist yet.

Kedro's ``PartitionedDataset`` refuses to load a missing or empty folder. Some inputs are
legitimately absent, e.g. the engineers' ratings before a study has come back: this one
loads them as an empty dict, and the node decides what "nothing there" means.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from kedro_datasets.partitions import PartitionedDataset

logger = logging.getLogger(__name__)


class OptionalPartitionedDataset(PartitionedDataset):
    """A ``PartitionedDataset`` whose missing or empty folder loads as ``{}``.

    ``ids_as_paths=True`` keys the loaded partitions by their file paths (relative to the
    working directory where possible) instead of partition ids, so that messages about a
    partition can name its file. Other arguments are ``PartitionedDataset``'s. Example::

        ratings_files:
          type: anchormix_kedro.datasets.optional_partitioned_dataset.OptionalPartitionedDataset
          path: data/01_raw/ratings
          dataset: {type: pandas.CSVDataset, load_args: {dtype: str}}
          filename_suffix: .csv
          ids_as_paths: true
    """

    def __init__(self, *args: Any, ids_as_paths: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ids_as_paths = bool(ids_as_paths)

    def load(self) -> dict[str, Callable[[], Any]]:
        self._invalidate_caches()
        if not self._filesystem.exists(self._normalized_path) or not self._list_partitions():
            logger.info("No %s files in %s", self._filename_suffix or "partition", self._path)
            return {}
        partitions = super().load()
        if not self._ids_as_paths:
            return partitions
        return {self._readable_path(pid): load for pid, load in partitions.items()}

    def _readable_path(self, partition_id: str) -> str:
        path = str(self._partition_to_path(partition_id))
        if self._protocol == "file" and os.path.isabs(path):
            relative = os.path.relpath(path)
            return path if relative.startswith("..") else relative
        return path

    def _exists(self) -> bool:
        # Absent files are a valid state of this input, not a missing dataset.
        return True
