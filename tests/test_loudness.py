"""BS.1770 loudness read off the cached log-mel frames: what the anchor levelling measures."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
from transformers import WhisperFeatureExtractor

from anchormix_kedro.instruction_data.musdb import MusdbCorpus, discover_corpus
from anchormix_kedro.model.features import clip_level_db, raw_log_mel
from anchormix_kedro.model.front_end import LOUDNESS, MEL_POWER, AnchorLevel
from anchormix_kedro.model.loudness import k_weighting_band_weights, mel_loudness_db
from anchormix_kedro.pipelines.ingestion import nodes as ingestion

RATE = 16000
EXTRACTOR = WhisperFeatureExtractor(feature_size=128, sampling_rate=RATE, chunk_length=5)
WEIGHTS = k_weighting_band_weights(128, RATE, EXTRACTOR.n_fft)
HOP_SECONDS = EXTRACTOR.hop_length / RATE


def mel_loudness(clip: np.ndarray) -> float:
    raw = raw_log_mel(clip.astype(np.float32), EXTRACTOR)
    return mel_loudness_db(raw, raw.shape[1] - 2, WEIGHTS, HOP_SECONDS)


def test_the_weights_use_whispers_own_mel_filters():
    from transformers.audio_utils import mel_filter_bank

    assert (WEIGHTS >= 0).all() and WEIGHTS.shape == (128,)
    filters = mel_filter_bank(
        num_frequency_bins=201, num_mel_filters=128, min_frequency=0.0, max_frequency=RATE / 2,
        sampling_rate=RATE, norm="slaney", mel_scale="slaney",
    )  # fmt: skip
    np.testing.assert_allclose(filters, EXTRACTOR.mel_filters)


@pytest.mark.parametrize(
    "name",
    ["noise", "tone 100 Hz", "tone 1 kHz", "tone 5 kHz", "noise with pauses", "quiet noise"],
)
def test_mel_loudness_reads_as_pyloudnorm_does(name):
    rng = np.random.default_rng(3)
    t = np.arange(5 * RATE) / RATE
    clip = {
        "noise": rng.normal(0, 0.05, t.size),
        "tone 100 Hz": 0.3 * np.sin(2 * np.pi * 100 * t),
        "tone 1 kHz": 0.3 * np.sin(2 * np.pi * 1000 * t),
        # Above the K-weighting's shelf: 4 dB louder than its power says.
        "tone 5 kHz": 0.3 * np.sin(2 * np.pi * 5000 * t),
        # Gating: the silent 60 % do not pull the loudness down.
        "noise with pauses": rng.normal(0, 0.05, t.size) * ((t % 2.0) < 0.8),
        "quiet noise": rng.normal(0, 0.0005, t.size),
    }[name]
    expected = pyloudnorm.Meter(RATE).integrated_loudness(clip)
    assert mel_loudness(clip) == pytest.approx(expected, abs=0.25)


def test_a_gain_moves_the_loudness_by_as_much_and_silence_has_none():
    rng = np.random.default_rng(5)
    clip = rng.normal(0, 0.05, 5 * RATE)
    assert mel_loudness(clip * 10 ** (-9 / 20)) == pytest.approx(mel_loudness(clip) - 9, abs=0.05)
    assert mel_loudness(np.zeros(5 * RATE)) == float("-inf")


def test_the_anchor_level_measures_as_its_package_says():
    rng = np.random.default_rng(6)
    raw = raw_log_mel(rng.normal(0, 0.05, 5 * RATE).astype(np.float32), EXTRACTOR)
    assert AnchorLevel(-23.0, MEL_POWER).of_clip(raw, 500) == clip_level_db(raw, 500)
    assert AnchorLevel(-23.0, LOUDNESS).of_clip(raw, 500) == pytest.approx(
        mel_loudness_db(raw, 500, WEIGHTS, HOP_SECONDS)
    )
    with pytest.raises(ValueError, match="anchor_level_measure 'rms'"):
        AnchorLevel(-23.0, "rms")


def test_on_real_stems_it_follows_the_relative_loudness_closer_than_mel_power(shared_musdb):
    """The levelling's error is what the advisor hears as imbalance: the drums-to-target
    relation read off the mel frames must follow pyloudnorm's on the same 16 kHz audio."""
    corpus = discover_corpus(shared_musdb)
    tracks = ingestion.list_tracks(
        corpus,
        MusdbCorpus(root=None),
        {"validation_tracks": [], "carve_when_missing": {}, "seed": 0},
    ).head(6)
    excerpts = ingestion.extract_excerpts(
        corpus, MusdbCorpus(root=None), tracks, {"seconds": 5.0, "per_song": 1},
        {"anchors": ["drums"], "targets": ["vocals", "bass", "other"]},
    )  # fmt: skip
    meter = pyloudnorm.Meter(RATE)
    errors: dict[str, list[float]] = {LOUDNESS: [], MEL_POWER: []}
    for load in excerpts.values():
        audio = load()["audio"]
        raws = {stem: raw_log_mel(clip, EXTRACTOR) for stem, clip in audio.items()}
        truth = {stem: meter.integrated_loudness(clip) for stem, clip in audio.items()}
        for measure in errors:
            level = AnchorLevel(0.0, measure)
            read = {stem: level.of_clip(raw, 500) for stem, raw in raws.items()}
            errors[measure] += [
                (read[t] - read["drums"]) - (truth[t] - truth["drums"])
                for t in ("vocals", "bass", "other")
                if np.isfinite(truth[t]) and np.isfinite(read[t])
            ]
    loudness, mel_power = (np.abs(np.array(errors[m])) for m in (LOUDNESS, MEL_POWER))
    assert len(loudness) >= 12
    assert np.median(loudness) < 0.5
    assert np.median(loudness) < np.median(mel_power) / 2
