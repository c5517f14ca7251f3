"""Reference advice and instructions: content, grammar, determinism; genre conventions."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from anchormix_kedro.advice_language.wording import (
    advice_text,
    audio_uri,
    clip_parts,
    convention_sentence,
    conversation,
    example_rng,
    instruction_text,
    rounded_amount_db,
)
from anchormix_kedro.instruction_data.conventions import (
    convention_index,
    lookup_convention,
    measure_genre_conventions,
)
from anchormix_kedro.vocabulary import (
    ANCHOR_TARGET,
    BALANCED,
    SINGLE_CLIP,
    TARGET_ONLY,
    TOO_LOUD,
    TOO_SOFT,
)


@pytest.mark.parametrize("seed", range(12))
def test_too_loud_advice_names_anchor_amount_and_a_downward_fader_move(seed):
    text = advice_text(TOO_LOUD, "vocals", "drums", 4.2, random.Random(seed))
    assert "the drums" in text and "the vocal" in text and "4 dB" in text
    assert any(word in text for word in ("down", "Lower")) and "up" not in text.split()


@pytest.mark.parametrize("seed", range(12))
def test_too_soft_advice_moves_the_fader_up(seed):
    text = advice_text(TOO_SOFT, "bass", "drums", -7.6, random.Random(seed))
    assert (
        "8 dB" in text
        and any(word in text for word in ("up", "Raise", "Lift"))
        and "down" not in text
    )


@pytest.mark.parametrize("seed", range(8))
def test_balanced_advice_has_no_amount_and_no_move(seed):
    text = advice_text(BALANCED, "other", "drums", 1.0, random.Random(seed))
    assert "dB" not in text and "the other instruments" in text.lower()


def test_verb_agreement_follows_the_target():
    plural = {advice_text(TOO_LOUD, "other", "drums", 3, random.Random(s)) for s in range(40)}
    singular = {advice_text(TOO_LOUD, "vocals", "drums", 3, random.Random(s)) for s in range(40)}
    assert any("the other instruments are" in t for t in plural) and not any(
        "instruments is" in t for t in plural
    )
    assert any("the vocal is" in t for t in singular) and not any(
        "vocal are" in t for t in singular
    )


def test_phrasings_vary_across_examples_but_not_across_runs():
    texts = [
        advice_text(TOO_LOUD, "vocals", "drums", 5, example_rng(3, f"ex{i}", "advice"))
        for i in range(30)
    ]
    assert len(set(texts)) >= 4
    again = [
        advice_text(TOO_LOUD, "vocals", "drums", 5, example_rng(3, f"ex{i}", "advice"))
        for i in range(30)
    ]
    assert texts == again


def test_amount_is_whole_db_at_least_one():
    assert [rounded_amount_db(g) for g in (0.2, -1.4, 2.5, -11.6)] == [1, 1, 2, 12]


def test_instructions_name_both_roles_or_only_the_target():
    rng = random.Random(0)
    for _ in range(10):
        text = instruction_text(ANCHOR_TARGET, "drums", "vocals", rng, genre="Rap")
        assert text.startswith("The song is Rap.") and "the drums" in text and "the vocal" in text
        assert "Audio 1" in text and "Audio 2" in text
        only = instruction_text(TARGET_ONLY, "drums", "vocals", rng)
        assert "the drums" not in only and "Audio 2" not in only and "the vocal" in only
        single = instruction_text(SINGLE_CLIP, "drums", "vocals", rng)
        assert "the drums" in single and "the vocal" in single and "Audio 2" not in single
    with pytest.raises(ValueError, match="unknown formulation 'stereo'"):
        instruction_text("stereo", "drums", "vocals", rng)


def test_audio_uri_round_trip_and_conversation_shape():
    uri = audio_uri("Song_A", "vocals", -3.0)
    assert uri == "excerpt://Song_A/vocals?gain_db=-3.0"

    def read_back(text):
        parts = clip_parts(text)
        return parts[-1].excerpt_id, [p.stem for p in parts], parts[-1].gain_db

    assert read_back(uri) == ("Song_A", ["vocals"], -3.0)
    assert read_back(audio_uri("Song_A", "drums")) == ("Song_A", ["drums"], 0.0)
    joined = audio_uri("Song_A", ["drums", "vocals"], 4.0)
    assert joined == "excerpt://Song_A/drums+vocals?gain_db=+4.0"
    assert read_back(joined) == ("Song_A", ["drums", "vocals"], 4.0)
    messages = conversation("sys", [audio_uri("S", "drums"), uri], "question", "answer")
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert [c["type"] for c in messages[1]["content"]] == ["audio", "audio", "text"]


def test_conventions_use_training_songs_only_and_fall_back_to_all_genres():
    rows = []
    for i, (split, genre, ref) in enumerate(
        [
            ("train", "Rap", 3.0),
            ("train", "Rap", 5.0),
            ("train", "Rap", 4.0),
            ("train", "Jazz", -2.0),
            ("test", "Rap", 40.0),
        ]
    ):
        for gain in (0.0, 3.0):  # several offsets per song must not weigh a song more
            rows.append({"song": f"s{i}", "split": split, "genre": genre, "anchor": "drums", "target": "vocals",
                         "reference_relative_db": ref, "gain_db": gain})  # fmt: skip
    table = measure_genre_conventions(pd.DataFrame(rows))
    rap = table[table["genre"] == "Rap"].iloc[0]
    assert (rap["n_songs"], rap["median_db"]) == (3, 4.0)
    index = convention_index(table)
    pooled = lookup_convention(index, "Jazz", "drums", "vocals", min_songs=3)
    assert pooled["genre"] == "all" and pooled["n_songs"] == 4 and pooled["median_db"] == 3.5
    assert lookup_convention(index, "Rap", "drums", "bass") is None
    assert convention_sentence("Rap", "drums", "vocals", 4.0, pooled=False) == (
        "In Rap mixes, the vocal usually sits about 4 dB above the drums."
    )
