"""Song-level (cluster) bootstrap and paired comparisons between systems."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.evaluation.comparisons import comparison_markdown, paired_comparisons
from anchormix_kedro.evaluation.statistics import (
    bootstrap_mean,
    paired_song_bootstrap,
    song_bootstrap_balanced_f1,
    song_bootstrap_mean,
    song_bootstrap_statistic,
)
from anchormix_kedro.evaluation.summaries import AUTOMATED_METRICS, summarize


def clustered(n_songs: int = 6, per_song: int = 40, seed: int = 1):
    """Values that depend on the song far more than on the example."""
    rng = np.random.default_rng(seed)
    song_means = rng.uniform(0.2, 0.9, n_songs)
    songs = np.repeat([f"song {i}" for i in range(n_songs)], per_song)
    values = np.repeat(song_means, per_song) + rng.normal(0, 0.01, n_songs * per_song)
    return values, songs


def test_resampling_songs_widens_the_interval_of_clustered_data():
    values, songs = clustered()
    mean, low, high, n_songs = song_bootstrap_mean(values, songs, 2000)
    _, example_low, example_high = bootstrap_mean(values, 2000)
    assert n_songs == 6 and mean == pytest.approx(values.mean())
    assert (high - low) > 5 * (example_high - example_low)
    with_missing = np.where(songs == "song 0", np.nan, values)
    assert song_bootstrap_mean(with_missing, songs, 100)[3] == 5


def test_any_statistic_by_song_matches_the_mean_by_song():
    values, songs = clustered()
    by_mean = song_bootstrap_mean(values, songs, 500, rng=np.random.default_rng(4))
    by_statistic = song_bootstrap_statistic(
        lambda rows: values[rows].mean(), songs, 500, rng=np.random.default_rng(4)
    )
    assert by_statistic[0] == pytest.approx(values.mean())
    assert by_statistic[3] == 6
    # Both resample whole songs: intervals of the same width, far wider than by example.
    assert (by_statistic[2] - by_statistic[1]) == pytest.approx(by_mean[2] - by_mean[1], rel=0.3)
    one_song = song_bootstrap_statistic(lambda rows: values[rows].mean(), ["s"] * len(values))
    assert np.isnan(one_song[1]) and one_song[3] == 1


def test_balanced_f1_by_song():
    outcomes = ["tp", "fp", "tn", None, "fn", "tp"] * 5
    songs = [f"s{i // 6}" for i in range(30)]
    f1, low, high, n_songs = song_bootstrap_balanced_f1(outcomes, songs, 500)
    assert n_songs == 5 and f1 == pytest.approx(2 * 10 / (2 * 10 + 5 + 5))
    assert low == pytest.approx(f1) and high == pytest.approx(f1)  # every song is the same


def test_paired_differences_and_p_values():
    values, songs = clustered()
    same = paired_song_bootstrap(values, values, songs, n_resamples=500)
    assert same["difference"] == 0 and same["p_value"] == 1.0 and same["n_songs"] == 6
    better = paired_song_bootstrap(values + 0.1, values, songs, n_resamples=500)
    assert better["difference"] == pytest.approx(0.1)
    assert better["ci_low"] > 0 and better["p_value"] < 0.01
    noisy = np.random.default_rng(3).normal(0, 0.3, len(values))
    unclear = paired_song_bootstrap(values + noisy, values, songs, n_resamples=500)
    assert unclear["ci_low"] < 0 < unclear["ci_high"] and unclear["p_value"] > 0.05


def test_summaries_by_song_and_comparisons_with_the_advisor():
    values, songs = clustered()
    rows = []
    for system, shift in (("advisor", 0.0), ("no_anchor", -0.2), ("dsp_baseline", 0.0)):
        for i, (value, song) in enumerate(zip(values, songs, strict=True)):
            rows.append(
                {
                    "system": system,
                    "example_id": f"ex{i}",
                    "song": song,
                    "direction_correct_score": float(np.clip(value + shift, 0, 1) > 0.5),
                    "rouge_l": value + shift,
                    "balanced_outcome": "tp" if i % 3 else "fn",
                }
            )
    table = pd.DataFrame(rows)
    summary = summarize(table, n_resamples=200, cluster_column="song")
    assert set(summary["n_songs"]) == {6}
    assert summarize(table, n_resamples=200)["n_songs"].isna().all()
    comparisons = paired_comparisons(table, "advisor", AUTOMATED_METRICS, n_resamples=300)
    assert set(comparisons["system"]) == {"no_anchor", "dsp_baseline"}
    rouge = comparisons.set_index(["system", "metric"]).loc[("no_anchor", "rouge_l")]
    assert rouge["difference"] == pytest.approx(-0.2) and rouge["ci_high"] < 0
    tie = comparisons.set_index(["system", "metric"]).loc[("dsp_baseline", "rouge_l")]
    assert tie["difference"] == 0 and tie["p_value"] == 1.0
    markdown = comparison_markdown(comparisons)
    assert "minus `advisor`" in markdown and "6 songs" in markdown and "ROUGE-L" in markdown
    assert paired_comparisons(table, "missing", AUTOMATED_METRICS).empty


def test_direction_accuracy_by_size_of_the_imbalance():
    from anchormix_kedro.evaluation.by_offset import accuracy_by_offset, by_offset_markdown

    gains = [0.0, 1.0, -2.0, 3.0, 5.0, -6.0, 8.0, 12.0, -11.0]
    correct = [0, 0, 1, 0, 1, 1, 1, 1, 0]
    table = pd.DataFrame(
        {
            "system": "advisor",
            "condition": "as_mixed",
            "gain_db": gains,
            "direction_correct_score": [float(c) for c in correct],
        }
    )
    rows = accuracy_by_offset(table).set_index("offset")
    assert rows.loc["balanced (within 1.5 dB)", ["n", "direction_accuracy"]].tolist() == [2, 0.0]
    assert rows.loc["2-3 dB", "direction_accuracy"] == 0.5
    assert rows.loc["4-6 dB", ["n", "direction_accuracy"]].tolist() == [2, 1.0]
    assert rows.loc["7-9 dB", "n"] == 1
    assert rows.loc[">= 10 dB", "direction_accuracy"] == 0.5
    assert rows["n"].sum() == len(gains)  # every example in exactly one bin
    assert "| >= 10 dB | 0.50 (2) |" in by_offset_markdown(accuracy_by_offset(table))


def test_stated_amounts_that_follow_the_offsets_correlate_and_a_constant_one_does_not():
    from anchormix_kedro.evaluation.by_offset import (
        AMOUNT_LABEL,
        accuracy_by_offset,
        amount_tracking,
        by_offset_markdown,
    )

    gains = np.array([2.0, -3.0, 4.0, -6.0, 8.0, -9.0, 11.0, 12.0] * 3)
    songs = np.repeat(["a", "b", "c", "d", "e", "f"], 4)
    rng = np.random.default_rng(0)
    stated = {
        "advisor": np.abs(gains) + rng.normal(0, 0.5, len(gains)),  # follows the offset
        "no_anchor": np.full(len(gains), 7.0),  # "about 7 dB" whatever the offset
    }
    table = pd.concat(
        [
            pd.DataFrame(
                {
                    "system": system,
                    "condition": "as_mixed",
                    "song": songs,
                    "gain_db": gains,
                    "direction_correct_score": 1.0,
                    "predicted_amount_db": amounts,
                    "amount_error_db": np.abs(amounts - np.abs(gains)),
                }
            )
            for system, amounts in stated.items()
        ]
    )
    table.loc[table.index[:2], "amount_error_db"] = np.nan  # wrong direction: not counted
    tracked = amount_tracking(table, n_resamples=200).set_index("system")
    assert tracked.loc["advisor", "spearman"] > 0.9
    assert tracked.loc["advisor", "ci_low"] <= tracked.loc["advisor", "spearman"] <= 1.0
    assert tracked.loc["advisor", ["n", "n_songs"]].tolist() == [22, 6]
    assert np.isnan(tracked.loc["no_anchor", "spearman"])
    report = by_offset_markdown(accuracy_by_offset(table), amounts=amount_tracking(table, 50))
    assert f"| {AMOUNT_LABEL} | 0.9" in report and "| n/a |" in report
