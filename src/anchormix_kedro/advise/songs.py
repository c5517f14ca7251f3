"""Loading a song for ``anchormix advise``: a folder of stem files or an NI ``.stem.mp4``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anchormix_kedro.advise.errors import CliError
from anchormix_kedro.instruction_data.audio import (
    AudioError,
    align_stems,
    check_finite,
    decode_stem_mp4,
    read_audio_file,
    resample,
)
from anchormix_kedro.instruction_data.musdb import MUSDB_STREAM_IDS, STEM_MP4_SUFFIX
from anchormix_kedro.vocabulary import STEM_NAMES

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
#: Files of a song folder that are not stems.
NOT_STEMS = ("mixture",)
#: Resampling can leave stems a sample or two apart: only larger differences are reported.
LENGTH_TOLERANCE_S = 0.01


@dataclass
class Song:
    """A song's stems, aligned: same rate, same length, ``(samples, channels)`` float32."""

    name: str
    stems: dict[str, np.ndarray]
    sample_rate: int
    files: dict[str, str]  # stem -> the file (or stream) it came from, for messages

    @property
    def seconds(self) -> float:
        return next(iter(self.stems.values())).shape[0] / self.sample_rate


def load_song(path: Path, warn: Callable[[str], None]) -> Song:
    """Load a folder of stem files or a ``.stem.mp4``; warnings are passed to ``warn``."""
    if not path.exists():
        raise CliError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_stem_folder(path, warn)
    if path.name.lower().endswith(STEM_MP4_SUFFIX):
        return _load_stem_mp4(path, warn)
    raise CliError(
        f"{path}: SONG must be a folder of stem files "
        f"({', '.join(AUDIO_EXTENSIONS)}) or an NI {STEM_MP4_SUFFIX} file"
    )


def _load_stem_mp4(path: Path, warn: Callable[[str], None]) -> Song:
    streams = {stem: MUSDB_STREAM_IDS[stem] for stem in STEM_NAMES}
    try:
        decoded, rate = decode_stem_mp4(path, streams)
        check_finite(decoded, str(path))
        aligned = align_stems(decoded, dict.fromkeys(decoded, rate), str(path), math.inf)
    except AudioError as exc:
        raise CliError(str(exc)) from None
    for note in aligned.warnings:
        warn(note)
    return Song(
        name=path.name[: -len(STEM_MP4_SUFFIX)],
        stems=aligned.stems,
        sample_rate=aligned.sample_rate,
        files={stem: f"{path.name} stream {sid}" for stem, sid in streams.items()},
    )


def _stem_files(folder: Path, warn: Callable[[str], None]) -> dict[str, Path]:
    """``{stem name: file}`` of a song folder; other files are listed in a warning."""
    files: dict[str, Path] = {}
    unsupported: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if entry.suffix.lower() not in AUDIO_EXTENSIONS:
            unsupported.append(entry.name)
            continue
        stem = entry.stem.lower()
        if stem in NOT_STEMS:
            continue
        if stem in files:
            raise CliError(
                f"{folder}: two files for stem '{stem}' ({files[stem].name}, {entry.name}); "
                "keep one"
            )
        files[stem] = entry
    if unsupported:
        warn(
            f"{folder}: ignored files that are not audio stems ({', '.join(unsupported)}); "
            f"stems are {', '.join(AUDIO_EXTENSIONS)} files"
        )
    if not files:
        raise CliError(
            f"{folder}: no stem files found; put one {'/'.join(AUDIO_EXTENSIONS)} file per stem "
            "in the folder (e.g. drums.wav, bass.wav, other.wav, vocals.wav)"
        )
    return files


def _load_stem_folder(folder: Path, warn: Callable[[str], None]) -> Song:
    files = _stem_files(folder, warn)
    stems: dict[str, np.ndarray] = {}
    rates: dict[str, int] = {}
    for stem, file in files.items():
        try:
            stems[stem], rates[stem] = read_audio_file(file)
        except AudioError as exc:
            raise CliError(str(exc)) from None
    rate = max(rates.values())
    if len(set(rates.values())) > 1:
        listing = ", ".join(f"{files[s].name} {r} Hz" for s, r in rates.items())
        resampled = [files[s].name for s, r in rates.items() if r != rate]
        warn(
            f"{folder}: stems have different sample rates ({listing}); "
            f"resampled {', '.join(resampled)} to {rate} Hz"
        )
        stems = {s: resample(d, rates[s], rate) for s, d in stems.items()}
    lengths = {s: d.shape[0] for s, d in stems.items()}
    shortest = min(lengths.values())
    if (max(lengths.values()) - shortest) / rate > LENGTH_TOLERANCE_S:
        listing = ", ".join(f"{files[s].name} {n / rate:.2f} s" for s, n in lengths.items())
        warn(
            f"{folder}: stems differ in length ({listing}); "
            f"all trimmed to the shortest, {shortest / rate:.2f} s"
        )
    stems = {s: d[:shortest] for s, d in stems.items()}
    try:
        check_finite(stems, str(folder))
        aligned = align_stems(stems, dict.fromkeys(stems, rate), str(folder), math.inf)
    except AudioError as exc:
        raise CliError(str(exc)) from None
    for note in aligned.warnings:
        warn(note)
    return Song(
        name=folder.resolve().name,
        stems=aligned.stems,
        sample_rate=rate,
        files={s: f.name for s, f in files.items()},
    )
