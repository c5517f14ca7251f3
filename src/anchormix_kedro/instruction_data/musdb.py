"""MUSDB18 on disk: the two published layouts, its splits and its genres.

- MUSDB18 (NI stems): ``<root>/{train,test}/<song>.stem.mp4``, audio streams
  0 mixture, 1 drums, 2 bass, 3 other, 4 vocals.
- MUSDB18-HQ: ``<root>/{train,test}/<song>/{mixture,drums,bass,other,vocals}.wav``.

A root may hold only ``train/`` or only ``test/``. Nothing here decodes audio until a
song's stems are asked for, so listing even the full dataset is instant.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from anchormix_kedro.instruction_data.audio import (
    AudioError,
    StemSet,
    align_stems,
    check_finite,
    decode_stem_mp4,
    read_audio_file,
)
from anchormix_kedro.vocabulary import STEM_NAMES

MUSDB_STREAM_IDS: dict[str, int] = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
MUSDB_FOLDERS: tuple[str, ...] = ("train", "test")
STEM_MP4_SUFFIX = ".stem.mp4"
SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: The 14 songs of MUSDB18's train folder that the ``musdb`` package holds out for validation.
MUSDB_VALIDATION_TRACKS: tuple[str, ...] = (
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
)

#: A root may carry its own track list (the synthetic corpus does); same columns as MUSDB18's.
TRACKLIST_FILENAME = "tracklist.csv"
UNKNOWN_GENRE = "unknown"


def validate_stem_names(names: Iterable[str], setting: str) -> list[str]:
    """Return ``names`` as a list (one name alone is a one-item list), or raise a
    ``ValueError`` naming the unknown stem and the setting."""
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in STEM_NAMES]
    if unknown:
        raise ValueError(
            f"unknown stem name(s) {unknown} in {setting}; MUSDB18 stems are {', '.join(STEM_NAMES)}"
        )
    if not names:
        raise ValueError(f"{setting} is empty; name at least one of {', '.join(STEM_NAMES)}")
    return names


# --------------------------------------------------------------------------- genres


def _name_key(name: str) -> str:
    """Spelling-tolerant key: lower-case words, punctuation dropped, word order ignored.

    Matches MUSDB18's two known differences between file names and its track list
    ("Jokers, Jacks & Kings" / "Jokers Jacks & Kings", "Set Me Free" / "Set Free Me").
    """
    return " ".join(sorted(re.findall(r"[a-z0-9]+", name.lower())))


def read_tracklist(lines: Iterable[str]) -> dict[str, str]:
    """Parse a MUSDB18-style track list (``Track Name,Genre,...``) into ``{name key: genre}``."""
    genres: dict[str, str] = {}
    for row in csv.DictReader(lines):
        name, genre = (row.get("Track Name") or "").strip(), (row.get("Genre") or "").strip()
        if name and genre:
            genres[_name_key(name)] = genre
    return genres


def shipped_genres() -> dict[str, str]:
    """Genres of the 150 MUSDB18 songs, from the track list shipped with the project."""
    text = (
        resources.files("anchormix_kedro")
        .joinpath("resources/musdb18_tracklist.csv")
        .read_text("utf-8")
    )
    return read_tracklist(text.splitlines())


def genre_of(song: str, genres: dict[str, str]) -> str:
    return genres.get(_name_key(song), UNKNOWN_GENRE)


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class TrackSource:
    """One song on disk; ``path`` is a ``.stem.mp4`` file or a folder of wav stems."""

    name: str
    folder: str  # "train" or "test": the MUSDB18 folder it lies in
    path: Path
    genre: str = UNKNOWN_GENRE

    @property
    def layout(self) -> str:
        return "stem_mp4" if self.path.name.endswith(STEM_MP4_SUFFIX) else "wav_folder"


@dataclass
class MusdbCorpus:
    """The songs under a MUSDB18 root. ``configured`` is False when no root was given."""

    root: Path | None
    tracks: list[TrackSource] = field(default_factory=list)
    max_length_mismatch_s: float = 0.5

    @property
    def configured(self) -> bool:
        return self.root is not None

    def __len__(self) -> int:
        return len(self.tracks)

    def track(self, name: str) -> TrackSource:
        for track in self.tracks:
            if track.name == name:
                return track
        raise KeyError(f"no song named {name!r} under {self.root}")

    def load_stems(self, track: TrackSource, stems: Sequence[str] = STEM_NAMES) -> StemSet:
        """Decode the given stems of one song; raises :class:`AudioError` naming the file."""
        if track.layout == "stem_mp4":
            decoded, rate = decode_stem_mp4(track.path, {s: MUSDB_STREAM_IDS[s] for s in stems})
            check_finite(decoded, str(track.path))
            return align_stems(
                decoded, dict.fromkeys(decoded, rate), str(track.path), self.max_length_mismatch_s
            )
        missing = [f"{s}.wav" for s in stems if not (track.path / f"{s}.wav").is_file()]
        if missing:
            present = sorted(p.name for p in track.path.glob("*.wav"))
            raise AudioError(
                f"{track.path}: missing stem file(s) {', '.join(missing)} "
                f"(found: {', '.join(present) or 'no wav files'}); a MUSDB18-HQ song folder "
                "holds mixture.wav, drums.wav, bass.wav, other.wav and vocals.wav"
            )
        decoded, rates = {}, {}
        for stem in stems:
            decoded[stem], rates[stem] = read_audio_file(track.path / f"{stem}.wav")
        check_finite(decoded, str(track.path))
        return align_stems(decoded, rates, str(track.path), self.max_length_mismatch_s)


def discover_corpus(root: str | Path, max_length_mismatch_s: float = 0.5) -> MusdbCorpus:
    """List the songs under a MUSDB18 or MUSDB18-HQ root (either layout, either split folder).

    Raises ``FileNotFoundError``/``ValueError`` naming the root when it does not exist or
    holds no songs.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"MUSDB18 root {root} does not exist; set MUSDB_PATH or the musdb_root setting "
            "to a folder holding train/ and/or test/"
        )
    genres = shipped_genres()
    local_tracklist = root / TRACKLIST_FILENAME
    if local_tracklist.is_file():
        genres.update(read_tracklist(local_tracklist.read_text("utf-8").splitlines()))
    tracks: list[TrackSource] = []
    for folder in MUSDB_FOLDERS:
        folder_path = root / folder
        if not folder_path.is_dir():
            continue
        for entry in sorted(folder_path.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_file() and entry.name.endswith(STEM_MP4_SUFFIX):
                name = entry.name[: -len(STEM_MP4_SUFFIX)]
            elif entry.is_dir():
                name = entry.name
            else:
                continue
            tracks.append(
                TrackSource(name=name, folder=folder, path=entry, genre=genre_of(name, genres))
            )
    if not tracks:
        raise ValueError(
            f"MUSDB18 root {root} holds no songs: expected train/ or test/ with *.stem.mp4 files "
            "or song folders of wav stems"
        )
    names = [t.name for t in tracks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"MUSDB18 root {root}: songs in both train/ and test/: {duplicates}")
    return MusdbCorpus(root=root, tracks=tracks, max_length_mismatch_s=max_length_mismatch_s)


# --------------------------------------------------------------------------- splits


def _stable_unit(text: str, seed: int) -> float:
    """A number in [0, 1) that depends only on ``text`` and ``seed`` (not on listing order)."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    tracks: Sequence[TrackSource],
    validation_tracks: Sequence[str],
    carve_missing: dict[str, float],
    seed: int,
) -> dict[str, str]:
    """MUSDB18's splits: test folder -> test, listed validation songs -> valid, the rest train.

    ``carve_missing`` maps a split that would otherwise be empty (e.g. a root with only
    ``train/``) to the fraction of train songs moved into it, chosen by a stable hash of
    the song name so the choice does not depend on which other songs are present.
    """
    validation_keys = {_name_key(n) for n in validation_tracks}
    splits = {
        t.name: "test"
        if t.folder == "test"
        else ("valid" if _name_key(t.name) in validation_keys else "train")
        for t in tracks
    }
    for split, fraction in carve_missing.items():
        if split not in ("valid", "test"):
            raise ValueError(
                f"splits.carve_when_missing: can carve 'valid' or 'test', not {split!r}"
            )
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"splits.carve_when_missing.{split} must be in [0, 1), got {fraction}")
        if fraction == 0 or split in splits.values():
            continue
        train = sorted(
            (n for n, s in splits.items() if s == "train"),
            key=lambda n: _stable_unit(n + split, seed),
        )
        n_carved = int(round(fraction * len(train)))
        if n_carved == 0 and len(train) >= 3:
            n_carved = 1
        for name in train[:n_carved]:
            splits[name] = split
    return splits
