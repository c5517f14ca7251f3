"""Nodes of the ingestion pipeline: corpus -> tracks, excerpts (16 kHz) and loudness, and
source-rate copies of the excerpts people listen to.

A song gives up to ``ingestion.excerpt.per_song`` excerpts. Their ids are known before any
audio is decoded (they are the partition names): the song's id (:func:`excerpt_id_for`)
for the first, ``<id>__2``, ``<id>__3``, ... for the next ones, in time order. An id whose
excerpt the song is too short to hold becomes an *unused* record (``meta["unused"]`` true,
no audio), which :func:`tabulate_loudness` leaves out of the loudness table.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor

import pandas as pd

from anchormix_kedro.instruction_data.audio import AudioError, StemSet
from anchormix_kedro.instruction_data.excerpts import (
    ExcerptSettings,
    extract_song_excerpts,
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


#: Between a song's id and the number of its second, third, ... excerpt. Song ids never
#: hold it (:func:`excerpt_id_for` collapses runs of other characters into one "_").
EXCERPT_NUMBER_SEPARATOR = "__"


def excerpt_id_for(song: str, number: int = 1) -> str:
    """File-system-safe, readable id of a song's ``number``-th excerpt (in time order; also
    its partition name): the song's id for the first, ``<id>__<number>`` for the others."""
    song_id = re.sub(r"[^A-Za-z0-9]+", "_", song).strip("_")
    return song_id if number == 1 else f"{song_id}{EXCERPT_NUMBER_SEPARATOR}{number}"


def excerpt_ids_of(song_id: str, excerpt_ids: Collection[str]) -> list[str]:
    """The ids among ``excerpt_ids`` of the excerpts of the song whose first id is
    ``song_id``, in excerpt order."""
    prefix = song_id + EXCERPT_NUMBER_SEPARATOR
    numbered = {
        int(e[len(prefix) :]): e
        for e in excerpt_ids
        if e.startswith(prefix) and e[len(prefix) :].isdigit()
    }
    first = [song_id] if song_id in excerpt_ids else []
    return first + [numbered[n] for n in sorted(numbered)]


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
    """One row per song: its split (MUSDB18's), genre, folder and layout; ``excerpt_id`` is
    the id of its first excerpt (the others add ``__2``, ``__3``, ...)."""
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
        # A song's excerpts may come one after the other or interleaved with another song's
        # (ids sort "A", "A_B", "A__2"): each song once, where it is first expected.
        self._songs = list(dict.fromkeys(song for _, song in expected_order))
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


class _SongRecords:
    """Records computed a whole song at a time (one decode for all of its excerpts), each
    kept until it has been asked for once; asked again, the song is computed again."""

    def __init__(self, compute: Callable[[str], dict[str, dict]]) -> None:
        self._compute = compute
        self._kept: dict[str, dict[str, dict]] = {}
        self._lock = threading.Lock()

    def get(self, song: str, excerpt_id: str) -> dict:
        with self._lock:
            kept = self._kept.get(song)
            if kept is None or excerpt_id not in kept:
                kept = self._kept[song] = self._compute(song)
            record = kept.pop(excerpt_id)
            if not kept:
                del self._kept[song]
            return record

    def lazy(self, song_of: dict[str, str]) -> dict[str, Callable[[], dict]]:
        """``{excerpt_id: load}`` for a lazily saved partitioned dataset, ``song_of`` giving
        each excerpt's song."""
        return {
            excerpt_id: functools.partial(self.get, song, excerpt_id)
            for excerpt_id, song in song_of.items()
        }


def extract_excerpts(
    musdb_corpus: MusdbCorpus,
    synthetic_corpus: MusdbCorpus,
    tracks: pd.DataFrame,
    excerpt: dict,
    pairs: dict,
) -> dict[str, Callable[[], dict]]:
    """Up to ``excerpt["per_song"]`` excerpt records per song, computed lazily, a song at a
    time: each song is decoded once for all of its excerpts.

    Keys: ``per_song`` ids per song (:func:`excerpt_id_for`); the ones a short song cannot
    fill are records with ``meta["unused"]`` true, no error and no audio. A song that cannot
    be read (missing stem, corrupt file, mismatched stems, NaN) gives records with an
    ``error`` and no audio: it is counted and reported, the run goes on.
    """
    settings = ExcerptSettings(**excerpt)
    anchors = validate_stem_names(pairs["anchors"], "pairs.anchors")
    targets = validate_stem_names(pairs["targets"], "pairs.targets")
    _, corpus = _source_corpus(musdb_corpus, synthetic_corpus)
    total = len(tracks)
    position = {song: i for i, song in enumerate(tracks["song"], start=1)}
    ids_of = {
        song: [excerpt_id_for(song, n) for n in range(1, settings.per_song + 1)]
        for song in tracks["song"]
    }
    song_of = {excerpt_id: song for song, ids in ids_of.items() for excerpt_id in ids}
    # The catalog saves partitions in sorted order: decode the next song while this one is measured.
    loader = PrefetchingLoader(corpus, sorted((e, song) for e, song in song_of.items()))

    def compute(song: str) -> dict[str, dict]:
        ids = ids_of[song]
        metas = {e: {"excerpt_id": e, "song": song, "error": None, "warnings": []} for e in ids}
        try:
            stem_set = loader.load(song)
            chosen = extract_song_excerpts(stem_set, anchors, targets, settings)
        except AudioError as exc:
            logger.warning("[%d/%d] skipped %s: %s", position[song], total, song, exc)
            return {
                e: {"meta": {**meta, "error": str(exc)}, "audio": {}} for e, meta in metas.items()
            }
        for note in stem_set.warnings:
            logger.warning("%s", note)
        records = {}
        for number, (excerpt_id, meta) in enumerate(metas.items(), start=1):
            if number > len(chosen):
                records[excerpt_id] = {"meta": {**meta, "unused": True}, "audio": {}}
                continue
            part = chosen[number - 1]
            meta.update(
                warnings=list(stem_set.warnings),
                excerpt_number=number,
                song_excerpts=len(chosen),
                start_s=round(part.start_s, 3),
                seconds=round(part.seconds, 3),
                native_sample_rate=part.native_sample_rate,
                sample_rate=settings.model_sample_rate,
                lufs=part.lufs,
                active_fraction=part.active_fraction,
                peak_dbfs=part.peak_dbfs,
                status=part.status,
            )
            logger.info(
                "[%d/%d] %s: %s%.1f s from %.1f s; %s",
                position[song],
                total,
                song,
                f"excerpt {number} of {len(chosen)}, " if len(chosen) > 1 else "",
                part.seconds,
                part.start_s,
                ", ".join(f"{s} {part.lufs[s]:.1f} LUFS ({part.status[s]})" for s in STEM_NAMES),
            )
            records[excerpt_id] = {"meta": meta, "audio": part.audio}
        return records

    return _SongRecords(compute).lazy(song_of)


def tabulate_loudness(excerpts: dict[str, Callable[[], dict]]) -> tuple[pd.DataFrame, dict]:
    """Loudness of every stem in every excerpt, and a summary of what was skipped and why.

    Unused records (ids a short song could not fill) are left out, silently.
    """
    rows, failures, warnings_ = [], {}, []
    songs, ingested_songs, warned_songs = set(), set(), set()
    status_counts: Counter[str] = Counter()
    n_excerpts = 0
    for excerpt_id in sorted(excerpts):
        meta = excerpts[excerpt_id]()["meta"]
        songs.add(meta["song"])
        if meta["error"]:
            failures[meta["song"]] = meta["error"]
            continue
        if meta.get("unused"):
            continue
        n_excerpts += 1
        ingested_songs.add(meta["song"])
        if meta["song"] not in warned_songs:  # the same for every excerpt of the song
            warned_songs.add(meta["song"])
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
        "songs_listed": len(songs),
        "songs_ingested": len(ingested_songs),
        "excerpts_ingested": n_excerpts,
        "songs_skipped": failures,
        "stems_by_status": dict(sorted(status_counts.items())),
        "warnings": warnings_,
    }
    logger.info(
        "Ingested %d excerpts of %d of %d songs (%d skipped)",
        n_excerpts,
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

    The same stretches of each song as its 16 kHz excerpts (their ``start_s`` and
    ``seconds``), under the same ids, for people to listen to: the rating study plays these.
    Unused ids get no record. Computed lazily, one song in memory at a time (decoded once
    for all of its excerpts); a song whose excerpts failed keeps its error and has no audio.
    """
    splits = source_rate.get("splits")
    chosen = tracks if splits is None else tracks[tracks["split"].isin(list(splits))]
    chosen = chosen[chosen["excerpt_id"].isin(list(excerpts))]
    _, corpus = _source_corpus(musdb_corpus, synthetic_corpus)
    # A song's first id is always used (or failed); read the others' windows now to leave out
    # the unused ones (small records: their metadata and 16 kHz audio).
    windows: dict[str, dict] = {}
    ids_of: dict[str, list[str]] = {}
    for song_id, song in zip(chosen["excerpt_id"], chosen["song"], strict=True):
        ids_of[song] = [song_id]
        for excerpt_id in excerpt_ids_of(song_id, excerpts)[1:]:
            meta = excerpts[excerpt_id]()["meta"]
            if not meta.get("unused") and not meta.get("error"):
                windows[excerpt_id] = meta
                ids_of[song].append(excerpt_id)
    song_of = {excerpt_id: song for song, ids in ids_of.items() for excerpt_id in ids}
    loader = PrefetchingLoader(corpus, sorted(song_of.items()))
    logger.info(
        "Source-rate excerpts: %d of %d songs (splits %s)",
        len(song_of),
        len(chosen),
        "all" if splits is None else ", ".join(splits),
    )

    def compute(song: str) -> dict[str, dict]:
        metas = {}
        for excerpt_id in ids_of[song]:
            window = windows.get(excerpt_id) or excerpts[excerpt_id]()["meta"]
            metas[excerpt_id] = (
                window,
                {"excerpt_id": excerpt_id, "song": song, "error": window.get("error")},
            )
        if all(meta["error"] for _, meta in metas.values()):
            return {e: {"meta": meta, "audio": {}} for e, (_, meta) in metas.items()}
        try:
            stem_set = loader.load(song)
        except AudioError as exc:  # read before for the 16 kHz copy: changed since
            logger.warning("source-rate excerpts of %s skipped: %s", song, exc)
            return {
                e: {"meta": {**meta, "error": meta["error"] or str(exc)}, "audio": {}}
                for e, (_, meta) in metas.items()
            }
        records = {}
        for excerpt_id, (window, meta) in metas.items():
            if meta["error"]:
                records[excerpt_id] = {"meta": meta, "audio": {}}
                continue
            audio = source_rate_excerpt(
                stem_set, float(window["start_s"]), float(window["seconds"]), STEM_NAMES
            )
            meta.update(
                sample_rate=stem_set.sample_rate,
                channels=int(next(iter(audio.values())).shape[1]),
                start_s=float(window["start_s"]),
                seconds=float(window["seconds"]),
            )
            records[excerpt_id] = {"meta": meta, "audio": audio}
        return records

    return _SongRecords(compute).lazy(song_of)
