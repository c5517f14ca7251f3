"""A partitioned folder of records that is replaced only by a save that worked."""

from __future__ import annotations

from typing import Any

from kedro_datasets.partitions import PartitionedDataset


class StagedPartitionedDataset(PartitionedDataset):
    """``PartitionedDataset`` (``overwrite``) that writes every partition into
    ``<path>.partial`` and swaps it in only when the whole save finished and at least one
    record holds audio (``{"meta": ..., "audio": {...}}``, as the excerpts are).

    A run on a root whose songs are all broken, or one that dies half-way, leaves the
    previous partitions in place, so the versioned tables that name them stay true.
    """

    def save(self, data: dict[str, Any]) -> None:
        fs = self._filesystem
        final = self._normalized_path
        staging, previous = f"{final}.partial", f"{final}.previous"
        seen = {"usable": 0, "errors": []}

        def watched(value: Any) -> Any:
            record = value() if callable(value) else value
            if isinstance(record, dict) and record.get("audio"):
                seen["usable"] += 1
            elif isinstance(record, dict) and (record.get("meta") or {}).get("error"):
                seen["errors"].append(record["meta"]["error"])
            return record

        path = self._path
        self._path = self._join_protocol(staging) if "://" in str(path) else staging
        try:
            super().save({key: (lambda v=value: watched(v)) for key, value in data.items()})
        except BaseException:
            if fs.exists(staging):
                fs.rm(staging, recursive=True)
            raise
        finally:
            self._path = path
            self._invalidate_caches()
        if data and not seen["usable"]:
            fs.rm(staging, recursive=True)
            first = seen["errors"][0] if seen["errors"] else "no record holds audio"
            raise ValueError(
                f"no song could be read ({len(seen['errors'])} failed; first error: {first}); "
                f"the previous records in {final} are kept"
            )
        if fs.exists(previous):
            fs.rm(previous, recursive=True)
        if fs.exists(final):
            fs.mv(final, previous, recursive=True)
        if fs.exists(staging):
            fs.mv(staging, final, recursive=True)
        else:
            fs.mkdirs(final, exist_ok=True)  # nothing to save: an empty folder, as before
        if fs.exists(previous):
            fs.rm(previous, recursive=True)
        self._invalidate_caches()
