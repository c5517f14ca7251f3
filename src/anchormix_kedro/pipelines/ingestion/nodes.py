"""Nodes of the ingestion pipeline: corpus -> tracks, excerpts (16 kHz) and loudness, and
source-rate copies of the excerpts people listen to."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pandas as pd

from anchormix_kedro.instruction_data.audio import AudioError, StemSet
from anchormix_kedro.instruction_data.excerpts import (
    ExcerptSettings,
    extract_excerpt,
    source_rate_excerpt,
)
from anchormix_kedro.instruction_data.musdb import MusdbCorpus, assign_splits, validate_stem_names
from anchormix_kedro.instruction_data.synthetic.corpus import SyntheticCorpusSpec
from anchormix_kedro.vocabulary import STEM_NAMES

logger = logging.getLogger(__name__)

TRACK_COLUMNS = ["song", "excerpt_id", "split", "genre", "folder", "layout", "source"]
LOUDNESS_COLUMNS = [
    "excerpt_id", "song", "stem", "lufs", "active_fraction", "peak_dbfs", "status",
    "excerpt_start_s", "excerpt_seconds", "native_sample_rate",
]  # fmt: skip


def _source_corpus(
    musdb_corpus: MusdbCorpus, synthetic_corpus: MusdbCorpus
) -> tuple[str, MusdbCorpus]:
    return ("musdb", musdb_corpus) if musdb_corpus.configured else ("synthetic", synthetic_corpus)


def excerpt_id_for(song: str) -> str:
    """File-system-safe, readable id of a song's excerpt (also its partition name)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", song).strip("_")


def plan_synthetic_corpus(musdb_corpus: MusdbCorpus, synthetic: dict) -> SyntheticCorpusSpec:
    """The synthetic corpus to render: none when a MUSDB18 root is configured."""
    if musdb_corpus.configured:
        logger.info(
            "Using MUSDB18 at %s (%d songs); no synthetic corpus needed",
            musdb_corpus.root,
            len(musdb_corpus),
        )
        return SyntheticCorpusSpec()
    logger.info(
        "No MUSDB18 root configured (set MUSDB_PATH or --params musdb_root=...): "
        "using a synthetic corpus of %d songs of %.0f s",
        synthetic["n_songs"],
        synthetic["seconds"],
    )
    return SyntheticCorpusSpec.from_params(synthetic)


def list_tracks(
    musdb_corpus: MusdbCorpus, synthetic_corpus: MusdbCorpus, splits: dict
) -> pd.DataFrame:
    """One row per song: its split (MUSDB18's), genre, folder and layout."""
    source, corpus = _source_corpus(musdb_corpus, synthetic_corpus)
    assigned = assign_splits(
        corpus.tracks,
        validation_tracks=splits["validation_tracks"],
        carve_missing=dict(splits.get("carve_when_missing") or {}),
        seed=int(splits["seed"]),
    )
    rows = [
        {
            "song": t.name,
            "excerpt_id": excerpt_id_for(t.name),
            "split": assigned[t.name],
            "genre": t.genre,
            "folder": t.folder,
            "layout": t.layout,
            "source": source,
        }
        for t in corpus.tracks
    ]
    tracks = pd.DataFrame(rows, columns=TRACK_COLUMNS)
    clashes = tracks[tracks["excerpt_id"].duplicated(keep=False)]
    if len(clashes):
        raise ValueError(
            f"song names collide after making them file-safe: {clashes['song'].tolist()}; rename one"
        )
    counts = tracks["split"].value_counts().to_dict()
    logger.info(
        "Tracks: %d (%s) from %s",
        len(tracks),
        ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        source,
    )
    return tracks


class PrefetchingLoader:
    """Loads songs' stems, decoding the song expected next in a background thread.

    Decoding (FFmpeg, libsndfile) runs outside Python's lock, so it overlaps with the
    measuring of the current song; at most two songs are in memory.
    """

    def __init__(self, corpus: MusdbCorpus, expected_order: list[tuple[str, str]]) -> None:
        self._corpus = corpus
        self._songs = [song for _, song in expected_order]
        self._pending: dict[str, Future] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")

    def _submit(self, song: str) -> Future:
        return self._executor.submit(self._corpus.load_stems, self._corpus.track(song), STEM_NAMES)

    def load(self, song: str) -> StemSet:
        future = self._pending.pop(song, None) or self._submit(song)
        position = self._songs.index(song)
        if position + 1 < len(self._songs):
            upcoming = self._songs[position + 1]
            if upcoming not in self._pending:
                self._pending[upcoming] = self._submit(upcoming)
        return future.result()


def extract_excerpts(
    musdb_corpus: MusdbCorpus,
    synthetic_corpus: MusdbCorpus,
    tracks: pd.DataFrame,
    excerpt: dict,
    pairs: dict,
) -> dict[str, Callable[[], dict]]:
    """One excerpt record per song, computed lazily so only one song is in memory at a time.

    A song that cannot be read (missing stem, corrupt file, mismatched stems, NaN) becomes
    a record with an ``error`` and no audio: it is counted and reported, the run goes on.
    """
    settings = ExcerptSettings(**excerpt)
    anchors = validate_stem_names(pairs["anchors"], "pairs.anchors")
    targets = validate_stem_names(pairs["targets"], "pairs.targets")
    _, corpus = _source_corpus(musdb_corpus, synthetic_corpus)
    total = len(tracks)
    # The catalog saves partitions in sorted order: decode the next song while this one is measured.
    loader = PrefetchingLoader(
        corpus, sorted(zip(tracks["excerpt_id"], tracks["song"], strict=True))
    )

    def make_record(position: int, row: pd.Series) -> Callable[[], dict]:
        def record() -> dict:
            meta = {
                "excerpt_id": row["excerpt_id"],
                "song": row["song"],
                "error": None,
                "warnings": [],
            }
            try:
                stem_set = loader.load(row["song"])
                chosen = extract_excerpt(stem_set, anchors, targets, settings)
            except AudioError as exc:
                logger.warning("[%d/%d] skipped %s: %s", position, total, row["song"], exc)
                return {"meta": {**meta, "error": str(exc)}, "audio": {}}
            for note in stem_set.warnings:
                logger.warning("%s", note)
            meta.update(
                warnings=list(stem_set.warnings),
                start_s=round(chosen.start_s, 3),
                seconds=round(chosen.seconds, 3),
                native_sample_rate=chosen.native_sample_rate,
                sample_rate=settings.model_sample_rate,
                lufs=chosen.lufs,
                active_fraction=chosen.active_fraction,
                peak_dbfs=chosen.peak_dbfs,
                status=chosen.status,
            )
            logger.info(
                "[%d/%d] %s: %.1f s from %.1f s; %s",
                position,
                total,
                row["song"],
                chosen.seconds,
                chosen.start_s,
                ", ".join(
                    f"{s} {chosen.lufs[s]:.1f} LUFS ({chosen.status[s]})" for s in STEM_NAMES
                ),
            )
            return {"meta": meta, "audio": chosen.audio}

        return record

    return {
        row["excerpt_id"]: make_record(i, row)
        for i, (_, row) in enumerate(tracks.iterrows(), start=1)
    }


def tabulate_loudness(excerpts: dict[str, Callable[[], dict]]) -> tuple[pd.DataFrame, dict]:
    """Loudness of every stem in every excerpt, and a summary of what was skipped and why."""
    rows, failures, warnings_ = [], {}, []
    status_counts: Counter[str] = Counter()
    for excerpt_id in sorted(excerpts):
        meta = excerpts[excerpt_id]()["meta"]
        if meta["error"]:
            failures[meta["song"]] = meta["error"]
            continue
        warnings_.extend(meta["warnings"])
        for stem in STEM_NAMES:
            status_counts[f"{stem} {meta['status'][stem]}"] += 1
            rows.append(
                {
                    "excerpt_id": excerpt_id,
                    "song": meta["song"],
                    "stem": stem,
                    "lufs": meta["lufs"][stem],
                    "active_fraction": meta["active_fraction"][stem],
                    "peak_dbfs": meta["peak_dbfs"][stem],
                    "status": meta["status"][stem],
                    "excerpt_start_s": meta["start_s"],
                    "excerpt_seconds": meta["seconds"],
                    "native_sample_rate": meta["native_sample_rate"],
                }
            )
    loudness = pd.DataFrame(rows, columns=LOUDNESS_COLUMNS)
    if loudness.empty:
        raise ValueError(
            f"no song could be read ({len(failures)} failed); first error: "
            f"{next(iter(failures.values()), 'no songs listed')}"
        )
    summary = {
        "songs_listed": len(excerpts),
        "songs_ingested": len(excerpts) - len(failures),
        "songs_skipped": failures,
        "stems_by_status": dict(sorted(status_counts.items())),
        "warnings": warnings_,
    }
    logger.info(
        "Ingested %d of %d songs (%d skipped)",
        summary["songs_ingested"],
        summary["songs_listed"],
        len(failures),
    )
    return loudness, summary


def extract_source_rate_excerpts(
    musdb_corpus: MusdbCorpus,
    synthetic_corpus: MusdbCorpus,
    tracks: pd.DataFrame,
    excerpts: dict[str, Callable[[], dict]],
    source_rate: dict,
) -> dict[str, Callable[[], dict]]:
    """The excerpts of the songs of ``source_rate["splits"]`` at their source rate, in stereo.

    The same stretch of each song as its 16 kHz excerpt (its ``start_s`` and ``seconds``),
    for people to listen to: the rating study plays these. Computed lazily, one song in
    memory at a time; a song whose excerpt failed keeps its error and has no audio.
    """
    splits = source_rate.get("splits")
    chosen = tracks if splits is None else tracks[tracks["split"].isin(list(splits))]
    chosen = chosen[chosen["excerpt_id"].isin(list(excerpts))]
    _, corpus = _source_corpus(musdb_corpus, synthetic_corpus)
    loader = PrefetchingLoader(
        corpus, sorted(zip(chosen["excerpt_id"], chosen["song"], strict=True))
    )
    logger.info(
        "Source-rate excerpts: %d songs (splits %s)",
        len(chosen),
        "all" if splits is None else ", ".join(splits),
    )

    def make_record(excerpt_id: str, song: str) -> Callable[[], dict]:
        def record() -> dict:
            window = excerpts[excerpt_id]()["meta"]
            meta = {"excerpt_id": excerpt_id, "song": song, "error": window.get("error")}
            if meta["error"]:
                return {"meta": meta, "audio": {}}
            try:
                stem_set = loader.load(song)
            except AudioError as exc:  # read before for the 16 kHz copy: changed since
                logger.warning("source-rate excerpt of %s skipped: %s", song, exc)
                return {"meta": {**meta, "error": str(exc)}, "audio": {}}
            audio = source_rate_excerpt(
                stem_set, float(window["start_s"]), float(window["seconds"]), STEM_NAMES
            )
            meta.update(
                sample_rate=stem_set.sample_rate,
                channels=int(next(iter(audio.values())).shape[1]),
                start_s=float(window["start_s"]),
                seconds=float(window["seconds"]),
            )
            return {"meta": meta, "audio": audio}

        return record

    return {
        excerpt_id: make_record(excerpt_id, song)
        for excerpt_id, song in zip(chosen["excerpt_id"], chosen["song"], strict=True)
    }
