"""Audio I/O and measurement against known signals (EBU Tech 3341 / ITU-R BS.1770)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anchormix_kedro.instruction_data.audio import (
    SILENCE_LUFS,
    AudioError,
    align_stems,
    apply_gain_db,
    check_finite,
    decode_stem_mp4,
    frame_rms_db,
    integrated_loudness,
    read_audio_file,
    resample,
    stem_width,
)
from anchormix_kedro.instruction_data.musdb import MUSDB_STREAM_IDS
from conftest import RATE, tone, tone_stems, write_stem_mp4


def _peak(dbfs: float) -> float:
    return 10 ** (dbfs / 20)


@pytest.mark.parametrize("level_dbfs", [-23.0, -33.0])
def test_loudness_of_stereo_1k_sine_matches_tech_3341(level_dbfs):
    # EBU Tech 3341 cases 1 and 2: a stereo 1 kHz sine at L dBFS measures L LUFS (±0.1).
    assert integrated_loudness(tone(1000.0, 20.0, _peak(level_dbfs)), RATE) == pytest.approx(
        level_dbfs, abs=0.1
    )


def test_loudness_gating_ignores_quiet_parts_like_tech_3341_case_3():
    # -36 dBFS for 10 s, -23 dBFS for 60 s, -36 dBFS for 10 s: the relative gate leaves -23 LUFS.
    quiet, loud = tone(1000.0, 10.0, _peak(-36.0)), tone(1000.0, 60.0, _peak(-23.0))
    signal = np.concatenate([quiet, loud, quiet])
    assert integrated_loudness(signal, RATE) == pytest.approx(-23.0, abs=0.1)


def test_loudness_follows_gain_exactly_and_silence_is_finite():
    base = tone(440.0, 5.0, 0.1)
    assert integrated_loudness(apply_gain_db(base, 6.0), RATE) - integrated_loudness(
        base, RATE
    ) == pytest.approx(6.0, abs=0.01)
    assert integrated_loudness(np.zeros((RATE * 2, 2), np.float32), RATE) == SILENCE_LUFS


def test_loudness_refuses_clips_shorter_than_one_gating_block():
    with pytest.raises(ValueError, match="at least 0.4 s"):
        integrated_loudness(tone(1000.0, 0.2, 0.1), RATE)


def test_frame_rms_of_full_scale_sine_is_minus_3_dbfs():
    levels = frame_rms_db(tone(1000.0, 1.0, 1.0), RATE, 0.1)
    assert len(levels) == 10
    assert np.allclose(levels, -3.01, atol=0.05)


def test_resample_keeps_duration_and_tone():
    clip = tone(440.0, 2.0, 0.5)[:, 0]
    out = resample(clip, RATE, 16000)
    assert out.shape == (32000,) and out.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(out))
    assert np.fft.rfftfreq(len(out), 1 / 16000)[np.argmax(spectrum)] == pytest.approx(
        440.0, abs=1.0
    )


def test_align_stems_rejects_different_sample_rates_naming_them():
    stems = tone_stems(1.0)
    rates = {name: RATE for name in stems} | {"bass": 48000}
    with pytest.raises(AudioError, match="bass 48000 Hz"):
        align_stems(stems, rates, "song-x", 0.5)


def test_align_stems_trims_small_length_differences_and_rejects_large_ones():
    stems = tone_stems(2.0)
    stems["vocals"] = stems["vocals"][: -RATE // 10]  # 0.1 s shorter
    aligned = align_stems(stems, dict.fromkeys(stems, RATE), "song-x", 0.5)
    assert {a.shape[0] for a in aligned.stems.values()} == {2 * RATE - RATE // 10}
    assert any("differ in length" in w for w in aligned.warnings)
    stems["vocals"] = stems["vocals"][:RATE]
    with pytest.raises(
        AudioError, match=r"song-x: stems differ in length by 1\.00 s \(drums 2\.00 s"
    ):
        align_stems(stems, dict.fromkeys(stems, RATE), "song-x", 0.5)


def test_align_stems_duplicates_a_mono_stem_to_stereo():
    stems = tone_stems(1.0)
    stems["bass"] = stems["bass"][:, :1]
    aligned = align_stems(stems, dict.fromkeys(stems, RATE), "song-x", 0.5)
    assert aligned.stems["bass"].shape[1] == 2
    assert np.array_equal(aligned.stems["bass"][:, 0], aligned.stems["bass"][:, 1])
    assert any("'bass' is mono" in w for w in aligned.warnings)


def test_check_finite_names_the_stem_and_count():
    stems = tone_stems(1.0)
    stems["other"][10:13, 0] = [np.nan, np.inf, -np.inf]
    with pytest.raises(AudioError, match="stem 'other' holds 3 NaN or infinite samples"):
        check_finite(stems, "song-x")


def test_decode_stem_mp4_returns_requested_streams_only(tmp_path):
    path = write_stem_mp4(tmp_path / "song.stem.mp4", tone_stems(1.5))
    decoded, rate = decode_stem_mp4(path, {s: MUSDB_STREAM_IDS[s] for s in ("drums", "vocals")})
    assert rate == RATE and set(decoded) == {"drums", "vocals"}
    assert decoded["drums"].shape[1] == 2 and decoded["drums"].shape[0] >= int(1.5 * RATE)
    # AAC is lossy but the level survives: drums were written at 0.2 peak, vocals at 0.1.
    assert integrated_loudness(decoded["drums"], rate) - integrated_loudness(
        decoded["vocals"], rate
    ) == pytest.approx(
        integrated_loudness(tone(110.0, 1.5, 0.2), RATE)
        - integrated_loudness(tone(330.0, 1.5, 0.1), RATE),
        abs=0.3,
    )


def test_decode_stem_mp4_names_missing_streams(tmp_path):
    path = write_stem_mp4(tmp_path / "song.stem.mp4", tone_stems(1.0))
    with pytest.raises(
        AudioError, match=r"has 5 audio streams, missing stem\(s\) extra \(stream 7\)"
    ):
        decode_stem_mp4(path, {"extra": 7})


def test_corrupt_and_truncated_stem_mp4_raise_audio_error_naming_the_file(tmp_path):
    garbage = tmp_path / "garbage.stem.mp4"
    garbage.write_bytes(b"\x00not an mp4" * 100)
    with pytest.raises(AudioError, match="garbage.stem.mp4"):
        decode_stem_mp4(garbage, {"drums": 1})
    good = write_stem_mp4(tmp_path / "good.stem.mp4", tone_stems(2.0)).read_bytes()
    truncated = tmp_path / "truncated.stem.mp4"
    truncated.write_bytes(good[: len(good) // 3])
    with pytest.raises(AudioError, match="truncated.stem.mp4"):
        decode_stem_mp4(
            truncated, {s: MUSDB_STREAM_IDS[s] for s in ("drums", "bass", "other", "vocals")}
        )


def test_read_audio_file_reports_unsupported_files(tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is text")
    with pytest.raises(AudioError, match="notes.wav: unsupported or corrupt audio file"):
        read_audio_file(bogus)
    with pytest.raises(AudioError, match="file not found"):
        read_audio_file(tmp_path / "missing.wav")


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_vectorised_loudness_agrees_with_pyloudnorm(rate):
    import pyloudnorm

    rng = np.random.default_rng(rate)
    # Music-like: noise bursts with pauses and a level ramp, so both gates matter.
    n = int(7.3 * rate)
    envelope = np.repeat(rng.uniform(0.0, 1.0, size=n // (rate // 4) + 1), rate // 4)[:n]
    envelope[int(2 * rate) : int(3 * rate)] = 1e-4
    signal = (rng.standard_normal((n, 2)) * envelope[:, None] * 0.2).astype(np.float32)
    reference = pyloudnorm.Meter(rate).integrated_loudness(signal.astype(np.float64))
    assert integrated_loudness(signal, rate) == pytest.approx(reference, abs=1e-6)
    assert integrated_loudness(signal[:, 0], rate) == pytest.approx(
        pyloudnorm.Meter(rate).integrated_loudness(signal[:, 0].astype(np.float64)), abs=1e-6
    )


def test_the_odd_stem_is_blamed_for_its_channels_and_a_truncated_stem_by_name():
    stems = tone_stems(1.0)
    stems["vocals"] = np.concatenate([stems["vocals"], stems["vocals"][:, :1]], axis=1)
    with pytest.raises(
        AudioError, match=r"stem 'vocals' has 3 channels, while bass, drums, other have 2"
    ):
        align_stems(stems, dict.fromkeys(stems, RATE), "song-x", math.inf)
    stems = tone_stems(1.0)
    stems["bass"] = stems["bass"][:1]
    with pytest.raises(AudioError, match=r"song-x: stem 'bass' 0\.00 s is less than half"):
        align_stems(stems, dict.fromkeys(stems, RATE), "song-x", math.inf)


def test_a_wide_stem_is_blamed_rather_than_a_mono_one():
    with pytest.raises(AudioError, match=r"stem 'vocals' has 6 channels, while drums has 1"):
        stem_width({"drums": 1, "vocals": 6}, "song-y")
    with pytest.raises(AudioError, match=r"stem 'other' has 6 channels, while bass, drums have 2"):
        stem_width({"drums": 2, "bass": 2, "other": 6, "vocals": 1}, "song-y")
    assert stem_width({"drums": 6, "bass": 6}, "song-y") == (6, [])
