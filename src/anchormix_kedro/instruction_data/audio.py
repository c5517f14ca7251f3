"""Audio I/O and measurement: decoding stems, BS.1770 loudness, resampling, activity.

Arrays are ``float32`` with shape ``(n_samples, n_channels)`` (soundfile's and
pyloudnorm's convention) unless a docstring says otherwise.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile
import soxr
from scipy.signal import sosfilt

#: Loudness reported for digital silence (pyloudnorm returns -inf, which no table likes).
SILENCE_LUFS = -120.0


class AudioError(ValueError):
    """A file that cannot be used as a stem; the message names the file and what to do."""


@dataclass(frozen=True)
class StemSet:
    """Aligned stems of one song: ``{stem name: (n_samples, n_channels) float32}``."""

    stems: dict[str, np.ndarray]
    sample_rate: int
    warnings: tuple[str, ...] = ()

    @property
    def n_samples(self) -> int:
        return next(iter(self.stems.values())).shape[0] if self.stems else 0


# --------------------------------------------------------------------------- decoding


def open_audio_streams(path: Path, stream_ids: dict[str, int]) -> tuple:
    """Open a container (an NI ``.stem.mp4``) that must hold the named audio streams:
    ``(container, its audio streams)``; the caller closes the container."""
    import av  # PyAV ships its own FFmpeg; imported lazily because it is heavy.

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise AudioError(
            f"{path}: cannot open as a stem MP4 ({exc}); re-download or remove the file"
        ) from exc
    audio_streams = list(container.streams.audio)
    missing = {name: sid for name, sid in stream_ids.items() if sid >= len(audio_streams)}
    if missing:
        container.close()
        raise AudioError(
            f"{path}: has {len(audio_streams)} audio streams, missing stem(s) "
            f"{', '.join(f'{n} (stream {s})' for n, s in missing.items())}; "
            "a MUSDB18 stem file has 5 (mixture, drums, bass, other, vocals)"
        )
    return container, audio_streams


def decode_stem_mp4(
    path: str | Path, stream_ids: dict[str, int]
) -> tuple[dict[str, np.ndarray], int]:
    """Decode the named audio streams of a Native Instruments ``.stem.mp4`` in one pass.

    Only the requested streams are decoded (the mixture is skipped unless asked for).
    Raises :class:`AudioError` naming the file for missing streams or corrupt data.
    """
    import av

    path = Path(path)
    container, audio_streams = open_audio_streams(path, stream_ids)
    with container:
        wanted = [audio_streams[sid] for sid in stream_ids.values()]
        # Stream objects are invalid once the container closes: keep plain indices.
        index_of = {name: audio_streams[sid].index for name, sid in stream_ids.items()}
        rates = {s.index: s.rate for s in wanted}
        chunks: dict[int, list[np.ndarray]] = {s.index: [] for s in wanted}
        try:
            for packet in container.demux(wanted):
                if packet.dts is None:
                    continue  # end-of-stream marker; decoders are flushed below
                for frame in packet.decode():
                    chunks[packet.stream.index].append(frame.to_ndarray())
            for stream in wanted:
                for frame in stream.codec_context.decode(None):
                    chunks[stream.index].append(frame.to_ndarray())
        except av.error.FFmpegError as exc:
            raise AudioError(
                f"{path}: corrupt or truncated audio ({exc}); re-download the file"
            ) from exc
    if len(set(rates.values())) > 1:
        raise AudioError(
            f"{path}: streams have different sample rates {sorted(set(rates.values()))}"
        )
    decoded: dict[str, np.ndarray] = {}
    for name, sid in stream_ids.items():
        index = index_of[name]
        if not chunks[index]:
            raise AudioError(
                f"{path}: stream {sid} ({name}) holds no audio; the file is truncated or corrupt"
            )
        planar = np.concatenate(chunks[index], axis=1)  # PyAV gives (channels, samples)
        decoded[name] = np.ascontiguousarray(planar.T, dtype=np.float32)
    return decoded, int(next(iter(rates.values())))


def read_audio_file(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a wav/flac/ogg (soundfile) or mp3/m4a (PyAV) file as ``(samples, channels)``."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: file not found")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return data, int(rate)
    except (soundfile.LibsndfileError, RuntimeError) as sf_exc:
        try:
            decoded, rate = _decode_first_stream(path)
            return decoded, rate
        except AudioError:
            raise AudioError(
                f"{path}: unsupported or corrupt audio file ({sf_exc}); use wav, flac, ogg or mp3"
            ) from sf_exc


def _decode_first_stream(path: Path) -> tuple[np.ndarray, int]:
    decoded, rate = decode_stem_mp4(path, {"audio": 0})
    return decoded["audio"], rate


# --------------------------------------------------------------------------- checks


def check_finite(stems: dict[str, np.ndarray], source: str) -> None:
    """Raise :class:`AudioError` if any stem holds NaN or infinite samples."""
    for name, data in stems.items():
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise AudioError(
                f"{source}: stem '{name}' holds {bad} NaN or infinite samples; "
                "re-export the stem or remove the song"
            )


def align_stems(
    stems: dict[str, np.ndarray],
    rates: dict[str, int],
    source: str,
    max_length_mismatch_s: float,
) -> StemSet:
    """Check and align stems decoded from separate files.

    - different sample rates: :class:`AudioError` (a curated multitrack never has them);
    - mono stems are duplicated to stereo (so BS.1770 weighs them like the others), with a warning;
    - lengths differing by at most ``max_length_mismatch_s`` are trimmed to the shortest
      with a warning; larger differences raise :class:`AudioError`.
    """
    distinct_rates = sorted(set(rates.values()))
    if len(distinct_rates) > 1:
        listing = ", ".join(f"{n} {r} Hz" for n, r in rates.items())
        raise AudioError(
            f"{source}: stems have different sample rates ({listing}); resample them to one rate"
        )
    rate = distinct_rates[0]
    width, notes = stem_width({n: d.shape[1] for n, d in stems.items()}, source)
    aligned = {
        name: np.repeat(data, 2, axis=1) if data.shape[1] < width else data
        for name, data in stems.items()
    }
    shortest, length_notes = trimmed_length(
        {n: d.shape[0] for n, d in aligned.items()}, rate, source, max_length_mismatch_s
    )
    notes.extend(length_notes)
    aligned = {n: d[:shortest] for n, d in aligned.items()}
    return StemSet(stems=aligned, sample_rate=rate, warnings=tuple(notes))


def stem_width(channels: dict[str, int], source: str) -> tuple[int, list[str]]:
    """The channel count every stem is given, and notes on the mono stems widened to it.

    The stems' usual width is the most common one (stereo wins a tie): a stem of another
    width is the one blamed, except a mono stem among stereo ones, which is duplicated.
    When widths differ, a stem wider than stereo is always the one blamed: a mono stem
    beside a 6-channel one is not at fault.
    """
    counts = Counter(channels.values())
    usual = max(counts, key=lambda width: (counts[width], width == 2, width))
    if usual > 2 and len(counts) > 1 and min(counts) <= 2:
        usual = max(width for width in counts if width <= 2)
    if usual == 1 and 2 in counts:
        usual = 2  # mono stems among stereo ones are duplicated, never the other way
    notes = []
    for name, width in channels.items():
        if width == 1 and usual == 2:
            notes.append(f"{source}: stem '{name}' is mono; duplicated to both channels")
        elif width != usual:
            others = sorted(n for n in channels if n != name and channels[n] == usual)
            raise AudioError(
                f"{source}: stem '{name}' has {width} channels, while "
                f"{', '.join(others)} {'has' if len(others) == 1 else 'have'} {usual}; "
                "export it as mono or stereo"
            )
    return usual, notes


def trimmed_length(
    lengths: dict[str, int], rate: int, source: str, max_length_mismatch_s: float
) -> tuple[int, list[str]]:
    """The length (samples) every stem is trimmed to, and a note when they differed.

    A stem under half the longest looks truncated and is blamed, rather than trimming every
    other stem to it; differences over ``max_length_mismatch_s`` raise.
    """
    shortest, longest = min(lengths.values()), max(lengths.values())
    truncated = sorted(n for n, length in lengths.items() if length < longest / 2)
    if truncated:
        listing = ", ".join(f"'{n}' {lengths[n] / rate:.2f} s" for n in truncated)
        raise AudioError(
            f"{source}: stem {listing} is less than half as long as the longest "
            f"({longest / rate:.2f} s): it looks truncated; re-export it"
        )
    if longest == shortest:
        return shortest, []
    mismatch_s = (longest - shortest) / rate
    listing = ", ".join(f"{n} {length / rate:.2f} s" for n, length in lengths.items())
    if mismatch_s > max_length_mismatch_s:
        raise AudioError(
            f"{source}: stems differ in length by {mismatch_s:.2f} s ({listing}); "
            f"at most {max_length_mismatch_s} s is trimmed automatically"
        )
    return shortest, [
        f"{source}: stems differ in length by {mismatch_s:.3f} s; trimmed to the shortest"
    ]


# --------------------------------------------------------------------------- measuring


@lru_cache(maxsize=8)
def _k_weighting_sos(sample_rate: int) -> tuple[np.ndarray, float]:
    """pyloudnorm's BS.1770 K-weighting (shelf + high-pass) as one second-order-section cascade."""
    meter = pyloudnorm.Meter(sample_rate)  # the reference implementation's own filter design
    sections, gain = [], 1.0
    for stage in meter._filters.values():
        sections.append(np.concatenate([stage.b, stage.a]))
        gain *= stage.passband_gain
    return np.array(sections), gain


def gating_block_powers(data: np.ndarray, sample_rate: int) -> np.ndarray:
    """K-weighted mean square of each BS.1770 gating block (400 ms, every 100 ms), channels summed.

    Same filters (pyloudnorm's own design) and block boundaries as
    ``pyloudnorm.Meter.integrated_loudness``; vectorised, where pyloudnorm loops over blocks
    in Python. ``data`` is ``(samples,)`` or ``(samples, channels)`` with up to two channels
    (L, R: channel weights 1.0), at least 0.4 s long.
    """
    block = int(round(0.4 * sample_rate))
    if data.shape[0] < block:
        raise ValueError(
            f"need at least 0.4 s of audio to measure loudness, got {data.shape[0] / sample_rate:.3f} s"
        )
    # Channels as contiguous rows: filtering and summing along rows is several times faster.
    channels = np.ascontiguousarray(data.reshape(data.shape[0], -1).T, dtype=np.float64)
    sos, gain = _k_weighting_sos(sample_rate)
    weighted = sosfilt(sos, channels, axis=-1)
    # All channel weights are 1.0, so the channels' mean squares can be summed sample-wise first.
    energy = np.einsum("ij,ij->j", weighted, weighted) * gain**2
    cumulative = np.concatenate([[0.0], np.cumsum(energy)])
    n_samples = channels.shape[1]
    n_blocks = int(np.round((n_samples / sample_rate - 0.4) / (0.4 * 0.25))) + 1
    steps = np.arange(n_blocks) * 0.25
    lower = (0.4 * steps * sample_rate).astype(np.int64)
    upper = np.minimum((0.4 * (steps + 1) * sample_rate).astype(np.int64), n_samples)
    return (cumulative[upper] - cumulative[lower]) / block


def gated_loudness(block_powers: np.ndarray, gain: float = 1.0) -> float:
    """BS.1770 integrated loudness (LUFS) from gating block powers, of the audio scaled by ``gain``.

    Applies the absolute (-70 LUFS) and relative (-10 LU) gates; ``-inf`` when nothing passes.
    Scaling the block powers instead of the audio lets callers solve for a gain cheaply.
    """
    power = block_powers * gain**2
    with np.errstate(divide="ignore"):
        block_loudness = -0.691 + 10.0 * np.log10(power)
    above_absolute = block_loudness >= -70.0
    if not above_absolute.any():
        return -math.inf
    relative_gate = -0.691 + 10.0 * np.log10(power[above_absolute].mean()) - 10.0
    gated = power[(block_loudness > relative_gate) & above_absolute]
    if gated.size == 0:
        return -math.inf
    return float(-0.691 + 10.0 * np.log10(gated.mean()))


def integrated_loudness(data: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS, ``SILENCE_LUFS`` for silence.

    Agrees with ``pyloudnorm.Meter(sample_rate).integrated_loudness`` (the tests check it)
    and is about ten times faster.
    """
    value = gated_loudness(gating_block_powers(data, sample_rate))
    return value if math.isfinite(value) else SILENCE_LUFS


def frame_rms_db(data: np.ndarray, sample_rate: int, frame_s: float = 0.1) -> np.ndarray:
    """RMS level in dBFS of consecutive non-overlapping frames (channels averaged in power)."""
    frame = max(1, int(round(frame_s * sample_rate)))
    n_frames = data.shape[0] // frame
    if n_frames == 0:
        return np.zeros(0, dtype=np.float32)
    # (samples, channels) in C order: each frame's samples of all channels are one contiguous row.
    rows = np.ascontiguousarray(data[: n_frames * frame]).reshape(n_frames, -1)
    mean_power = np.einsum("ij,ij->i", rows, rows, dtype=np.float64) / rows.shape[1]
    return (10.0 * np.log10(np.maximum(mean_power, 1e-12))).astype(np.float32)


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels of ``(samples, channels)`` into ``(samples,)``."""
    if data.ndim == 1:
        return data
    return data @ np.full(
        data.shape[1], 1.0 / data.shape[1], dtype=data.dtype
    )  # BLAS: faster than mean(axis=1)


def resample(data: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """High-quality resampling along the first axis (libsoxr, several times faster than polyphase)."""
    if source_rate == target_rate:
        return data.astype(np.float32, copy=False)
    return soxr.resample(
        np.ascontiguousarray(data, dtype=np.float32), source_rate, target_rate, quality="HQ"
    )


def apply_gain_db(data: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale ``data`` by ``gain_db`` decibels."""
    return (data * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32, copy=False)
