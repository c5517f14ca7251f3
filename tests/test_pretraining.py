"""The tiny base's stand-in for pretraining: loudness comparisons and what they compare."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from anchormix_kedro.advice_language.wording import clip_parts
from anchormix_kedro.model.pretraining import (
    compare_clips,
    comparison_conversations,
    listening_conversations,
)

LEVELS = {"drums": -20.0, "bass": -24.0, "vocals": -18.0, "other": -22.0}


def examples() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "excerpt_id": "song", "anchor": "drums", "target": target,
                "anchor_lufs": LEVELS["drums"], "target_lufs": LEVELS[target], "gain_db": gain,
                "perturbed_relative_db": LEVELS[target] + gain - LEVELS["drums"],
            }
            for target in ("bass", "vocals", "other")
            for gain in range(-12, 13)
        ]
    )  # fmt: skip


def heard(raw: str) -> tuple[list[tuple[str, float]], float]:
    """The clips (stem, loudness as played) and the signed difference the answer states."""
    messages = json.loads(raw)
    clips = [clip_parts(c["audio_url"])[0] for c in messages[1]["content"] if c["type"] == "audio"]
    played = [(p.stem, LEVELS[p.stem] + p.gain_db) for p in clips]
    answer = messages[2]["content"]
    if "equally loud" in answer:
        return played, 0.0
    louder, amount = re.search(r"Audio (\d) \(.*?\) is about (\d+) dB louder", answer).groups()
    return played, float(amount) if louder == "2" else -float(amount)


def test_compare_clips_names_the_louder_and_rounds_the_difference():
    assert compare_clips("drums", "vocals", 5.6) == (
        "Audio 2 (the vocal) is about 6 dB louder than Audio 1 (the drums)."
    )
    assert "Audio 1 (the drums) is about 3 dB louder" in compare_clips("drums", "vocals", -3.2)
    assert "equally loud" in compare_clips("drums", "bass", 0.3)


@pytest.mark.parametrize("comparisons", ["anchor_target", "every_stem_pair"])
def test_every_comparison_states_the_difference_of_the_clips_as_played(comparisons):
    conversations = comparison_conversations(examples(), "system", 3, comparisons)
    assert len(conversations) == len(examples())
    pairs = set()
    for raw in conversations:
        (first, first_db), (second, second_db) = heard(raw)[0]
        stated = heard(raw)[1]
        assert abs(stated - (second_db - first_db)) <= 0.5
        pairs.add(frozenset((first, second)))
    if comparisons == "anchor_target":
        assert pairs == {frozenset(("drums", t)) for t in ("bass", "vocals", "other")}
    else:  # every pair of the excerpt's four stems, not only those with the anchor
        assert len(pairs) == 6
    assert comparison_conversations(examples(), "system", 3, comparisons) == conversations


def test_an_unknown_comparison_is_named():
    with pytest.raises(ValueError, match="training.pretrain.comparisons 'all'"):
        listening_conversations(examples(), "system", 0, comparisons="all")
