"""The training recipe's data: gain-staged training clips and repeated balanced examples."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from anchormix_kedro.advice_language.wording import clip_parts
from anchormix_kedro.instruction_data.building import TemplatingSettings, build_instruction_dataset
from anchormix_kedro.model.spec import TrainingSettings
from anchormix_kedro.model.training_data import repeated_by_label

PARAMS = {
    "seed": 13,
    "system_prompt": "You are a mixing engineer.",
    "mention_genre_in_prompt": False,
    "convention_sentence_probability": 0.0,
    "convention_min_songs": 3,
}


def examples() -> pd.DataFrame:
    rows = []
    for split in ("train", "valid", "test"):
        for i in range(8):
            gain = [-6.0, 0.0, 4.0, 9.0][i % 4]
            rows.append(
                {
                    "example_id": f"{split}{i}|drums>vocals|{gain:+.1f}",
                    "excerpt_id": f"{split}{i}",
                    "song": f"{split}{i}",
                    "split": split,
                    "genre": "Pop",
                    "anchor": "drums",
                    "target": "vocals",
                    "gain_db": gain,
                    "label": "balanced" if gain == 0 else ("too_loud" if gain > 0 else "too_soft"),
                }
            )
    return pd.DataFrame(rows)


def conventions() -> pd.DataFrame:
    return pd.DataFrame(
        columns=["genre", "anchor", "target", "n_songs", "median_db", "q25_db", "q75_db", "std_db"]
    )


def clip_gains(messages_json: str) -> list[float]:
    return [
        part.gain_db
        for message in json.loads(messages_json)
        if isinstance(message["content"], list)
        for item in message["content"]
        if item["type"] == "audio"
        for part in clip_parts(item["audio_url"])
    ]


def test_training_clips_are_gain_staged_and_test_clips_are_not():
    settings = TemplatingSettings.from_params(
        {**PARAMS, "gain_staging": {"splits": ["train", "valid"], "min_db": -12, "max_db": 6}}
    )
    dataset = build_instruction_dataset(examples(), conventions(), settings).set_index("split")
    staged = dataset.loc[["train", "valid"]]
    assert staged["stage_db"].between(-12, 6).all() and staged["stage_db"].nunique() > 4
    for row in staged.itertuples():
        # Anchor at the common gain, target at its perturbation plus the same gain.
        assert clip_gains(row.messages_anchor_target) == pytest.approx(
            [row.stage_db, row.gain_db + row.stage_db]
        )
        assert clip_gains(row.messages_target_only) == pytest.approx([row.gain_db + row.stage_db])
    test = dataset.loc["test"]
    assert (test["stage_db"] == 0).all()
    assert all(
        clip_gains(m) == pytest.approx([0.0, g])
        for m, g in zip(test["messages_anchor_target"], test["gain_db"], strict=True)
    )
    # The answer is about the balance, which a common gain leaves alone.
    plain = build_instruction_dataset(
        examples(), conventions(), TemplatingSettings.from_params(PARAMS)
    )
    assert plain["advice"].tolist() == dataset["advice"].tolist()
    assert (plain["stage_db"] == 0).all()


@pytest.mark.parametrize(
    ("staging", "message"),
    [
        ({"splits": ["training"]}, r"unknown splits \['training'\]"),
        ({"splits": ["train"], "min_db": 3, "max_db": -3}, r"min_db \(3.0\) is above max_db"),
    ],
)
def test_bad_gain_staging_is_named(staging, message):
    with pytest.raises(ValueError, match=message):
        TemplatingSettings.from_params({**PARAMS, "gain_staging": staging})


def test_balanced_examples_are_repeated_as_configured():
    rows = examples()
    train = rows[rows["split"] == "train"].assign(messages=lambda f: f["example_id"])
    repeated = repeated_by_label(train, train["messages"], {"balanced": 3})
    balanced = set(train.loc[train["label"] == "balanced", "example_id"])
    assert len(repeated) == len(train) + 2 * len(balanced)
    assert all(repeated.count(m) == (3 if m in balanced else 1) for m in train["messages"])
    assert repeated_by_label(train, train["messages"], {}) == train["messages"].tolist()
    with pytest.raises(ValueError, match=r"label_repeats.balanced must be a whole number"):
        TrainingSettings.from_params({"label_repeats": {"balanced": 0}})
