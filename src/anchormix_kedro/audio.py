"""Audio I/O and measurement: decoding stems, BS.1770 loudness, resampling, activity.

Arrays are ``float32`` with shape ``(n_samples, n_channels)`` (soundfile's and
pyloudnorm's convention) unless a docstring says otherwise.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile
from scipy.signal import resample_poly

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

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sample_rate


# --------------------------------------------------------------------------- decoding


def decode_stem_mp4(path: str | Path, stream_ids: dict[str, int]) -> tuple[dict[str, np.ndarray], int]:
    """Decode the named audio streams of a Native Instruments ``.stem.mp4`` in one pass.

    Only the requested streams are decoded (the mixture is skipped unless asked for).
    Raises :class:`AudioError` naming the file for missing streams or corrupt data.
    """
    import av  # PyAV ships its own FFmpeg; imported lazily because it is heavy.

    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise AudioError(f"{path}: cannot open as a stem MP4 ({exc}); re-download or remove the file") from exc
    with container:
        audio_streams = list(container.streams.audio)
        missing = {name: sid for name, sid in stream_ids.items() if sid >= len(audio_streams)}
        if missing:
            raise AudioError(
                f"{path}: has {len(audio_streams)} audio streams, missing stem(s) "
                f"{', '.join(f'{n} (stream {s})' for n, s in missing.items())}; "
                "a MUSDB18 stem file has 5 (mixture, drums, bass, other, vocals)"
            )
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
            raise AudioError(f"{path}: corrupt or truncated audio ({exc}); re-download the file") from exc
    if len(set(rates.values())) > 1:
        raise AudioError(f"{path}: streams have different sample rates {sorted(set(rates.values()))}")
    decoded: dict[str, np.ndarray] = {}
    for name, sid in stream_ids.items():
        index = index_of[name]
        if not chunks[index]:
            raise AudioError(f"{path}: stream {sid} ({name}) holds no audio; the file is truncated or corrupt")
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
        raise AudioError(f"{source}: stems have different sample rates ({listing}); resample them to one rate")
    rate = distinct_rates[0]
    notes: list[str] = []
    channels = {n: d.shape[1] for n, d in stems.items()}
    widest = max(channels.values())
    aligned: dict[str, np.ndarray] = {}
    for name, data in stems.items():
        if data.shape[1] == 1 and widest == 2:
            notes.append(f"{source}: stem '{name}' is mono; duplicated to both channels")
            data = np.repeat(data, 2, axis=1)
        elif data.shape[1] != widest:
            raise AudioError(f"{source}: stem '{name}' has {data.shape[1]} channels, others {widest}")
        aligned[name] = data
    lengths = {n: d.shape[0] for n, d in aligned.items()}
    shortest, longest = min(lengths.values()), max(lengths.values())
    if longest != shortest:
        mismatch_s = (longest - shortest) / rate
        listing = ", ".join(f"{n} {length / rate:.2f} s" for n, length in lengths.items())
        if mismatch_s > max_length_mismatch_s:
            raise AudioError(
                f"{source}: stems differ in length by {mismatch_s:.2f} s ({listing}); "
                f"at most {max_length_mismatch_s} s is trimmed automatically"
            )
        notes.append(f"{source}: stems differ in length by {mismatch_s:.3f} s; trimmed to the shortest")
        aligned = {n: d[:shortest] for n, d in aligned.items()}
    return StemSet(stems=aligned, sample_rate=rate, warnings=tuple(notes))


# --------------------------------------------------------------------------- measuring


@lru_cache(maxsize=8)
def _meter(sample_rate: int) -> pyloudnorm.Meter:
    return pyloudnorm.Meter(sample_rate)


def integrated_loudness(data: np.ndarray, sample_rate: int) -> float:
    """ITU-R BS.1770-4 integrated loudness in LUFS (pyloudnorm), ``SILENCE_LUFS`` for silence.

    ``data`` is ``(samples,)`` or ``(samples, channels)``; it must be at least 0.4 s long
    (one gating block).
    """
    if data.shape[0] < int(0.4 * sample_rate):
        raise ValueError(f"need at least 0.4 s of audio to measure loudness, got {data.shape[0] / sample_rate:.3f} s")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyloudnorm warns on clipping-free silence
        value = float(_meter(sample_rate).integrated_loudness(data.astype(np.float64, copy=False)))
    return value if math.isfinite(value) else SILENCE_LUFS


def frame_rms_db(data: np.ndarray, sample_rate: int, frame_s: float = 0.1) -> np.ndarray:
    """RMS level in dBFS of consecutive non-overlapping frames (channels averaged in power)."""
    frame = max(1, int(round(frame_s * sample_rate)))
    n_frames = data.shape[0] // frame
    if n_frames == 0:
        return np.zeros(0, dtype=np.float32)
    power = np.square(data[: n_frames * frame], dtype=np.float32)
    if power.ndim == 2:
        power = power.mean(axis=1)
    mean_power = power.reshape(n_frames, frame).mean(axis=1)
    return (10.0 * np.log10(np.maximum(mean_power, 1e-12))).astype(np.float32)


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels of ``(samples, channels)`` into ``(samples,)``."""
    return data.mean(axis=1) if data.ndim == 2 else data


def resample(data: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling along the first axis (exact ratio, e.g. 44100 -> 16000 is 160/441)."""
    if source_rate == target_rate:
        return data.astype(np.float32, copy=False)
    ratio = Fraction(target_rate, source_rate)
    return resample_poly(data, ratio.numerator, ratio.denominator, axis=0).astype(np.float32)


def apply_gain_db(data: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale ``data`` by ``gain_db`` decibels."""
    return (data * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32, copy=False)


def db_to_text(value_db: float) -> str:
    """Signed dB with one decimal (``+3.5 dB``), for logs and cards."""
    return f"{value_db:+.1f} dB"


def sum_stems(stems: Sequence[np.ndarray]) -> np.ndarray:
    """Sum equally long stems into a mix."""
    return np.sum(np.stack(stems, axis=0), axis=0, dtype=np.float32)
