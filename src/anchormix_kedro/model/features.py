"""Log-mel features computed once per clip and reused across gains, epochs and runs.

Qwen2-Audio's Whisper feature extractor computes ``log10(max(mel_power, 1e-10))`` on the
clip zero-padded to its fixed length, clamps to ``max - 8`` and maps ``x -> (x + 4) / 4``.
A gain of ``g`` dB multiplies the mel power by ``10 ** (g / 10)``, i.e. adds ``g / 10`` to
the log10 power. So the cache stores the clip's raw log10 mel power once (the padding's
frames are exactly the floor and are not stored) and :func:`features_for_clip` applies
the gain, the floor, the padding, the clamp and the scaling: the same numbers as running
the extractor on the gain-scaled clip, at a fraction of the cost.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from transformers import WhisperFeatureExtractor

LOG_FLOOR = -10.0  # log10 of the extractor's 1e-10 floor
_STORE_FLOOR = 1e-20  # below anything audible; keeps gains exact for real content


def valid_frames(n_samples: int, hop_length: int) -> int:
    """Mel frames the extractor marks valid for a clip of ``n_samples`` (its attention mask)."""
    return math.ceil(n_samples / hop_length)


def audio_token_count(frames: int) -> int:
    """Audio tokens Qwen2-Audio inserts for ``frames`` valid mel frames (conv stride, pooling)."""
    return (((frames - 1) // 2 + 1) - 2) // 2 + 1


def raw_log_mel(clip: np.ndarray, extractor: WhisperFeatureExtractor) -> np.ndarray:
    """``(n_mels, frames)`` float32 log10 mel power of a 16 kHz clip, as the extractor sees it.

    The clip is truncated to the extractor's window (``chunk_length`` seconds) and padded
    with zeros like the extractor does; only the frames that see the clip are kept (the
    rest are exactly the floor). Zeros beyond two FFT windows past the clip do not change
    those frames, so the padding stops there.
    """
    clip = np.asarray(clip, dtype=np.float32)[: extractor.n_samples]
    kept = min(valid_frames(len(clip), extractor.hop_length) + 2, extractor.nb_max_frames)
    padded = np.zeros(min(len(clip) + 2 * extractor.n_fft, extractor.n_samples), dtype=np.float32)
    padded[: len(clip)] = clip
    waveform = torch.from_numpy(padded)
    window = torch.hann_window(extractor.n_fft)
    stft = torch.stft(
        waveform, extractor.n_fft, extractor.hop_length, window=window, return_complex=True
    )
    power = (stft[..., :-1].abs() ** 2).contiguous()
    mel = torch.from_numpy(extractor.mel_filters).to(torch.float32).T @ power
    log_mel = torch.clamp(mel, min=_STORE_FLOOR).log10()
    return log_mel[:, :kept].numpy().astype(np.float32)


def log_mel_record(
    clips: dict[str, np.ndarray], extractor: WhisperFeatureExtractor, **meta
) -> dict:
    """The cache's record for some 16 kHz clips: raw log-mel frames and valid frame counts."""
    return {
        "meta": {
            **meta,
            "valid_frames": {
                name: valid_frames(len(c), extractor.hop_length) for name, c in clips.items()
            },
        },
        "audio": {name: raw_log_mel(c, extractor) for name, c in clips.items()},
    }


def clip_level_db(raw: np.ndarray, frames: int) -> float:
    """Level (dB) of a cached clip's first ``frames`` frames: 10 log10 of its mean mel power.

    A gain of ``g`` dB moves it by exactly ``g`` (floor frames aside), which is all the
    anchor's levelling needs of it.
    """
    heard = raw[:, : max(1, frames)].astype(np.float64)
    return float(10.0 * np.log10(np.mean(np.power(10.0, heard))))


def equalisation_curve_db(
    n_mels: int, tilt_db: float, bell_db: float, bell_at: float
) -> np.ndarray:
    """``(n_mels,)`` dB an EQ adds to each mel band: a centred tilt from the lowest band to
    the highest plus a Gaussian bell an eighth of the bands wide (one standard deviation)."""
    position = np.linspace(0.0, 1.0, n_mels)
    bell = np.exp(-0.5 * ((position - bell_at) / 0.125) ** 2)
    return (tilt_db * (position - 0.5) + bell_db * bell).astype(np.float32)


def features_for_clip(raw: np.ndarray, gain_db: float, n_frames: int) -> np.ndarray:
    """Model input features ``(n_mels, n_frames)`` of a cached clip played at ``gain_db``."""
    shifted = np.maximum(raw[:, :n_frames] + np.float32(gain_db / 10.0), LOG_FLOOR)
    log_spec = np.full((raw.shape[0], n_frames), LOG_FLOOR, dtype=np.float32)
    log_spec[:, : shifted.shape[1]] = shifted
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def concatenate_raw(
    first: np.ndarray, first_frames: int, second: np.ndarray, gap_frames: int, second_gain_db: float
) -> np.ndarray:
    """One clip made of two (the single-clip formulation): first, a silent gap, then second.

    Works on cached frames (``first_frames`` valid frames of the first clip), so the few
    frames at the junction differ slightly from extracting the joined waveform.
    """
    gap = np.full((first.shape[0], gap_frames), math.log10(_STORE_FLOOR), dtype=np.float32)
    return np.concatenate(
        [first[:, :first_frames], gap, second + np.float32(second_gain_db / 10.0)], axis=1
    )
