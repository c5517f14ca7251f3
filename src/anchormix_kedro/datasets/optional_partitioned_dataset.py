"""``OptionalPartitionedDataset``: a folder of files that may not exist yet.

Kedro's ``PartitionedDataset`` refuses to load a missing or empty folder. Some inputs are
legitimately absent, e.g. the engineers' ratings before a study has come back: this one
loads them as an empty dict, and the node decides what "nothing there" means.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kedro_datasets.partitions import PartitionedDataset

logger = logging.getLogger(__name__)


class OptionalPartitionedDataset(PartitionedDataset):
    """A ``PartitionedDataset`` whose missing or empty folder loads as ``{}``.

    Example catalog entry::

        ratings_files:
          type: anchormix_kedro.datasets.optional_partitioned_dataset.OptionalPartitionedDataset
          path: data/01_raw/ratings
          dataset: {type: pandas.CSVDataset, load_args: {dtype: str}}
          filename_suffix: .csv
    """

    def load(self) -> dict[str, Callable[[], Any]]:
        self._invalidate_caches()
        if not self._filesystem.exists(self._normalized_path) or not self._list_partitions():
            logger.info("No %s files in %s", self._filename_suffix or "partition", self._path)
            return {}
        return super().load()

    def _exists(self) -> bool:
        # Absent files are a valid state of this input, not a missing dataset.
        return True
