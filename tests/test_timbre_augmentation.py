"""Timbre augmentation: clips coloured by a broad EQ, the pretraining stand-in's loudness
comparisons that state what the EQ did, and fine-tuning's clips kept at their loudness."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pandas as pd
import pytest
from transformers import WhisperFeatureExtractor

from anchormix_kedro.advice_language.wording import (
    ClipPart,
    Equalisation,
    audio_uri,
    clip_parts,
    conversation,
    formulation_clips,
)
from anchormix_kedro.model.data import (
    EqualisationLoudness,
    FeatureStore,
    anchor_levelling_db,
    clip_features,
)
from anchormix_kedro.model.features import equalisation_curve_db, features_for_clip, raw_log_mel
from anchormix_kedro.model.front_end import LOUDNESS, AnchorLevel
from anchormix_kedro.model.pretraining import comparison_conversations
from anchormix_kedro.model.timbre import TimbreAugmentation, coloured_conversations

RATE = 16000
EXTRACTOR = WhisperFeatureExtractor(feature_size=128, sampling_rate=RATE, chunk_length=5)


def tone(frequency: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(5 * RATE) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def store_of(clips: dict[str, np.ndarray]) -> FeatureStore:
    raws = {stem: raw_log_mel(clip, EXTRACTOR) for stem, clip in clips.items()}
    valid = {stem: raw.shape[1] - 2 for stem, raw in raws.items()}
    return FeatureStore({"song": {"meta": {"valid_frames": valid}, "audio": raws}})


def test_an_equalisation_travels_in_the_clips_uri():
    eq = Equalisation(-3.2, 4.5, 0.25)
    uri = audio_uri("song", "vocals", 2.0, equalisation=eq)
    assert clip_parts(uri) == [ClipPart("song", "vocals", 2.0, eq)]
    # No EQ: the URI and the part are as before.
    assert audio_uri("song", "vocals", 2.0, equalisation=Equalisation()) == audio_uri(
        "song", "vocals", 2.0
    )
    assert not clip_parts(audio_uri("song", "vocals"))[0].equalisation
    with pytest.raises(ValueError, match="one stem"):
        audio_uri("song", ["drums", "vocals"], equalisation=eq)
    with pytest.raises(ValueError, match="not a number in range"):
        clip_parts("excerpt://song/vocals?tilt_db=+1.0&bell_db=+1.0&bell_at=1.50")


def test_the_curve_tilts_about_its_middle_and_peaks_where_the_bell_sits():
    tilt = equalisation_curve_db(128, 6.0, 0.0, 0.5)
    assert tilt[0] == pytest.approx(-3.0) and tilt[-1] == pytest.approx(3.0)
    assert tilt.mean() == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(tilt) > 0)
    bell = equalisation_curve_db(128, 0.0, -5.0, 0.25)
    assert int(np.argmin(bell)) == round(0.25 * 127)
    assert bell.min() == pytest.approx(-5.0, abs=0.01)
    assert abs(bell[-1]) < 0.01  # far from the bell nothing moves


def test_an_equalised_clip_is_heard_as_the_eq_says():
    store = store_of({"vocals": tone(1000.0)})
    eq = Equalisation(4.0, -2.0, 0.7)
    heard, valid = clip_features(store, audio_uri("song", "vocals", 3.0, equalisation=eq), 500)
    raw, frames = store.raw("song", "vocals")
    curve = equalisation_curve_db(128, 4.0, -2.0, 0.7)
    expected = features_for_clip(raw + (curve / 10)[:, None], 3.0, 500)
    np.testing.assert_allclose(heard, expected, atol=1e-6)
    assert valid == frames


def test_a_tones_loudness_moves_by_the_curve_at_its_band():
    """A 1 kHz tone sits in a few neighbouring mel bands; an EQ changes its loudness by the
    curve's value there, and the anchor levelling hears the coloured anchor."""
    store = store_of({"drums": tone(1000.0)})
    band = int(np.argmax(store.raw("song", "drums")[0][:, 100]))
    for eq in (Equalisation(6.0, 0.0, 0.5), Equalisation(-2.0, 5.0, band / 127)):
        curve = equalisation_curve_db(128, eq.tilt_db, eq.bell_db, eq.bell_at)
        change = EqualisationLoudness(store, RATE)(ClipPart("song", "drums", 0.0, eq))
        assert change == pytest.approx(curve[band], abs=0.3)
        level = AnchorLevel(-23.0, LOUDNESS)
        uris = [audio_uri("song", "drums", equalisation=eq)]
        plain = anchor_levelling_db(store, [audio_uri("song", "drums")], 500, level)
        assert anchor_levelling_db(store, uris, 500, level) == pytest.approx(
            plain - change, abs=1e-3
        )
    assert EqualisationLoudness(store, RATE)(ClipPart("song", "drums")) == 0.0


LEVELS = {"drums": -20.0, "bass": -24.0, "vocals": -18.0}


def examples() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "excerpt_id": "song", "anchor": "drums", "target": target,
                "anchor_lufs": LEVELS["drums"], "target_lufs": LEVELS[target], "gain_db": gain,
                "perturbed_relative_db": LEVELS[target] + gain - LEVELS["drums"],
            }
            for target in ("bass", "vocals")
            for gain in range(-12, 13, 3)
        ]
    )  # fmt: skip


def brighter_is_louder(part: ClipPart) -> float:
    """A stand-in for the measured change: the tilt and half the bell."""
    return part.equalisation.tilt_db + part.equalisation.bell_db / 2


def test_every_comparison_states_the_difference_the_eqs_made():
    timbre = TimbreAugmentation(6.0, 4.0)
    conversations = comparison_conversations(
        examples(), "system", 1, timbre=timbre, loudness_change=brighter_is_louder
    )
    coloured = 0
    for raw in conversations:
        messages = json.loads(raw)
        first, second = (
            clip_parts(c["audio_url"])[0] for c in messages[1]["content"] if c["type"] == "audio"
        )
        for part in (first, second):
            assert abs(part.equalisation.tilt_db) <= 6.0 and abs(part.equalisation.bell_db) <= 4.0
        coloured += bool(first.equalisation) + bool(second.equalisation)
        played = [LEVELS[p.stem] + p.gain_db + brighter_is_louder(p) for p in (first, second)]
        answer = messages[2]["content"]
        stated = 0.0
        if "equally loud" not in answer:
            louder, amount = re.search(r"Audio (\d) \(.*?\) is about (\d+) dB", answer).groups()
            stated = float(amount) if louder == "2" else -float(amount)
        assert abs(stated - (played[1] - played[0])) <= 0.5
    assert coloured >= 0.9 * 2 * len(conversations)
    # Seeded: the same corpus again.
    assert conversations == comparison_conversations(
        examples(), "system", 1, timbre=timbre, loudness_change=brighter_is_louder
    )


def test_without_timbre_the_comparisons_are_those_of_the_clips_as_recorded():
    plain = comparison_conversations(examples(), "system", 1)
    assert plain == comparison_conversations(
        examples(), "system", 1, timbre=TimbreAugmentation(), loudness_change=brighter_is_louder
    )
    assert all("tilt_db" not in raw for raw in plain)


def test_bad_timbre_settings_are_named():
    with pytest.raises(ValueError, match="training.pretrain.timbre: .*cannot be negative"):
        TimbreAugmentation.from_params({"tilt_db": -3.0}, "training.pretrain.timbre")
    with pytest.raises(ValueError, match="training.finetune_timbre: unknown keys .'tilt'."):
        TimbreAugmentation.from_params({"tilt": 3.0}, "training.finetune_timbre")
    assert TimbreAugmentation.from_params(None, "x") == TimbreAugmentation()
    with pytest.raises(ValueError, match="loudness change"):
        comparison_conversations(examples(), "system", 1, timbre=TimbreAugmentation(3.0, 0.0))
    assert not TimbreAugmentation(0.0, 0.0).draw(random.Random(0))


def test_fine_tunings_clips_are_coloured_at_their_recorded_loudness():
    """Each clip of one stem gets its own EQ and is turned down or up by what the EQ did to
    its BS.1770 loudness, so the balance the answer states is still the one played."""
    store = store_of({"drums": tone(150.0, 0.5), "vocals": tone(2500.0, 0.1)})
    meter, loudness_change = AnchorLevel(0.0, LOUDNESS, RATE), EqualisationLoudness(store, RATE)

    def played(uri: str) -> float:
        (part,) = clip_parts(uri)
        return meter.of_clip(*store.part(part)) + part.gain_db

    plain = [
        json.dumps(
            conversation("system", formulation_clips(f, "song", "drums", "vocals", g), "?", a)
        )
        for f, g, a in [("anchor_target", 4.0, "too loud"), ("target_only", -6.0, "too soft")]
        for _ in range(6)
    ]
    joined = json.dumps(
        conversation(
            "system", formulation_clips("single_clip", "song", "drums", "vocals"), "?", "ok"
        )
    )
    coloured = coloured_conversations(
        plain + [joined], TimbreAugmentation(6.0, 6.0), loudness_change, 3
    )
    moved = []
    for before, after in zip(plain, coloured, strict=False):
        before, after = json.loads(before), json.loads(after)
        assert after[2] == before[2] and after[0] == before[0]  # the same answer
        uris = [
            (b["audio_url"], a["audio_url"])
            for b, a in zip(before[1]["content"], after[1]["content"], strict=True)
            if b["type"] == "audio"
        ]
        for was, now in uris:
            assert clip_parts(now)[0].equalisation
            assert played(now) == pytest.approx(played(was), abs=0.06)
            moved.append(loudness_change(clip_parts(now)[0]))
    assert np.std(moved) > 0.5  # the EQs did change the loudness they were corrected for
    assert coloured[-1] == joined  # two stems in one clip play as recorded
    assert coloured == coloured_conversations(
        plain + [joined], TimbreAugmentation(6.0, 6.0), loudness_change, 3
    )
    assert coloured_conversations(plain, TimbreAugmentation(), loudness_change, 3) == plain
