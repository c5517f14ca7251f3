"""``MusdbCorpusDataset``: a MUSDB18 / MUSDB18-HQ root, listed on load, written on save."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from kedro.io.core import AbstractDataset, DatasetError

from anchormix_kedro.instruction_data.musdb import TRACKLIST_FILENAME, MusdbCorpus, discover_corpus
from anchormix_kedro.instruction_data.synthetic.corpus import SyntheticCorpusSpec

logger = logging.getLogger(__name__)

#: Written into every folder this dataset creates; only such folders are ever replaced.
MARKER_FILENAME = ".anchormix-synthetic.json"


class MusdbCorpusDataset(AbstractDataset[SyntheticCorpusSpec, MusdbCorpus]):
    """A MUSDB18 root in either published layout.

    ``load`` lists the songs (decoding happens later, one song at a time, through
    :meth:`MusdbCorpus.load_stems`). An empty ``path`` means "no MUSDB18 on this machine"
    and loads an empty, unconfigured corpus; so does a missing folder when ``must_exist``
    is false (a synthetic corpus that was not rendered because MUSDB18 is used).

    ``save`` renders a :class:`SyntheticCorpusSpec` in the MUSDB18-HQ layout, with a
    ``tracklist.csv`` of genres. It refuses to write into a non-empty folder that it did
    not create, and skips rendering when the folder already holds the same spec.

    Example::

        musdb_corpus:
          type: anchormix_kedro.datasets.MusdbCorpusDataset
          path: ${oc.env:MUSDB_PATH,""}
    """

    def __init__(
        self,
        path: str | None,
        max_length_mismatch_s: float = 0.5,
        must_exist: bool = True,
        metadata: dict | None = None,
    ) -> None:
        self._path = Path(path).expanduser() if path else None
        self._must_exist = must_exist
        self._max_length_mismatch_s = max_length_mismatch_s
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path) if self._path else None}

    def _exists(self) -> bool:
        return self._path is not None and self._path.is_dir()

    def load(self) -> MusdbCorpus:
        if self._path is None or (not self._must_exist and not self._path.is_dir()):
            return MusdbCorpus(root=None)
        return discover_corpus(self._path, self._max_length_mismatch_s)

    def save(self, data: SyntheticCorpusSpec) -> None:
        if self._path is None:
            raise DatasetError("MusdbCorpusDataset: cannot save a corpus without a path")
        root = self._path
        marker = root / MARKER_FILENAME
        if root.exists() and any(root.iterdir()) and not marker.is_file():
            raise DatasetError(
                f"{root} already holds files that AnchorMix did not write; "
                "choose an empty folder for the synthetic corpus (nothing was changed)"
            )
        if data.n_songs == 0:
            return  # MUSDB18 is used instead; an earlier synthetic corpus stays for later runs
        if (
            marker.is_file()
            and json.loads(marker.read_text()).get("fingerprint") == data.fingerprint
        ):
            logger.info("Synthetic corpus in %s is up to date (%d songs)", root, data.n_songs)
            return
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        marker.write_text(json.dumps({"fingerprint": None, "complete": False}))
        rows = []
        for index, (plan, stems) in enumerate(data.render(), start=1):
            song_dir = root / plan.split / plan.name
            song_dir.mkdir(parents=True, exist_ok=True)
            for stem, audio in stems.items():
                soundfile.write(
                    str(song_dir / f"{stem}.wav"), audio, data.sample_rate, subtype="PCM_16"
                )
            mixture = np.sum(list(stems.values()), axis=0)
            soundfile.write(
                str(song_dir / "mixture.wav"),
                np.clip(mixture, -1, 1),
                data.sample_rate,
                subtype="PCM_16",
            )
            rows.append(
                {
                    "Track Name": plan.name,
                    "Genre": plan.genre,
                    "Source": "AnchorMix synthetic",
                    "License": "CC0",
                }
            )
            logger.info("Synthetic song %d/%d: %s (%s)", index, data.n_songs, plan.name, plan.genre)
        with open(root / TRACKLIST_FILENAME, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["Track Name", "Genre", "Source", "License"])
            writer.writeheader()
            writer.writerows(rows)
        # Only a completed render is marked reusable; a killed run renders again.
        marker.write_text(
            json.dumps({"fingerprint": data.fingerprint, "complete": True, "songs": data.n_songs})
        )
