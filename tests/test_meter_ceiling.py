"""anchormix analyse meter-ceiling: what an exact level meter reaches, scored as the evaluation scores."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.analyses import meter_ceiling as ceiling
from anchormix_kedro.analyses.project import open_run
from anchormix_kedro.commands import main
from anchormix_kedro.vocabulary import label_for_gain

PAIRS = [("drums", "vocals", 3.0), ("drums", "bass", -2.0), ("vocals", "other", -5.0)]
GAINS = [-12.0, -10.0, -7.0, -4.0, -2.0, 0.0, 1.0, 3.0, 5.0, 8.0, 11.0, 12.0]


def _run_data(spread_db: float, songs: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's examples and conventions: every song's own balance is the pair's convention
    plus ``spread_db`` times a fixed pattern of -1, 0 and +1."""
    rng = np.random.default_rng(3)
    rows = []
    for split in ("train", "test"):
        for s in range(songs):
            song = f"{split} song {s}"
            for anchor, target, median in PAIRS:
                natural = median + spread_db * ((s % 3) - 1) + rng.normal(0, 0.01)
                for gain in GAINS:
                    rows.append(
                        {
                            "example_id": f"{song}|{anchor}>{target}|{gain:+.1f}",
                            "song": song,
                            "split": split,
                            "genre": "Pop",
                            "anchor": anchor,
                            "target": target,
                            "reference_relative_db": natural,
                            "gain_db": gain,
                            "perturbed_relative_db": natural + gain,
                            "label": label_for_gain(gain, 1.5),
                        }
                    )
    conventions = pd.DataFrame(
        [
            {"genre": genre, "anchor": a, "target": t, "n_songs": songs, "median_db": m,
             "q25_db": m - 1, "q75_db": m + 1}
            for genre in ("Pop", "all")
            for a, t, m in PAIRS
        ]
    )  # fmt: skip
    return pd.DataFrame(rows), conventions


def test_an_exact_meter_on_songs_mixed_to_the_convention_meets_every_goal():
    results = ceiling.measure(*_run_data(spread_db=0.0))
    assert results["test_songs"] == 8
    assert results["own_balance_vs_pooled_convention_db"]["sd"] < 0.05
    for meter in ("genre_convention", "pooled_convention"):
        goals = {key: value[0] for key, value in results["meters"][meter].items()}
        assert goals["direction_4db"] == 1.0
        assert goals["direction_10db"] == 1.0
        assert goals["balanced_f1"] == 1.0
        assert goals["amount_error_db"] < 0.1
        assert goals["amount_spearman"] > 0.99


def test_songs_that_stray_from_the_convention_cap_what_a_meter_reaches():
    results = ceiling.measure(*_run_data(spread_db=6.0))
    assert results["own_balance_vs_pooled_convention_db"]["sd"] == pytest.approx(
        np.std([6.0, 0.0, -6.0, 6.0, 0.0, -6.0, 6.0, 0.0] * 3, ddof=1), abs=0.05
    )
    exact = results["meters"]["pooled_convention"]
    # Two songs in three sit 6 dB off: a 4-dB error reads as the other direction in some.
    assert exact["direction_4db"][0] < 0.9
    assert exact["balanced_f1"][0] < 0.6
    assert exact["amount_spearman"][0] < 0.9
    low, high = exact["direction_4db"][1:]
    assert low <= exact["direction_4db"][0] <= high
    # Shrinking the amounts towards the middle lowers their error; the verdicts stay.
    shrunk = results["meters"]["pooled_shrunk"]
    assert shrunk["amount_error_db"][0] < exact["amount_error_db"][0]
    assert shrunk["direction_4db"][0] == exact["direction_4db"][0]
    assert shrunk["balanced_f1"][0] == exact["balanced_f1"][0]


def test_fit_shrinkage_finds_the_line_of_least_absolute_error():
    x = np.linspace(0, 20, 201)
    y = 4.0 + 0.4 * x
    y[::10] += 30.0  # outliers a least-squares line would follow
    a, b = ceiling.fit_shrinkage(x, y)
    assert a == pytest.approx(4.0, abs=0.05)
    assert b == pytest.approx(0.4, abs=0.01)


def test_the_command_writes_its_table_and_says_what_is_missing(project, tmp_path, capsys):
    # Before a run: one line naming the missing file and what writes it.
    assert main(["analyse", "meter-ceiling", "--project", str(project)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "examples.parquet" in error
    assert "kedro run --pipeline=data" in error
    examples, conventions = _run_data(spread_db=3.0)
    catalog = open_run(project).catalog
    catalog.save("examples", examples)
    catalog.save("genre_conventions", conventions)
    assert main(["analyse", "meter-ceiling", "--output", str(tmp_path / "out")]) == 0
    written = json.loads((tmp_path / "out" / "meter_ceiling.json").read_text())
    assert set(written["meters"]) == set(ceiling.METERS)
    assert "| balanced F1 |" in (tmp_path / "out" / "meter_ceiling.md").read_text()
    assert "Spearman" in capsys.readouterr().out
    assert main(["analyse", "meter-ceiling"]) == 0  # by default into the project's data
    reporting = project / "data" / "08_reporting" / "analyses" / "meter-ceiling"
    assert (reporting / "meter_ceiling.md").read_text().count("| balanced F1 |") == 1
