"""Songs of any length in bounded memory: stems decoded block by block, measured as they pass.

``anchormix advise`` needs, per stem, its loudness over the whole song and its level in
every 100 ms frame (which windows to measure), then the audio of a few windows. The first
pass decodes each stem once and keeps only those figures (a few kilobytes a minute); the
second decodes again and keeps only the windows. Memory stays at a few blocks however long
the song is.

A stem is one or more sources (files, or a stream of an NI ``.stem.mp4``) summed, each
resampled to the song's rate and widened from mono to stereo where the others are stereo.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import soxr
from scipy.signal import sosfilt

from anchormix_kedro.instruction_data.audio import (
    SILENCE_LUFS,
    AudioError,
    _k_weighting_sos,
    frame_rms_db,
    gated_loudness,
    open_audio_streams,
)
from anchormix_kedro.instruction_data.excerpts import FRAME_S  # 100 ms: the BS.1770 hop too

#: Frames decoded and measured at a time: memory is a few of these, whatever the song's length.
BLOCK_FRAMES = 50


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class AudioSource:
    """One decodable audio stream: a file (``stream`` None) or one stream of a container.

    ``label`` names it in messages (a file name, or ``song.stem.mp4 stream 2``).
    """

    path: Path
    label: str
    sample_rate: int
    channels: int
    seconds: float  # from the header; the decoded length decides
    stream: int | None = None  # None: a file soundfile reads; else PyAV decodes this stream

    @property
    def seekable(self) -> bool:
        """Whether :meth:`read` can jump to a sample (files soundfile reads)."""
        return self.stream is None

    def read(self, begin: int, end: int) -> np.ndarray:
        """Samples ``[begin, end)`` at the source's own rate, read without decoding the rest."""
        try:
            with soundfile.SoundFile(os.fsencode(self.path)) as handle:
                handle.seek(begin)
                return handle.read(end - begin, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioError(
                f"{self.label}: corrupt or truncated audio ({exc}); re-export it"
            ) from exc

    def chunks(self) -> Iterator[np.ndarray]:
        """The audio as ``(samples, channels)`` float32 pieces, at its own rate."""
        if self.seekable:
            yield from _soundfile_chunks(self)
        else:
            yield from _av_chunks(self)


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Keep what C decoders print straight to file descriptor 2 (libmpg123's "Cannot read
    next header", FFmpeg's notes) off the terminal: the command's own message says it."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to keep quiet
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quietly(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """``blocks`` with the decoder kept quiet (:func:`native_stderr_silenced`) only while it
    decodes each block, so that a progress bar drawn between blocks still shows."""
    iterator = iter(blocks)
    try:
        while True:
            with native_stderr_silenced():
                block = next(iterator, None)
            if block is None:
                return
            yield block
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def probe_file(path: Path) -> AudioSource:
    """Rate, channels and duration of an audio file (soundfile, else PyAV's first stream)."""
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{path}: cannot be read (permission denied); make it readable")
    with native_stderr_silenced():
        try:
            info = soundfile.info(os.fsencode(path))
            if info.frames > 0 or path.suffix.lower() not in (".mp3", ".m4a"):
                return AudioSource(
                    path, path.name, int(info.samplerate), int(info.channels), info.duration
                )
        except (soundfile.LibsndfileError, RuntimeError):
            pass
        try:
            (source,) = probe_streams(path, {path.name: 0}, lambda name, index: path.name)
            return source
        except AudioError as exc:
            kind = path.suffix.lstrip(".").upper() or "audio"
            raise AudioError(
                f"{path}: not a readable {kind} file (unsupported or corrupt audio); "
                "re-export it, or move it out of the song folder"
            ) from exc


def probe_streams(
    path: Path, stream_ids: dict[str, int], label: Callable[[str, int], str]
) -> list[AudioSource]:
    """The named audio streams of a container (an NI ``.stem.mp4``), in the order asked."""
    container, streams = open_audio_streams(path, stream_ids)
    with container:
        sources = []
        for name, sid in stream_ids.items():
            stream = streams[sid]
            duration = (
                float(stream.duration * stream.time_base)
                if stream.duration is not None
                else (container.duration or 0) / 1e6
            )
            sources.append(
                AudioSource(
                    path,
                    label(name, sid),
                    int(stream.rate),
                    int(stream.codec_context.channels),
                    duration,
                    stream=sid,
                )
            )
    rates = sorted({s.sample_rate for s in sources})
    if len(rates) > 1:
        raise AudioError(f"{path}: streams have different sample rates {rates}")
    return sources


def _soundfile_chunks(source: AudioSource) -> Iterator[np.ndarray]:
    blocksize = max(1, int(round(FRAME_S * source.sample_rate))) * BLOCK_FRAMES
    try:
        with soundfile.SoundFile(os.fsencode(source.path)) as handle:
            while True:
                block = handle.read(blocksize, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block
    except (soundfile.LibsndfileError, RuntimeError) as exc:
        raise AudioError(
            f"{source.label}: corrupt or truncated audio ({exc}); re-export it"
        ) from exc


def _av_chunks(source: AudioSource) -> Iterator[np.ndarray]:
    import av

    def as_samples(frame) -> np.ndarray:
        data = frame.to_ndarray()
        if frame.format.is_planar:  # (channels, samples)
            data = data.T
        else:  # interleaved: (1, samples * channels)
            data = data.reshape(-1, source.channels)
        if np.issubdtype(data.dtype, np.integer):
            data = data / float(np.iinfo(data.dtype).max + 1)
        return np.ascontiguousarray(data, dtype=np.float32)

    try:
        with av.open(str(source.path)) as container:
            stream = container.streams.audio[source.stream]
            for packet in container.demux(stream):
                if packet.dts is None:
                    continue  # end-of-stream marker; the decoder is flushed below
                for frame in packet.decode():
                    yield as_samples(frame)
            for frame in stream.codec_context.decode(None):
                yield as_samples(frame)
    except av.error.FFmpegError as exc:
        raise AudioError(
            f"{source.path}: corrupt or truncated audio ({exc}); re-download the file"
        ) from exc


# --------------------------------------------------------------------------- blocks


def fixed_blocks(chunks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The same samples in blocks of ``size`` (the last may be shorter)."""
    pending: list[np.ndarray] = []
    held = 0
    for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held < size:
            continue
        joined = np.concatenate(pending)
        cut = len(joined) - len(joined) % size
        for start in range(0, cut, size):
            yield joined[start : start + size]
        pending, held = [joined[cut:]], len(joined) - cut
    if held:
        yield np.concatenate(pending)


def at_rate(chunks: Iterable[np.ndarray], source_rate: int, rate: int, channels: int):
    """Chunks resampled from ``source_rate`` to ``rate`` as they come (libsoxr's stream)."""
    if source_rate == rate:
        yield from chunks
        return
    stream = soxr.ResampleStream(source_rate, rate, channels, dtype="float32", quality="HQ")
    for chunk in chunks:
        out = stream.resample_chunk(chunk)
        if len(out):
            yield out
    tail = stream.resample_chunk(np.zeros((0, channels), np.float32), last=True)
    if len(tail):
        yield tail


@dataclass
class SourceTally:
    """What a pass learnt of one source: its decoded length, its non-finite samples and its
    peak (largest absolute finite sample; 1.0 is full scale)."""

    samples: int = 0
    non_finite: int = 0
    peak: float = 0.0


def stem_blocks(
    sources: Sequence[AudioSource],
    rate: int,
    width: int,
    tallies: dict[str, SourceTally],
    limit: int | None = None,
) -> Iterator[np.ndarray]:
    """A stem's audio, its sources summed, in blocks of :data:`BLOCK_FRAMES` frames.

    Each source is resampled to ``rate`` and a mono source duplicated to ``width``
    channels. The stem lasts as long as its shortest source, or ``limit`` samples. Every
    source is decoded to its end so that ``tallies`` (by label) hold their whole lengths;
    non-finite samples are counted and set to zero.
    """
    size = max(1, int(round(FRAME_S * rate))) * BLOCK_FRAMES
    iterators = [
        fixed_blocks(at_rate(s.chunks(), s.sample_rate, rate, s.channels), size) for s in sources
    ]
    for source in sources:
        tallies[source.label] = SourceTally()
    emitted = 0
    live = [True] * len(sources)
    summing = True
    while any(live):
        blocks = []
        for i, (source, iterator) in enumerate(zip(sources, iterators, strict=True)):
            block = next(iterator, None) if live[i] else None
            if block is None:
                live[i] = False
                summing = False
                continue
            tally = tallies[source.label]
            tally.samples += len(block)
            bad = ~np.isfinite(block)
            if bad.any():
                tally.non_finite += int(bad.sum())
                block = np.where(bad, np.float32(0.0), block)
            if len(block):
                tally.peak = max(tally.peak, float(np.abs(block).max()))
            if block.shape[1] == 1 and width == 2:
                block = np.repeat(block, 2, axis=1)
            blocks.append(block)
        if not summing or not blocks:
            continue  # a source ended: the others are only counted from here on
        length = min(len(b) for b in blocks)
        if limit is not None:
            length = min(length, limit - emitted)
        if length <= 0:
            summing = False
            continue
        total = blocks[0][:length].copy()
        for block in blocks[1:]:
            total += block[:length]
        emitted += length
        yield total
        if any(len(b) < size for b in blocks):
            summing = False  # the shortest source has ended within this block


# --------------------------------------------------------------------------- measuring


@dataclass
class StemLevels:
    """A stem's levels over the whole song, gathered block by block.

    ``frame_db``: RMS level (dBFS, channels averaged in power) of each whole 100 ms frame,
    as :func:`~anchormix_kedro.instruction_data.audio.frame_rms_db` gives it.
    ``frame_energy``: K-weighted energy of each frame, channels summed, and ``tail_energy``
    that of the samples after the last whole frame: the BS.1770 gating blocks (400 ms
    every 100 ms) are sums of four frames.
    """

    sample_rate: int
    n_samples: int = 0
    frame_db: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    frame_energy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tail_energy: float = 0.0

    @property
    def frame(self) -> int:
        return max(1, int(round(FRAME_S * self.sample_rate)))

    def trimmed(self, n_samples: int) -> StemLevels:
        """The levels of the first ``n_samples`` (stems trimmed to the shortest)."""
        if n_samples >= self.n_samples:
            return self
        whole, rest = divmod(n_samples, self.frame)
        partial = (
            self.frame_energy[whole] * rest / self.frame if whole < len(self.frame_energy) else 0.0
        )
        return StemLevels(
            self.sample_rate,
            n_samples,
            self.frame_db[:whole],
            self.frame_energy[:whole],
            float(partial),
        )

    def block_powers(self) -> np.ndarray:
        """K-weighted mean square of each gating block, as ``gating_block_powers`` gives it."""
        rate, n = self.sample_rate, self.n_samples
        block = int(round(0.4 * rate))
        if n < block:
            raise ValueError(
                f"need at least 0.4 s of audio to measure loudness, got {n / rate:.3f} s"
            )
        cumulative = np.concatenate([[0.0], np.cumsum(self.frame_energy)])
        n_blocks = int(np.round((n / rate - 0.4) / (0.4 * 0.25))) + 1
        lower = np.arange(n_blocks)
        upper = lower + 4
        whole = len(self.frame_energy)
        upper_energy = np.where(
            upper <= whole,
            cumulative[np.minimum(upper, whole)],
            cumulative[whole] + self.tail_energy,  # the last block ends with the song
        )
        return (upper_energy - cumulative[lower]) / block

    @property
    def loudness_lufs(self) -> float:
        """BS.1770 integrated loudness of the whole stem; ``SILENCE_LUFS`` for silence."""
        value = gated_loudness(self.block_powers())
        return value if math.isfinite(value) else SILENCE_LUFS


class LevelMeter:
    """Feeds blocks of one stem through the measurement, keeping the filter's state."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.levels = StemLevels(sample_rate)
        self._sos, gain = _k_weighting_sos(sample_rate)
        self._gain2 = gain**2
        self._state = np.zeros((len(self._sos), channels, 2))  # silence before the song
        self._frame_db: list[np.ndarray] = []
        self._energy: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        """Measure the next block ``(samples, channels)``; only the last may end mid-frame."""
        frame = self.levels.frame
        whole = len(block) // frame
        self._frame_db.append(
            frame_rms_db(block[: whole * frame], self.levels.sample_rate, FRAME_S)
        )
        channels = np.ascontiguousarray(block.T, dtype=np.float64)
        weighted, self._state = sosfilt(self._sos, channels, axis=-1, zi=self._state)
        energy = np.einsum("ij,ij->j", weighted, weighted) * self._gain2
        self._energy.append(energy[: whole * frame].reshape(whole, frame).sum(axis=1))
        self.levels.tail_energy = float(energy[whole * frame :].sum())
        self.levels.n_samples += len(block)

    def result(self) -> StemLevels:
        self.levels.frame_db = np.concatenate(self._frame_db or [np.zeros(0, np.float32)])
        self.levels.frame_energy = np.concatenate(self._energy or [np.zeros(0)])
        return self.levels


def seek_ranges(
    sources: Sequence[AudioSource], width: int, ranges: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], np.ndarray]:
    """Like :func:`read_ranges` on :func:`stem_blocks`, for sources at the song's rate that
    can seek: each range is read directly, the rest of the files is never decoded."""
    audio = {}
    for begin, end in set(ranges):
        total = np.zeros((end - begin, width), np.float32)
        for source in sources:
            piece = source.read(begin, end)
            total[: len(piece)] += piece if piece.shape[1] == width else np.repeat(piece, width, 1)
        audio[(begin, end)] = total
    return audio


def read_ranges(
    blocks: Iterable[np.ndarray], ranges: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], np.ndarray]:
    """The samples ``[begin, end)`` of each range, cut from a stem's blocks as they pass."""
    pieces: dict[tuple[int, int], list[np.ndarray]] = {r: [] for r in ranges}
    position = 0
    last = max((end for _, end in ranges), default=0)
    for block in blocks:
        stop = position + len(block)
        for begin, end in pieces:
            if begin < stop and end > position:
                pieces[(begin, end)].append(
                    block[max(begin, position) - position : min(end, stop) - position]
                )
        position = stop
        if position >= last:
            break
    return {r: np.concatenate(p) if p else np.zeros((0, 2), np.float32) for r, p in pieces.items()}
