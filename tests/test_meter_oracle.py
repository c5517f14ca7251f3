"""The exact level meter evaluated beside the systems: the oracle row (oracle_meter)."""

from __future__ import annotations

import pandas as pd
import pytest

from anchormix_kedro.advice_language.parsing import parse_advice
from anchormix_kedro.evaluation.meter_oracle import (
    ORACLE_METER,
    exact_relative_db,
    meter_oracle_advice,
    system_kind,
)
from anchormix_kedro.evaluation.summaries import ablation_markdown, order_systems, summarize
from anchormix_kedro.vocabulary import label_for_gain

CONVENTIONS = pd.DataFrame(
    [
        {"genre": genre, "anchor": "drums", "target": "bass", "n_songs": 5, "median_db": -2.0,
         "q25_db": -3.0, "q75_db": -1.0}
        for genre in ("Pop", "all")
    ]
)  # fmt: skip


def _examples(condition: str, anchor_excerpts: dict[str, str] | None = None) -> pd.DataFrame:
    """Two songs mixed to the convention (bass 2 dB under the drums), three offsets each;
    song b's drums are 6 dB louder than song a's."""
    rows = []
    for excerpt, drums in (("a/0", -20.0), ("b/0", -14.0)):
        for gain in (-6.0, 0.0, 4.0):
            rows.append(
                {
                    "example_id": f"{excerpt}|drums>bass|{gain:+.1f}",
                    "condition": condition,
                    "excerpt_id": excerpt,
                    "anchor_excerpt_id": (anchor_excerpts or {}).get(excerpt, excerpt),
                    "song": excerpt[0],
                    "genre": "Pop",
                    "anchor": "drums",
                    "target": "bass",
                    "gain_db": gain,
                    "label": label_for_gain(gain, 1.5),
                    "anchor_lufs": drums,
                    "target_lufs": drums - 2.0,
                    "stage_db": 0.0,
                }
            )
    return pd.DataFrame(rows)


def _direction(advice: str) -> str | None:
    return parse_advice(advice).direction


def test_the_meter_reads_the_exact_level_and_judges_it_like_the_dsp_rule():
    examples = _examples("as_mixed")
    advice = meter_oracle_advice(examples, CONVENTIONS)
    assert list(advice.columns) == ["example_id", "condition", "system", "advice", "latency_s"]
    assert set(advice["system"]) == {ORACLE_METER} and advice["latency_s"].isna().all()
    # Songs at the convention: the meter finds every offset, in direction and amount.
    assert [_direction(a) for a in advice["advice"]] == list(examples["label"])
    assert [parse_advice(a).amount_db for a in advice["advice"]][0] == 6
    assert advice["advice"].str.contains("In Pop mixes, the bass usually sits").all()


def test_with_another_songs_anchor_the_meter_hears_that_anchor():
    examples = _examples("anchor_swapped", {"a/0": "b/0", "b/0": "a/0"})
    relative = exact_relative_db(examples)
    # a's bass (-22 LUFS) against b's drums (-14): 8 dB under, 6 dB under the convention.
    assert relative.iloc[1] == pytest.approx(-8.0)
    assert relative.iloc[4] == pytest.approx(4.0)
    advice = meter_oracle_advice(examples, CONVENTIONS)
    assert _direction(advice["advice"].iloc[1]) == "too_soft"  # truth: balanced
    assert _direction(advice["advice"].iloc[4]) == "too_loud"


def test_an_anchor_whose_loudness_is_unknown_is_named():
    examples = _examples("anchor_swapped", {"a/0": "c/0"})
    with pytest.raises(ValueError, match="no loudness for anchor drums of excerpt c/0"):
        exact_relative_db(examples)
    with pytest.raises(ValueError, match="lacks columns \\['anchor_lufs'\\]"):
        exact_relative_db(examples.drop(columns="anchor_lufs"))


def test_the_oracle_is_labelled_listed_last_and_never_marked_best():
    systems = {"variants": {"advisor": {}, "no_anchor": {}}, "baselines": ["dsp_baseline"]}
    assert system_kind(ORACLE_METER, systems) == "oracle"
    assert system_kind("dsp_baseline", systems) == "baseline"
    assert system_kind("anchor_vocals", systems) == "trained"
    assert order_systems([ORACLE_METER, "dsp_baseline", "no_anchor", "advisor"], ["advisor"]) == [
        "advisor", "no_anchor", "dsp_baseline", ORACLE_METER
    ]  # fmt: skip
    table = pd.DataFrame(
        {
            "system": ["advisor"] * 4 + ["no_anchor"] * 4 + [ORACLE_METER] * 4,
            "song": ["a", "a", "b", "b"] * 3,
            "direction_correct_score": [1, 0, 1, 0] + [0, 0, 0, 0] + [1, 1, 1, 1],
        }
    )
    summary = summarize(table, n_resamples=50)
    markdown = ablation_markdown(summary)
    assert "| advisor | no_anchor | oracle_meter (oracle) |" in markdown
    line = next(x for x in markdown.splitlines() if x.startswith("| Direction accuracy (unparsed"))
    assert "**0.500" in line and "**1.000" not in line  # the best among systems, not the oracle
    assert "not a trained system" in markdown
