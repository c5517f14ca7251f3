"""The engineers' graded verdict: predictive percentiles, grades, its words, the trade-off of
the outer band, and a fine-tuned model's advice beside the measurement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from anchormix_kedro import commands as cli
from anchormix_kedro.advise.render import render_text
from anchormix_kedro.advise.verdict import (
    compare_with_model,
    graded_advice,
    ordinal,
    percentile_words,
)
from anchormix_kedro.evaluation.professional_range import (
    LOUD_SIDE,
    QUIET_SIDE,
    WITHIN_USUAL_RANGE,
    Bands,
    Distribution,
    ProfessionalLevels,
    band_tradeoff,
    percentile_of,
    place_level,
    quantile,
)
from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT

#: Nine professional levels 1..9 dB: the i-th smallest sits at the 10*i-th percentile.
NINE = Distribution("Rock", "drums", "vocals", tuple(float(v) for v in range(1, 10)))


def test_predictive_percentiles_put_the_i_th_of_n_values_at_i_over_n_plus_one():
    values = NINE.values
    assert [quantile(values, p) for p in (10, 25, 50, 75, 90)] == pytest.approx(
        [1.0, 2.5, 5.0, 7.5, 9.0]
    )
    assert quantile(values, 5) == 1.0 and quantile(values, 95) == 9.0  # clipped, not invented
    assert percentile_of(values, 2.5) == pytest.approx(25.0)
    assert percentile_of(values, 0.5) == 0.0 and percentile_of(values, 9.5) == 100.0
    # The inverse of each other inside the range.
    for percent in (12.0, 37.5, 61.0, 88.0):
        assert percentile_of(values, quantile(values, percent)) == pytest.approx(percent)
    # Tied values share the middle of their positions.
    assert percentile_of((1.0, 2.0, 2.0, 3.0), 2.0) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="no professional levels"):
        quantile((), 50)


@pytest.mark.parametrize(
    ("level", "grade", "verdict", "move"),
    [
        (5.0, WITHIN_USUAL_RANGE, BALANCED, 0.0),
        (2.5, WITHIN_USUAL_RANGE, BALANCED, 0.0),  # the edge of the usual range is inside
        (8.0, LOUD_SIDE, BALANCED, 0.0),
        (2.0, QUIET_SIDE, BALANCED, 0.0),
        (9.0, LOUD_SIDE, BALANCED, 0.0),  # the outer percentile itself is not beyond it
        (11.0, TOO_LOUD, TOO_LOUD, 7.5 - 11.0),  # back to the usual range's edge
        (-3.0, TOO_SOFT, TOO_SOFT, 2.5 + 3.0),
    ],
)
def test_grades_and_the_move_back_into_the_usual_range(level, grade, verdict, move):
    placed = place_level(level, NINE, Bands())
    assert (placed.grade, placed.verdict) == (grade, verdict)
    assert placed.fader_move_db == pytest.approx(move)
    assert placed.usual_range_db == pytest.approx((2.5, 7.5))
    assert placed.outer_range_db == pytest.approx((1.0, 9.0))
    if grade == LOUD_SIDE:
        assert placed.to_usual_range_db == pytest.approx(7.5 - level)


def test_bands_are_checked():
    assert Bands(usual=(20, 80), outer=(5, 95)).outer == (5, 95)
    with pytest.raises(ValueError, match="usual 25-75, outer 30-70"):
        Bands(usual=(25, 75), outer=(30, 70))
    with pytest.raises(ValueError, match="0 < outer low"):
        Bands(outer=(0, 90))


def _levels(rows: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "genre": genre,
                "song": f"{genre}-{i}",
                "anchor": "drums",
                "target": "vocals",
                "relative_db": value,
            }
            for genre, values in rows.items()
            for i, value in enumerate(values)
        ]  # fmt: skip
    )


def test_genre_ranges_only_when_asked_and_only_with_enough_songs():
    table = _levels({"Rap": [8.0, 9.0, 10.0, 11.0], "Jazz": [-3.0, -2.0, -1.0, 0.0]})
    pooled = ProfessionalLevels(table).distribution("Rap", "drums", "vocals")
    assert pooled.genre == "all" and pooled.n_songs == 8
    own = ProfessionalLevels(table, genre_min_songs=4).distribution("Rap", "drums", "vocals")
    assert own.genre == "Rap" and own.values == (8.0, 9.0, 10.0, 11.0)
    few = ProfessionalLevels(table, genre_min_songs=5).distribution("Rap", "drums", "vocals")
    assert few.genre == "all"
    assert ProfessionalLevels(table).distribution("Rap", "drums", "bass") is None
    assert ProfessionalLevels(table).genres == ["Jazz", "Rap"]
    with pytest.raises(ValueError, match="missing \\['relative_db'\\]"):
        ProfessionalLevels(table.drop(columns="relative_db"))


def test_band_tradeoff_counts_false_alarms_and_caught_errors_on_held_out_songs():
    rng = np.random.default_rng(0)
    reference = _levels({"Pop": list(rng.normal(3.0, 2.0, 400))})
    held_out = _levels({"Pop": list(rng.normal(3.0, 2.0, 400))})
    held_out["song"] = "held-" + held_out["song"]
    table = band_tradeoff(reference, held_out, [10.0, 25.0], error_db=12.0)
    by_low = table.set_index("outer_low")
    # Same distribution: a p-(100-p) band flags about 2p% of professional levels.
    assert by_low.loc[10.0, "professional_flagged"] == pytest.approx(0.20, abs=0.05)
    assert by_low.loc[25.0, "professional_flagged"] == pytest.approx(0.50, abs=0.06)
    # 12 dB is six spreads away: nearly every error is caught.
    assert by_low.loc[10.0, "errors_caught"] > 0.99
    assert list(by_low["pairs"]) == [400, 400]
    with pytest.raises(ValueError, match="held-out songs were used"):
        band_tradeoff(reference, reference, [10.0])


# --------------------------------------------------------------------------- words


def test_ordinals_and_percentile_words():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 52, 99)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "52nd", "99th",
    ]  # fmt: skip
    assert percentile_words(0.0) == "below every professional mix measured"
    assert percentile_words(100.0) == "above every professional mix measured"
    assert percentile_words(72.4) == "the 72nd percentile"


def test_graded_advice_says_where_the_level_sits_and_what_to_do():
    loud = graded_advice("drums", "vocals", place_level(11.0, NINE, Bands()))
    assert loud.startswith("The vocal is louder against the drums than 90% of professional Rock")
    assert (
        "usual range +2.5 to +7.5 dB" in loud and "pull the vocal fader down about 3.5 dB" in loud
    )
    soft = graded_advice("drums", "other", place_level(-3.0, NINE, Bands()))
    assert (
        soft.startswith("The other instruments are quieter") and "push the instrument bus" in soft
    )
    side = graded_advice("drums", "bass", place_level(8.0, NINE, Bands()))
    assert "on the loud side but within what professional mixes do" in side
    assert "pulling the bass fader down about 0.5 dB would bring it into the usual range" in side
    within = graded_advice("drums", "vocals", place_level(5.0, NINE, Bands()))
    assert "within the usual range (the 50th percentile" in within and "leave the vocal" in within


@pytest.mark.parametrize(
    ("level", "model", "agrees"),
    [
        (11.0, TOO_LOUD, True),
        (11.0, TOO_SOFT, False),  # opposite directions
        (11.0, BALANCED, False),  # beyond the outer percentiles, called balanced
        (8.0, TOO_LOUD, True),  # on the loud side: a move down is fair
        (8.0, BALANCED, True),  # ... and so is leaving it
        (8.0, TOO_SOFT, False),
        (5.0, TOO_LOUD, False),  # a move the measurement finds no reason for
        (5.0, BALANCED, True),
        (5.0, None, True),  # no verdict read from the model: nothing to disagree with
    ],
)
def test_model_disagreements_are_marked(level, model, agrees):
    placed = place_level(level, NINE, Bands())
    agreed, why = compare_with_model(placed, model)
    assert agreed is agrees
    assert (why is None) is agrees
    if not agrees:
        assert why.startswith("the model says") and "the measurement finds it" in why


def test_the_report_shows_model_and_measurement_side_by_side():
    placed = place_level(5.0, NINE, Bands())
    agreed, why = compare_with_model(placed, TOO_LOUD)
    result = {
        "song": "Song", "sample_rate": 44100, "seconds": 7.0, "anchor": "drums",
        "genre": "Rock", "genre_source": "--genre", "usual_percentiles": [25.0, 75.0],
        "outer_percentiles": [10.0, 90.0], "model": "runs:/abc/advisor",
        "stem_files": {"drums": ["Kick.wav", "Snare.wav"], "vocals": ["Lead Vox.wav"]},
        "not_stems": [], "warnings": ["one"],
        "targets": [{
            "stem": "vocals", "status": "active", "relative_db": 5.0, "windows": [[0.0, 7.0]],
            **placed.as_dict(), "verdict": placed.verdict, "fader_move_db": 0.0,
            "advice": graded_advice("drums", "vocals", placed),
            "model": {"verdict": TOO_LOUD, "fader_move_db": -4.0, "agrees_with_measurement": agreed,
                      "disagreement": why, "advice": "Pull the vocal down 4 dB."},
        }],
    }  # fmt: skip
    text = render_text(result)
    header, row = (line for line in text.splitlines() if line.startswith(("stem ", "vocals ")))
    assert header.split() == [
        "stem", "vs", "drums", "percentile", "usual", "range", "measurement", "model", "says",
        "model", "move", "agree",
    ]  # fmt: skip
    assert "too loud" in row and "-4.0 dB" in row and row.rstrip().endswith("NO")
    assert "  model:       Pull the vocal down 4 dB." in text
    assert "  measurement: The vocal is within the usual range" in text
    assert "  DISAGREE:    the model says too loud; the measurement finds it within" in text
    assert "drums <- Kick.wav, Snare.wav; vocals <- Lead Vox.wav" in text
    assert text.rstrip().endswith("1 warning, shown above on stderr.")


# --------------------------------------------------------------------------- a real model


def _tiny_package(root: Path) -> str:
    """A tiny Qwen2-Audio package trained for a few steps (about 15 s on a laptop CPU)."""
    from transformers import WhisperFeatureExtractor

    from anchormix_kedro.advice_language.wording import audio_uri, conversation
    from anchormix_kedro.model.data import FeatureStore
    from anchormix_kedro.model.factory import ModelSettings
    from anchormix_kedro.model.features import log_mel_record
    from anchormix_kedro.model.front_end import QWEN2_AUDIO_FRONT_END
    from anchormix_kedro.model.workflow import FineTuneData, TrainingSettings, fine_tune
    from conftest import TINY_ARCHITECTURE

    rate, system = 16000, "You are a mixing engineer."
    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=rate, chunk_length=30)
    t = np.arange(int(1.5 * rate)) / rate
    answers = {"a": "The vocal is too loud: pull it down 6 dB.", "b": "The vocal is too soft: push it up 6 dB."}  # fmt: skip
    store = FeatureStore(
        {
            song: log_mel_record(
                {
                    "drums": (0.2 * np.sin(2 * np.pi * 110 * t)).astype(np.float32),
                    "vocals": (level * np.sin(2 * np.pi * 330 * t)).astype(np.float32),
                },
                extractor,
            )  # fmt: skip
            for song, level in (("a", 0.3), ("b", 0.05))
        }
    )
    chats = [
        json.dumps(conversation(system, [audio_uri(s, "drums"), audio_uri(s, "vocals")],
                                "Balance the vocal against the drums.", answer))
        for s, answer in answers.items()
    ]  # fmt: skip
    stage = {"max_steps": 2, "per_device_train_batch_size": 2, "eval_strategy": "no",
             "save_strategy": "no"}  # fmt: skip
    training = TrainingSettings.from_params(
        {
            "seed": 1,
            "work_root": str(root / "work"),
            "lora": {"r": 4, "lora_alpha": 8, "modules_to_save": ["lm_head"]},
            "pretrain": {"enabled": True, "stage": {"args": stage}},
            "finetune": {"args": {**stage, "max_steps": 4, "learning_rate": 0.01}},
        }
    )
    settings = ModelSettings.from_params(
        {
            "source": "tiny",
            "front_end": QWEN2_AUDIO_FRONT_END.as_dict(),
            "tiny": {"seed": 0, **TINY_ARCHITECTURE},
        }  # fmt: skip
    )
    data = FineTuneData(chats, [], store, "cli-quiet", system,
                        tokenizer_texts=[system, *answers.values()], pretrain=chats)  # fmt: skip
    return fine_tune(settings, training, data, root / "pkg")["package"]


def test_a_real_model_beside_the_measurement_without_library_chatter(tmp_path, capfd):
    package = _tiny_package(tmp_path)
    song = tmp_path / "Song"
    song.mkdir()
    t = np.arange(3 * 22050) / 22050
    for stem, (freq, amplitude) in {"drums": (110, 0.2), "vocals": (330, 0.1)}.items():
        wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        soundfile.write(str(song / f"{stem}.wav"), np.stack([wave, wave], axis=1), 22050)
    capfd.readouterr()
    args = ["advise", str(song), "--model", package, "--json", "--window-seconds", "2"]
    assert cli.main(args) == 0
    out, err = capfd.readouterr()  # file descriptors: whatever any library writes is seen
    start = out.index('{\n  "song"')  # logging handlers of an earlier Kedro session may print
    result, _ = json.JSONDecoder().raw_decode(out[start:])
    assert [line for line in err.splitlines() if line.strip()] == [], err
    (vocals,) = result["targets"]
    model = vocals["model"]
    assert result["model"] == package and isinstance(model["advice"], str)
    assert vocals["grade"] is not None and vocals["advice"]  # the measurement is always there
    placed = place_level(vocals["relative_db"], _shipped("drums", "vocals"), Bands())
    assert (model["agrees_with_measurement"], model["disagreement"]) == compare_with_model(
        placed, model["verdict"]
    )
    assert cli.main([*args[:-3], "--verbose"]) == 0  # the libraries may speak; it still works
    text = capfd.readouterr().out
    assert "model says" in text and "  model:       " in text and "  measurement: " in text


def _shipped(anchor: str, target: str) -> Distribution:
    from anchormix_kedro.evaluation.professional_range import shipped_levels

    return shipped_levels().distribution("all", anchor, target)
