"""Loading a song for ``anchormix advise``: a folder of stem files or an NI ``.stem.mp4``.

Stems are streamed (:mod:`.streaming`): a song of any length is checked and measured in
bounded memory, and only the windows that are measured are read again.

A folder's files are mapped to MUSDB18's four stem groups by :mod:`.session` (its names,
``--stem`` overrides, ``--stem-words``); the files of one group are summed into its stem.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from anchormix_kedro.advise.session import DEFAULT_STEM_WORDS, assign_files, is_mix_name
from anchormix_kedro.advise.streaming import (
    AudioSource,
    LevelMeter,
    SourceTally,
    StemLevels,
    native_stderr_silenced,
    probe_file,
    probe_streams,
    quietly,
    read_ranges,
    seek_ranges,
    stem_blocks,
)
from anchormix_kedro.errors import CliError
from anchormix_kedro.instruction_data.audio import AudioError, stem_width, trimmed_length
from anchormix_kedro.instruction_data.musdb import MUSDB_STREAM_IDS, STEM_MP4_SUFFIX
from anchormix_kedro.vocabulary import STEM_NAMES

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
#: Below this rate a file is not music to measure (telephone audio is 8 kHz); above the
#: highest rate in use a header is broken (and resampling to it would exhaust memory).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 768000
#: A float file's full scale is 1.0: a stem above this peak (+1 dBFS) is named in a warning,
OVER_FULL_SCALE = 10 ** (1 / 20)
#: and one above +60 dBFS is refused: its samples are not audio at any sane level.
FAR_OVER_FULL_SCALE = 1000.0
#: Resampling can leave stems a sample or two apart: only larger differences are reported.
LENGTH_TOLERANCE_S = 0.01


@dataclass
class Song:
    """A song's stems, checked and measured, ready to be read again window by window.

    Loading decodes every stem once and keeps its levels (``levels``), not its audio:
    memory does not grow with the song. :meth:`read_windows` decodes again for the few
    windows that are measured. All stems share ``sample_rate`` and ``n_samples``.
    """

    name: str
    sample_rate: int
    n_samples: int
    levels: dict[str, StemLevels]
    files: dict[str, str]  # stem -> the file(s) (or stream) it came from, for messages
    #: stem -> every file summed into it (a session folder may give a group several files)
    sources: dict[str, list[str]] = field(default_factory=dict)
    #: audio files of the folder that are a whole mix (e.g. ``mixture.wav``), not used
    not_stems: list[str] = field(default_factory=list)
    width: int = 2
    #: stem -> a digest of its decoded audio: two stems holding the same audio are found
    digests: dict[str, bytes] = field(default_factory=dict)
    streams: dict[str, list[AudioSource]] = field(default_factory=dict, repr=False)

    @property
    def stems(self) -> tuple[str, ...]:
        return tuple(self.levels)

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sample_rate

    def read_windows(
        self,
        wanted: Mapping[str, Sequence[tuple[int, int]]],
        on_stem: Callable[[], None] = lambda: None,
    ) -> dict[str, dict[tuple[int, int], np.ndarray]]:
        """The audio of sample ranges ``[begin, end)`` of some stems, decoded once more."""
        audio = {}
        for stem, ranges in wanted.items():
            sources = self.streams[stem]
            try:
                with native_stderr_silenced():
                    if all(s.seekable and s.sample_rate == self.sample_rate for s in sources):
                        audio[stem] = seek_ranges(sources, self.width, ranges)
                    else:  # compressed or resampled: decoded again up to the last window
                        blocks = stem_blocks(
                            sources, self.sample_rate, self.width, {}, self.n_samples
                        )
                        with contextlib.closing(blocks):
                            audio[stem] = read_ranges(blocks, ranges)
            except AudioError as exc:
                raise CliError(str(exc)) from None
            on_stem()
        return audio


def load_song(
    path: Path,
    warn: Callable[[str], None],
    overrides: Sequence[tuple[str, str]] = (),
    stem_words: Mapping[str, Sequence[str]] = DEFAULT_STEM_WORDS,
    progress: bool = False,
) -> Song:
    """Check and measure a folder of stem files or a ``.stem.mp4``; warnings go to ``warn``.

    ``overrides`` (``--stem GROUP=FILE``) and ``stem_words`` apply to a folder only.
    ``progress`` shows a bar over the decoding.
    """
    if not path.exists():
        raise CliError(f"{path}: no such file or folder")
    if path.is_dir():
        song = _stem_folder(path, warn, overrides, stem_words)
    elif overrides:
        raise CliError(f"{path}: --stem applies to a folder of stem files, not to one file")
    elif path.name.lower().endswith(STEM_MP4_SUFFIX):
        song = _stem_mp4(path)
    else:
        raise CliError(
            f"{path}: SONG must be a folder of stem files "
            f"({', '.join(AUDIO_EXTENSIONS)}) or an NI {STEM_MP4_SUFFIX} file"
        )
    try:
        _measure(song, path, warn, progress)
    except AudioError as exc:
        raise CliError(str(exc)) from None
    return song


def _stem_mp4(path: Path) -> Song:
    streams = {stem: MUSDB_STREAM_IDS[stem] for stem in STEM_NAMES}
    try:
        sources = probe_streams(path, streams, lambda stem, sid: f"{path.name} stream {sid}")
    except AudioError as exc:
        raise CliError(str(exc)) from None
    _check_rates(path, {path.name: sources[0].sample_rate})
    return Song(
        name=path.name[: -len(STEM_MP4_SUFFIX)],
        sample_rate=sources[0].sample_rate,
        n_samples=0,
        levels={},
        files={stem: s.label for stem, s in zip(streams, sources, strict=True)},
        sources={stem: [s.label] for stem, s in zip(streams, sources, strict=True)},
        streams={stem: [s] for stem, s in zip(streams, sources, strict=True)},
    )


def _stem_folder(
    folder: Path,
    warn: Callable[[str], None],
    overrides: Sequence[tuple[str, str]],
    stem_words: Mapping[str, Sequence[str]],
) -> Song:
    files, mixes = _audio_files(folder, warn, {name.lower() for _, name in overrides})
    groups = assign_files(files, overrides, stem_words, folder)
    try:
        probed = {file.name: probe_file(file) for file in files}
    except AudioError as exc:
        raise CliError(str(exc)) from None
    rates = {name: source.sample_rate for name, source in probed.items()}
    _check_rates(folder, rates)
    rate = max(rates.values())
    if len(set(rates.values())) > 1:
        listing = ", ".join(f"{name} {r} Hz" for name, r in rates.items())
        resampled = [name for name, r in rates.items() if r != rate]
        warn(
            f"{folder}: stems have different sample rates ({listing}); "
            f"resampled {', '.join(resampled)} to {rate} Hz"
        )
    return Song(
        name=folder.resolve().name,
        sample_rate=rate,
        n_samples=0,
        levels={},
        files={g: " + ".join(f.name for f in members) for g, members in groups.items()},
        sources={g: [f.name for f in members] for g, members in groups.items()},
        not_stems=mixes,
        streams={g: [probed[f.name] for f in members] for g, members in groups.items()},
    )


def _check_rates(path: Path, rates: Mapping[str, int]) -> None:
    """Refuse sample rates too low to hold music or too high to be real (a file header can
    say 100 Hz, or 1 GHz)."""
    low = {name: rate for name, rate in rates.items() if rate < MIN_SAMPLE_RATE}
    if low:
        listing = ", ".join(f"{name} {rate} Hz" for name, rate in low.items())
        raise CliError(
            f"{path}: sample rate below {MIN_SAMPLE_RATE} Hz ({listing}), too low to measure "
            "music; re-export at the session's rate (e.g. 44100 Hz or 48000 Hz)"
        )
    high = {name: rate for name, rate in rates.items() if rate > MAX_SAMPLE_RATE}
    if high:
        listing = ", ".join(f"{name} {rate} Hz" for name, rate in high.items())
        raise CliError(
            f"{path}: sample rate above {MAX_SAMPLE_RATE} Hz ({listing}): the file's header "
            "is broken; re-export it at the session's rate (e.g. 44100 Hz or 48000 Hz)"
        )


def _measure(song: Song, path: Path, warn: Callable[[str], None], progress: bool) -> None:
    """Decode every stem once: check it and keep its levels (in place)."""
    source = str(path)
    # A folder names its files in messages; a stem file, its stems.
    by_file = path.is_dir()
    units = {
        (s.label if by_file else stem): s for stem, group in song.streams.items() for s in group
    }
    song.width, notes = stem_width({u: s.channels for u, s in units.items()}, source)
    for note in notes:
        warn(note)
    tallies: dict[str, SourceTally] = {}
    meters = {}
    total = sum(max(s.seconds for s in group) for group in song.streams.values())
    bar = tqdm(
        total=round(total, 1),
        desc="decoding",
        unit="s",
        file=sys.stderr,
        disable=not progress,
        leave=False,
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]",
    )
    with bar:
        for stem, group in song.streams.items():
            bar.set_postfix_str(stem)
            meter = LevelMeter(song.sample_rate, song.width)
            digest = hashlib.blake2b(digest_size=16)
            for block in quietly(stem_blocks(group, song.sample_rate, song.width, tallies)):
                meter.add(block)
                digest.update(block.tobytes())
                bar.update(len(block) / song.sample_rate)
            meters[stem] = meter.result()
            song.digests[stem] = digest.digest()
    label_of = {s.label: u for u, s in units.items()}
    for label, tally in tallies.items():
        if tally.non_finite:
            raise AudioError(
                f"{source}: stem '{label_of[label]}' holds {tally.non_finite} NaN or infinite "
                "samples; re-export the stem or remove the song"
            )
        if not tally.samples:
            raise AudioError(
                f"{source}: '{label}' holds no audio; the file is truncated or corrupt"
            )
        if tally.peak > FAR_OVER_FULL_SCALE:
            raise AudioError(
                f"{source}: '{label}' peaks at {20 * math.log10(tally.peak):+.0f} dBFS, "
                f"{tally.peak:.0e} times full scale (a float file's full scale is 1.0): its "
                "samples are not audio at a usable level; re-export it"
            )
        if tally.peak > OVER_FULL_SCALE:
            warn(
                f"{source}: '{label}' peaks at {20 * math.log10(tally.peak):+.1f} dBFS, above "
                "full scale: it would clip once exported to a fixed-point file; measured as it is"
            )
    lengths = {label_of[label]: t.samples for label, t in tallies.items()}
    shortest, length_notes = trimmed_length(lengths, song.sample_rate, source, math.inf)
    if by_file and max(lengths.values()) - shortest > LENGTH_TOLERANCE_S * song.sample_rate:
        listing = ", ".join(f"{n} {k / song.sample_rate:.2f} s" for n, k in lengths.items())
        warn(
            f"{path}: stems differ in length ({listing}); "
            f"all trimmed to the shortest, {shortest / song.sample_rate:.2f} s"
        )
    elif not by_file:
        for note in length_notes:
            warn(note)
    song.n_samples = shortest
    song.levels = {stem: levels.trimmed(shortest) for stem, levels in meters.items()}


def _audio_files(
    folder: Path, warn: Callable[[str], None], chosen: set[str] = frozenset()
) -> tuple[list[Path], list[str]]:
    """The audio files of a song folder, and the whole mixes in it (not stems, not used
    unless ``chosen``, the lower-case names given to ``--stem``, names them).

    Files that are not audio and links to nothing are named in a warning."""
    files: list[Path] = []
    unsupported: list[str] = []
    mixes: list[str] = []
    dangling: list[str] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise CliError(
            f"{folder}: cannot list the folder ({exc.strerror}); check its permissions"
        ) from None
    for entry in entries:
        if entry.is_symlink() and not entry.exists():
            with contextlib.suppress(OSError):
                dangling.append(f"{entry.name} -> {os.readlink(entry)}")
            continue
        if entry.name.startswith(".") or not entry.is_file():
            continue
        if entry.suffix.lower() not in AUDIO_EXTENSIONS:
            unsupported.append(entry.name)
        elif is_mix_name(entry.stem) and entry.name.lower() not in chosen:
            mixes.append(entry.name)
        else:
            files.append(entry)
    if dangling:
        what = (
            "a link to a file that does not exist"
            if len(dangling) == 1
            else "links to files that do not exist"
        )
        warn(
            f"{folder}: skipped {', '.join(dangling)}: {what}; restore what it points to, "
            "or put the audio file itself in the folder"
        )
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
