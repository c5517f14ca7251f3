"""Gain offsets, labels at the tolerance boundaries, and the examples table."""

from __future__ import annotations

import pandas as pd
import pytest

from anchormix_kedro.instruction_data.perturbation import (
    GainOffsets,
    anchor_target_pairs,
    make_examples,
)
from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT, label_for_gain


@pytest.mark.parametrize(
    ("gain", "label"),
    [
        (0.0, BALANCED),
        (1.5, BALANCED),
        (-1.5, BALANCED),
        (1.51, TOO_LOUD),
        (-1.51, TOO_SOFT),
        (12.0, TOO_LOUD),
    ],
)
def test_labels_at_the_tolerance_boundaries(gain, label):
    assert label_for_gain(gain, 1.5) == label


def test_negative_tolerance_is_rejected():
    with pytest.raises(ValueError, match="balanced_tolerance_db must be >= 0, got -1"):
        label_for_gain(0.0, -1)


def test_every_stem_can_be_an_anchor_and_a_stem_never_pairs_with_itself():
    stems = ["drums", "bass", "other", "vocals"]
    pairs = anchor_target_pairs(stems, stems)
    assert len(pairs) == 12 and all(a != t for a, t in pairs)
    assert {a for a, _ in pairs} == set(stems)


def test_grid_and_uniform_offsets():
    grid = GainOffsets.from_params({"mode": "grid", "values": [0, -3, 3]})
    assert grid.draw("any", 1) == [0.0, -3.0, 3.0]
    uniform = GainOffsets.from_params(
        {"mode": "uniform", "count": 6, "min_abs_db": 2, "max_abs_db": 9}
    )
    drawn = uniform.draw("song|drums>vocals", seed=5)
    assert drawn == uniform.draw("song|drums>vocals", seed=5)
    assert drawn != uniform.draw("song|drums>bass", seed=5)
    assert drawn[0] == 0.0 and len(drawn) == 7
    assert all(2 <= abs(g) <= 9 for g in drawn[1:])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"mode": "grid", "values": []}, "must list at least one gain"),
        ({"mode": "grid", "values": [1, float("nan")]}, "non-finite gains"),
        ({"mode": "uniform", "count": 0}, "needs count >= 1"),
        ({"mode": "normal"}, "must be 'grid' or 'uniform', got 'normal'"),
    ],
)
def test_bad_offset_settings_are_named(params, message):
    with pytest.raises(ValueError, match=message):
        GainOffsets.from_params(params)


def _loudness(song_levels: dict[str, dict[str, tuple[float, str]]]) -> pd.DataFrame:
    rows = [
        {
            "excerpt_id": song.replace(" ", "_"),
            "song": song,
            "stem": stem,
            "lufs": lufs,
            "status": status,
        }
        for song, stems in song_levels.items()
        for stem, (lufs, status) in stems.items()
    ]
    return pd.DataFrame(rows)


def test_examples_record_reference_offset_and_perturbed_levels_and_skip_inactive_stems():
    loudness = _loudness(
        {
            "Song A": {
                "drums": (-20.0, "active"),
                "vocals": (-17.5, "active"),
                "bass": (-70.0, "silent"),
                "other": (-30, "sparse"),
            },
            "Song B": {
                "drums": (-80.0, "silent"),
                "vocals": (-18.0, "active"),
                "bass": (-22.0, "active"),
                "other": (-25, "active"),
            },
        }
    )
    tracks = pd.DataFrame(
        {"song": ["Song A", "Song B"], "split": ["train", "test"], "genre": ["Rap", "Jazz"]}
    )
    offsets = GainOffsets.from_params({"mode": "grid", "values": [0, -4, 2]})
    examples, summary = make_examples(
        loudness,
        tracks,
        anchor_target_pairs(["drums"], ["vocals", "bass", "other"]),
        offsets,
        1.5,
        seed=0,
    )
    assert examples["song"].unique().tolist() == ["Song A"]
    assert examples["gain_db"].tolist() == [0.0, -4.0, 2.0]
    assert examples["reference_relative_db"].tolist() == [2.5, 2.5, 2.5]
    assert examples["perturbed_relative_db"].tolist() == [2.5, -1.5, 4.5]
    assert examples["label"].tolist() == [BALANCED, TOO_SOFT, TOO_LOUD]
    assert examples[["split", "genre"]].drop_duplicates().values.tolist() == [["train", "Rap"]]
    assert summary["pairs_formed"] == 1
    assert summary["pairs_skipped"] == {
        "drums>bass: target silent": 1,
        "drums>other: target sparse": 1,
        "drums>bass: anchor silent": 1,
        "drums>other: anchor silent": 1,
        "drums>vocals: anchor silent": 1,
    }
