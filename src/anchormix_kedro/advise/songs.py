"""Loading a song for ``anchormix advise``: a folder of stem files or an NI ``.stem.mp4``.

A folder's files are mapped to MUSDB18's four stem groups by :mod:`.session` (its names,
``--stem`` overrides, ``--stem-words``); the files of one group are summed into its stem.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anchormix_kedro.advise.errors import CliError
from anchormix_kedro.advise.session import DEFAULT_STEM_WORDS, assign_files, is_mix_name
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
#: Files of a song folder that are not stems (a whole mix; see :func:`.session.is_mix_name`).
NOT_STEMS = ("mixture", "mix", "mixdown", "master", "bounce")
#: Resampling can leave stems a sample or two apart: only larger differences are reported.
LENGTH_TOLERANCE_S = 0.01


@dataclass
class Song:
    """A song's stems, aligned: same rate, same length, ``(samples, channels)`` float32."""

    name: str
    stems: dict[str, np.ndarray]
    sample_rate: int
    files: dict[str, str]  # stem -> the file(s) (or stream) it came from, for messages
    #: stem -> every file summed into it (a session folder may give a group several files)
    sources: dict[str, list[str]] = field(default_factory=dict)
    #: audio files of the folder that are a whole mix (e.g. ``mixture.wav``), not used
    not_stems: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return next(iter(self.stems.values())).shape[0] / self.sample_rate


def load_song(
    path: Path,
    warn: Callable[[str], None],
    overrides: Sequence[tuple[str, str]] = (),
    stem_words: Mapping[str, Sequence[str]] = DEFAULT_STEM_WORDS,
) -> Song:
    """Load a folder of stem files or a ``.stem.mp4``; warnings are passed to ``warn``.

    ``overrides`` (``--stem GROUP=FILE``) and ``stem_words`` apply to a folder only.
    """
    if not path.exists():
        raise CliError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_stem_folder(path, warn, overrides, stem_words)
    if overrides:
        raise CliError(f"{path}: --stem applies to a folder of stem files, not to one file")
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
        sources={stem: [f"{path.name} stream {sid}"] for stem, sid in streams.items()},
    )


def _audio_files(folder: Path, warn: Callable[[str], None]) -> tuple[list[Path], list[str]]:
    """The audio files of a song folder, and the whole mixes in it (not stems, not used).

    Files that are not audio are named in a warning."""
    files: list[Path] = []
    unsupported: list[str] = []
    mixes: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if entry.suffix.lower() not in AUDIO_EXTENSIONS:
            unsupported.append(entry.name)
        elif is_mix_name(entry.stem):
            mixes.append(entry.name)
        else:
            files.append(entry)
    if unsupported:
        warn(
            f"{folder}: ignored files that are not audio stems ({', '.join(unsupported)}); "
            f"stems are {', '.join(AUDIO_EXTENSIONS)} files"
        )
    if not files:
        raise CliError(
            f"{folder}: no stem files found; put the song's {'/'.join(AUDIO_EXTENSIONS)} "
            "stems or session tracks in the folder (e.g. drums.wav, bass.wav, other.wav, "
            "vocals.wav, or Kick.wav, Snare.wav, Lead Vox.wav, ...)"
        )
    return files, mixes


def _read_files(folder: Path, files: Sequence[Path], warn: Callable[[str], None]) -> tuple:
    """Every file decoded, at one rate and one length: ``({file name: audio}, rate)``."""
    audio: dict[str, np.ndarray] = {}
    rates: dict[str, int] = {}
    for file in files:
        try:
            audio[file.name], rates[file.name] = read_audio_file(file)
        except AudioError as exc:
            raise CliError(str(exc)) from None
    rate = max(rates.values())
    if len(set(rates.values())) > 1:
        listing = ", ".join(f"{name} {r} Hz" for name, r in rates.items())
        resampled = [name for name, r in rates.items() if r != rate]
        warn(
            f"{folder}: stems have different sample rates ({listing}); "
            f"resampled {', '.join(resampled)} to {rate} Hz"
        )
        audio = {name: resample(data, rates[name], rate) for name, data in audio.items()}
    lengths = {name: data.shape[0] for name, data in audio.items()}
    shortest = min(lengths.values())
    if (max(lengths.values()) - shortest) / rate > LENGTH_TOLERANCE_S:
        listing = ", ".join(f"{name} {n / rate:.2f} s" for name, n in lengths.items())
        warn(
            f"{folder}: stems differ in length ({listing}); "
            f"all trimmed to the shortest, {shortest / rate:.2f} s"
        )
    audio = {name: data[:shortest] for name, data in audio.items()}
    try:
        check_finite(audio, str(folder))
        aligned = align_stems(audio, dict.fromkeys(audio, rate), str(folder), math.inf)
    except AudioError as exc:
        raise CliError(str(exc)) from None
    for note in aligned.warnings:
        warn(note)
    return aligned.stems, rate


def _load_stem_folder(
    folder: Path,
    warn: Callable[[str], None],
    overrides: Sequence[tuple[str, str]],
    stem_words: Mapping[str, Sequence[str]],
) -> Song:
    files, mixes = _audio_files(folder, warn)
    groups = assign_files(files, overrides, stem_words, folder)
    audio, rate = _read_files(folder, files, warn)
    stems: dict[str, np.ndarray] = {}
    for group, members in groups.items():
        summed = np.zeros_like(audio[members[0].name])
        for member in members:
            summed += audio[member.name]
        stems[group] = summed
    return Song(
        name=folder.resolve().name,
        stems=stems,
        sample_rate=rate,
        files={g: " + ".join(f.name for f in members) for g, members in groups.items()},
        sources={g: [f.name for f in members] for g, members in groups.items()},
        not_stems=mixes,
    )
