"""``NpzRecordDataset``: named arrays plus JSON metadata in one ``.npz`` file.

Used one file per song for the excerpts (16 kHz stems and their measurements) and for
the cached log-mel features.
"""

from __future__ import annotations

import json
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_filepath_str

#: Stored record: ``{"meta": JSON-able dict, "audio": {name: float32 array}}``.
ArrayRecord = dict[str, Any]


class NpzRecordDataset(AbstractVersionedDataset[ArrayRecord, ArrayRecord]):
    """Loads and saves a record as an uncompressed ``.npz`` (fast to read back).

    Example catalog entry, usually inside a ``PartitionedDataset`` (one file per song)::

        excerpts:
          type: partitions.PartitionedDataset
          path: data/02_intermediate/excerpts
          dataset: anchormix_kedro.datasets.NpzRecordDataset
          filename_suffix: .npz
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"audio": True}
    DEFAULT_SAVE_ARGS: dict[str, Any] = {}

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._load_args = {**deepcopy(self.DEFAULT_LOAD_ARGS), **(load_args or {})}
        self._save_args = {**deepcopy(self.DEFAULT_SAVE_ARGS), **(save_args or {})}
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(filepath), version=version, exists_function=self._file_exists
        )

    @staticmethod
    def _file_exists(path: str) -> bool:
        return Path(path).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "version": self._version, "load_args": self._load_args}

    def load(self) -> ArrayRecord:
        path = get_filepath_str(self._get_load_path(), "file")
        try:
            with np.load(path, allow_pickle=False) as archive:
                meta = json.loads(str(archive["meta"]))
                audio = (
                    {
                        key.removeprefix("audio/"): archive[key]
                        for key in archive.files
                        if key.startswith("audio/")
                    }
                    if self._load_args["audio"]
                    else {}
                )
        except (OSError, ValueError, KeyError) as exc:
            raise DatasetError(
                f"{path}: not a readable excerpt file ({exc}); re-run the ingestion pipeline"
            ) from exc
        return {"meta": meta, "audio": audio}

    def save(self, data: ArrayRecord) -> None:
        path = Path(get_filepath_str(self._get_save_path(), "file"))
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            f"audio/{stem}": np.asarray(clip, dtype=np.float32)
            for stem, clip in data.get("audio", {}).items()
        }
        # Write next to the target and rename, so a run killed mid-write leaves no half file.
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as handle:
            np.savez(handle, meta=np.array(json.dumps(data["meta"])), **arrays)
        partial.replace(path)
        self._clear_version_cache()
