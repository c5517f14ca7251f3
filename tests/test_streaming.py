"""`anchormix advise` on songs of any length: stems streamed block by block, measured as they
pass, with the same figures as measuring the whole song at once, in bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile

from anchormix_kedro import commands as cli
from anchormix_kedro.advise.songs import load_song
from anchormix_kedro.advise.streaming import (
    BLOCK_FRAMES,
    LevelMeter,
    fixed_blocks,
    probe_file,
    read_ranges,
    stem_blocks,
)
from anchormix_kedro.instruction_data.audio import frame_rms_db, integrated_loudness, resample

RATE = 22050


def noise_song(seconds: float, channels: int = 2, seed: int = 0) -> np.ndarray:
    """Noise with loud and quiet passages (so the BS.1770 gates have work to do)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    envelope = np.repeat(rng.uniform(0.001, 0.5, size=n // RATE + 1), RATE)[:n]
    return (rng.standard_normal((n, channels)) * envelope[:, None]).astype(np.float32)


def measured(audio: np.ndarray, block: int):
    meter = LevelMeter(RATE, audio.shape[1])
    for start in range(0, len(audio), block):
        meter.add(audio[start : start + block])
    return meter.result()


@pytest.mark.parametrize("channels", [1, 2])
def test_levels_measured_block_by_block_equal_the_whole_song_at_once(channels):
    audio = noise_song(23.37, channels)
    levels = measured(audio, int(0.1 * RATE) * 7)
    assert levels.n_samples == len(audio)
    assert levels.loudness_lufs == pytest.approx(integrated_loudness(audio, RATE), abs=1e-6)
    np.testing.assert_allclose(levels.frame_db, frame_rms_db(audio, RATE, 0.1), atol=1e-4)
    # Trimmed to a shorter length (stems of unequal length): the prefix's figures.
    prefix = audio[: int(17.53 * RATE)]
    trimmed = levels.trimmed(len(prefix))
    assert trimmed.loudness_lufs == pytest.approx(integrated_loudness(prefix, RATE), abs=1e-3)
    np.testing.assert_allclose(trimmed.frame_db, frame_rms_db(prefix, RATE, 0.1), atol=1e-4)


def test_silence_measures_as_silence():
    assert measured(np.zeros((RATE, 2), np.float32), 2205).loudness_lufs == -120.0


def test_blocks_and_ranges_keep_every_sample_in_place():
    audio = np.arange(10_000, dtype=np.float32).reshape(-1, 1)
    pieces = [audio[:13], audio[13:2000], audio[2000:2001], audio[2001:]]
    blocks = list(fixed_blocks(pieces, 512))
    assert all(len(b) == 512 for b in blocks[:-1]) and len(blocks[-1]) == 10_000 % 512
    np.testing.assert_array_equal(np.concatenate(blocks), audio)
    ranges = [(0, 10), (500, 1030), (9_990, 10_000), (500, 1030)]
    cut = read_ranges(iter(blocks), ranges)
    for begin, end in ranges:
        np.testing.assert_array_equal(cut[(begin, end)], audio[begin:end])


def test_a_stem_sums_its_files_at_the_song_rate_widened_to_stereo(tmp_path):
    kick = noise_song(8.0, channels=1, seed=1)
    snare = noise_song(7.5, channels=2, seed=2)  # shorter: the stem ends with it
    soundfile.write(str(tmp_path / "kick.wav"), resample(kick, RATE, 16000), 16000, subtype="FLOAT")
    soundfile.write(str(tmp_path / "snare.wav"), snare, RATE, subtype="FLOAT")
    sources = [probe_file(tmp_path / "kick.wav"), probe_file(tmp_path / "snare.wav")]
    assert [(s.sample_rate, s.channels) for s in sources] == [(16000, 1), (RATE, 2)]
    tallies = {}
    blocks = list(stem_blocks(sources, RATE, 2, tallies))
    assert [len(b) for b in blocks[:-1]] == [int(0.1 * RATE) * BLOCK_FRAMES]
    summed = np.concatenate(blocks)
    assert summed.shape == (len(snare), 2)
    # Every source decoded to its end, so its whole length is known.
    assert tallies["kick.wav"].samples == pytest.approx(len(kick), abs=2)
    expected = snare + resample(resample(kick, RATE, 16000), 16000, RATE)[: len(snare)]
    np.testing.assert_allclose(summed, expected, atol=1e-6)  # streamed resampling is exact


def test_windows_read_by_seeking_equal_windows_cut_from_the_stream(tmp_path):
    folder = tmp_path / "song"
    folder.mkdir()
    soundfile.write(str(folder / "drums.wav"), noise_song(12.0, seed=1), RATE)
    soundfile.write(str(folder / "kick.wav"), noise_song(12.0, channels=1, seed=2), RATE)
    soundfile.write(str(folder / "bass.wav"), noise_song(12.0, seed=3), RATE)
    song = load_song(folder, warn=lambda message: None)
    ranges = [(0, RATE), (int(5.3 * RATE), int(11.9 * RATE))]
    sought = song.read_windows({"drums": ranges})["drums"]
    streamed = read_ranges(stem_blocks(song.streams["drums"], RATE, 2, {}), ranges)
    assert song.sources["drums"] == ["drums.wav", "kick.wav"]
    for window in ranges:
        np.testing.assert_array_equal(sought[window], streamed[window])


def test_non_finite_samples_are_counted_and_named(tmp_path, capsys):
    folder = tmp_path / "song"
    folder.mkdir()
    for stem in ("drums", "bass"):
        audio = noise_song(2.0, seed=len(stem))
        if stem == "bass":
            audio[100:103] = np.nan
        soundfile.write(str(folder / f"{stem}.wav"), audio, RATE, subtype="FLOAT")
    assert cli.main(["advise", str(folder), "--json"]) != 0
    err = capsys.readouterr().err
    assert "stem 'bass.wav' holds 6 NaN or infinite samples" in err


def test_a_truncated_file_is_blamed_by_name_not_trimmed_to(tmp_path, capsys):
    folder = tmp_path / "song"
    folder.mkdir()
    for stem in ("drums", "bass", "vocals"):
        audio = noise_song(3.0, seed=len(stem))
        soundfile.write(str(folder / f"{stem}.wav"), audio[:1] if stem == "vocals" else audio, RATE)
    assert cli.main(["advise", str(folder), "--json"]) != 0
    err = capsys.readouterr().err
    assert "stem 'vocals.wav' 0.00 s is less than half as long as the longest" in err


def _long_song(folder: Path, seconds: float) -> Path:
    """Four 16-bit stereo stems written block by block (the test itself stays small)."""
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index, stem in enumerate(("drums", "bass", "other", "vocals")):
        with soundfile.SoundFile(
            str(folder / f"{stem}.wav"), "w", RATE, 2, subtype="PCM_16"
        ) as handle:
            for _ in range(int(seconds)):
                level = 0.05 * (index + 1) * rng.uniform(0.5, 1.0)
                handle.write((rng.standard_normal((RATE, 2)) * level).astype(np.float32))
    return folder


def test_memory_does_not_grow_with_the_song(tmp_path):
    """Python-side allocations (numpy's included) while a song is loaded and measured."""

    def peak_mb(seconds: float) -> float:
        folder = _long_song(tmp_path / f"song-{seconds:.0f}", seconds)
        tracemalloc.start()
        song = load_song(folder, warn=lambda message: None)
        song.read_windows({"drums": [(0, RATE * 5), (RATE * 20, RATE * 25)]})
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert song.seconds == pytest.approx(seconds)
        return peak / 2**20

    short, long = peak_mb(30.0), peak_mb(240.0)
    decoded_mb = 240.0 * RATE * 2 * 4 * 4 / 2**20  # the four stems as float32, 161 MB
    assert long < 0.1 * decoded_mb
    assert long < short * 1.5 + 1.0
