"""Item-level validity: pooling systems manufactures a correlation that the within-system
analysis does not show; intervals are clustered by example; the human ceiling and the LLM
judge beside it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from anchormix_kedro.evaluation.correlation import correlate
from anchormix_kedro.study.effects import long_ratings
from anchormix_kedro.study.validity import (
    CEILING_COLUMNS,
    JUDGE_COLUMNS,
    MEAN,
    VALIDITY_COLUMNS,
    _within_ranks,
    human_ceiling,
    item_scores,
    judge_agreement,
    metric_validity,
    validity_markdown,
)
from anchormix_kedro.vocabulary import CRITERIA

SYSTEMS = ("advisor", "no_anchor", "dsp_baseline", "generic_base", "pretrained")


def simulated(seed=0, system_points=1.0, example_sd=0.0, noise=0.3, metric_noise=None,
              n_examples=16, systems=SYSTEMS):  # fmt: skip
    """Items and a metric per (example, system). The human score is a system effect plus
    an example effect shared by the example's items plus noise; the metric is the human
    score plus ``metric_noise`` when given (a real item-level relation), else the same
    system and example effects plus independent noise (no item-level relation)."""
    rng = np.random.default_rng(seed)
    example_effect = rng.normal(0, example_sd, n_examples)
    rows = []
    for e in range(n_examples):
        for i, system in enumerate(systems):
            shared = system_points * i + example_effect[e]
            human = shared + rng.normal(0, noise)
            metric = (human + rng.normal(0, metric_noise) if metric_noise is not None
                      else shared + rng.normal(0, noise))  # fmt: skip
            rows.append({"example_id": f"e{e}", "system": system, "human_mean": human,
                         "bertscore_f1": metric})  # fmt: skip
    table = pd.DataFrame(rows)
    return table.drop(columns="bertscore_f1"), table.drop(columns="human_mean")


def validity(items, metrics, **options) -> pd.DataFrame:
    return metric_validity(items, metrics, ["human_mean"], ["bertscore_f1"], **options)


def scope(table: pd.DataFrame, name: str) -> pd.DataFrame:
    return table[table["scope"] == name]


def test_pooling_systems_manufactures_a_correlation_that_within_systems_is_absent():
    items, metrics = simulated(seed=2)
    table = validity(items, metrics)
    assert list(table.columns) == list(VALIDITY_COLUMNS)
    assert list(table["scope"]) == ["within"] * 5 + ["within_pooled", "pooled", "between"]
    pooled, between = scope(table, "pooled").iloc[0], scope(table, "between").iloc[0]
    assert pooled["spearman_rho"] > 0.9 and pooled["spearman_ci_low"] > 0.8
    assert pooled["n_items"] == 80 and pooled["n_examples"] == 16
    assert between["spearman_rho"] > 0.9 and between["n_items"] == 5
    within = scope(table, "within")
    assert set(within["system"]) == set(SYSTEMS) and (within["n_items"] == 16).all()
    for rows in (within, scope(table, "within_pooled")):
        assert (rows["spearman_rho"].abs() < 0.6).all()
        assert ((rows["spearman_ci_low"] < 0) & (rows["spearman_ci_high"] > 0)).all()
        assert ((rows["pearson_ci_low"] < 0) & (rows["pearson_ci_high"] > 0)).all()
    assert abs(scope(table, "within_pooled")["spearman_rho"].iloc[0]) < 0.25


def test_a_real_item_level_relation_is_found_within_every_system():
    items, metrics = simulated(noise=1.0, metric_noise=0.3)
    table = validity(items, metrics)
    inside = table[table["scope"].isin(["within", "within_pooled"])]
    assert (inside["spearman_rho"] > 0.7).all() and (inside["spearman_ci_low"] > 0).all()
    assert (inside["pearson_ci_low"] > 0).all()
    assert scope(table, "within_pooled")["spearman_ci_low"].iloc[0] > 0.6


def test_each_scope_is_the_correlation_it_claims_to_be_ties_included():
    items, metrics = simulated(seed=4, noise=1.0, metric_noise=1.0)
    metrics["bertscore_f1"] = metrics["bertscore_f1"].round()  # many ties
    table = validity(items, metrics, n_resamples=10)
    data = items.merge(metrics, on=["example_id", "system"])
    x, y = data["bertscore_f1"], data["human_mean"]
    pooled = scope(table, "pooled").iloc[0]
    assert pooled["spearman_rho"] == pytest.approx(stats.spearmanr(x, y).statistic)
    assert pooled["pearson_r"] == pytest.approx(stats.pearsonr(x, y).statistic)
    for row in scope(table, "within").itertuples():
        part = data[data["system"] == row.system]
        expected = stats.spearmanr(part["bertscore_f1"], part["human_mean"]).statistic
        assert row.spearman_rho == pytest.approx(expected)
    by_system = data.groupby("system")
    ranks_x, ranks_y = (by_system[c].rank() for c in ("bertscore_f1", "human_mean"))
    centred = [v - v.groupby(data["system"]).transform("mean") for v in (ranks_x, ranks_y)]
    row = scope(table, "within_pooled").iloc[0]
    assert row["spearman_rho"] == pytest.approx(stats.pearsonr(*centred).statistic)
    centred = [v - by_system[v.name].transform("mean") for v in (x, y)]
    assert row["pearson_r"] == pytest.approx(stats.pearsonr(*centred).statistic)


def test_within_pooled_spearman_is_the_mean_of_the_systems_rhos_without_ties():
    table = validity(*simulated(seed=2, noise=1.0, metric_noise=1.0), n_resamples=10)
    expected = scope(table, "within")["spearman_rho"].mean()
    assert scope(table, "within_pooled")["spearman_rho"].iloc[0] == pytest.approx(expected)


def test_weighted_ranks_are_the_ranks_of_the_resampled_items():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, 30).astype(float)  # ties within and across strata
    strata = rng.integers(0, 3, 30)
    weights = rng.integers(0, 3, (20, 30)).astype(float)
    ranks = _within_ranks(values, strata, weights)
    for row, w in zip(ranks, weights, strict=True):
        expanded = np.repeat(np.arange(30), w.astype(int))
        for g in range(3):
            mine = expanded[strata[expanded] == g]
            assert np.allclose(np.repeat(row, w.astype(int))[strata[expanded] == g],
                               stats.rankdata(values[mine]))  # fmt: skip


def width(low: float, high: float) -> float:
    return high - low


def test_intervals_are_clustered_by_example():
    """An example effect shared by an example's items: 50 items are 10 examples' worth of
    evidence, so the clustered interval is wider than a pair bootstrap of 50 items."""
    for example_sd, check in ((1.0, lambda ratio: ratio > 1.3), (0.0, lambda ratio: ratio < 1.3)):
        items, metrics = simulated(system_points=0.0, example_sd=example_sd, noise=0.5,
                                   metric_noise=0.5 if example_sd == 0 else None, n_examples=10)  # fmt: skip
        pooled = scope(validity(items, metrics), "pooled").iloc[0]
        data = items.merge(metrics, on=["example_id", "system"])
        pairs = correlate(data["human_mean"], data["bertscore_f1"])
        ratio = width(pooled["spearman_ci_low"], pooled["spearman_ci_high"]) / width(
            pairs["spearman_ci_low"], pairs["spearman_ci_high"])  # fmt: skip
        assert check(ratio), (example_sd, ratio)


def test_a_seed_reproduces_the_intervals_and_another_seed_moves_only_them():
    items, metrics = simulated(seed=3)
    first, again = validity(items, metrics, seed=7), validity(items, metrics, seed=7)
    pd.testing.assert_frame_equal(first, again)
    other = validity(items, metrics, seed=8)
    pd.testing.assert_series_equal(first["spearman_rho"], other["spearman_rho"])
    assert not np.allclose(first["spearman_ci_low"], other["spearman_ci_low"])


def test_a_constant_metric_or_too_few_items_give_nan_and_a_note():
    items, metrics = simulated()
    table = validity(items, metrics.assign(bertscore_f1=0.5))
    assert table["spearman_rho"].isna().all() and table["pearson_r"].isna().all()
    assert table["note"].str.contains("constant|equal").all()
    by_system = metrics.assign(bertscore_f1=metrics["system"].map({s: i for i, s in
                                                                   enumerate(SYSTEMS)}))  # fmt: skip
    table = validity(items, by_system)
    inside = table[table["scope"].isin(["within", "within_pooled"])]
    assert inside["spearman_rho"].isna().all()
    assert "constant within every system" in scope(table, "within_pooled")["note"].iloc[0]
    assert scope(table, "pooled")["spearman_rho"].iloc[0] > 0.9
    table = validity(items, metrics, min_items=20)
    assert scope(table, "within")["spearman_rho"].isna().all()
    assert (scope(table, "within")["note"] == "16 items: at least 20 needed").all()
    assert np.isfinite(scope(table, "within_pooled")["spearman_rho"].iloc[0])
    table = validity(items, metrics.assign(bertscore_f1=np.nan))
    assert len(table) == 1 and table["n_items"].iloc[0] == 0 and table["note"].iloc[0]


def test_the_between_row_has_no_interval_with_fewer_than_four_systems():
    table = validity(*simulated(systems=SYSTEMS[:3]))
    between = scope(table, "between").iloc[0]
    assert between["n_items"] == 3 and between["spearman_rho"] == pytest.approx(1.0)
    assert np.isnan(between["spearman_ci_low"]) and np.isnan(between["pearson_ci_high"])
    assert "no interval" in between["note"]
    four = scope(validity(*simulated(systems=SYSTEMS[:4])), "between").iloc[0]
    assert np.isfinite(four["spearman_ci_low"]) and "not systems" in four["note"]


def test_bad_input_is_refused_with_the_column_or_value_named():
    items, metrics = simulated()
    with pytest.raises(ValueError, match="bertscore_f1"):
        validity(items, metrics.drop(columns="bertscore_f1"))
    with pytest.raises(ValueError, match="'e0'.*'advisor'"):
        validity(pd.concat([items, items.head(1)]), metrics)
    long = pd.DataFrame({"rater": ["r"], "scenario_id": ["s"], "example_id": ["e"],
                         "system": ["advisor"], "criterion": ["loudness"], "rating": [4]})  # fmt: skip
    with pytest.raises(ValueError, match="loudness"):
        item_scores(long)
    with pytest.raises(ValueError, match="rater"):
        human_ceiling(long.drop(columns="rater"))


def rated(noise_sd, true_sd=1.0, system_points=0.0, n_raters=8, n_examples=12, seed=0):
    """Long ratings: every rater rates every scenario, the true score plus rater noise,
    rounded to the 7-point scale (ties and all)."""
    rng = np.random.default_rng(seed)
    systems = SYSTEMS[:3]
    key = pd.DataFrame([{"scenario_id": f"e{e}-{s}", "example_id": f"e{e}", "system": s}
                        for e in range(n_examples) for s in systems])  # fmt: skip
    truth = 4 + rng.normal(0, true_sd, len(key)) + key["system"].map(
        {s: system_points * i for i, s in enumerate(systems)})  # fmt: skip
    ratings = pd.DataFrame([{"rater": f"r{r}", "scenario_id": scenario,
                             **{c: np.clip(np.rint(t + rng.normal(0, noise_sd)), 1, 7)
                                for c in CRITERIA}}
                            for r in range(n_raters)
                            for scenario, t in zip(key["scenario_id"], truth, strict=True)])  # fmt: skip
    return long_ratings(ratings, key)


def test_item_scores_average_each_scenarios_raters():
    long = rated(1.0, n_raters=3, n_examples=2)
    items = item_scores(long)
    assert len(items) == 6 and (items["n_raters"] == 3).all()
    first = long[long["scenario_id"] == items["scenario_id"].iloc[0]]
    for criterion in CRITERIA:
        expected = first.loc[first["criterion"] == criterion, "rating"].mean()
        assert items[f"human_{criterion}"].iloc[0] == pytest.approx(expected)
    means = items[[f"human_{c}" for c in CRITERIA]].mean(axis=1)
    assert np.allclose(items["human_mean"], means)


def test_the_ceiling_rises_as_rater_noise_falls_and_vanishes_for_pure_noise():
    precise, noisy = human_ceiling(rated(0.5)), human_ceiling(rated(1.5))
    assert list(precise.columns) == list(CEILING_COLUMNS)
    assert list(precise["criterion"]) == [*CRITERIA, MEAN]
    assert (precise["n_raters"] == 8).all() and (precise["n_items"] == 36).all()
    for column, margin in (("loro_spearman", 0.15), ("split_half", 0.05)):
        assert (precise[column] > noisy[column] + margin).all(), column
    assert (precise["loro_spearman"] > 0.7).all() and (noisy["loro_spearman"] > 0.2).all()
    assert (precise["loro_ci_low"] < precise["loro_spearman"]).all()
    assert (precise["split_half_ci_low"] <= precise["split_half"]).all()
    noise = human_ceiling(rated(1.0, true_sd=0.0, n_examples=30))
    assert (noise["loro_spearman"].abs() < 0.15).all()
    assert (noise["split_half"] < 0.3).all() and (noise["split_half_ci_low"] < 0).all()


def test_split_half_is_spearman_brown_corrected():
    """Two raters: every split is one rater against the other, so the split-half is
    2r / (1 + r) of their Pearson r and LORO is their Spearman."""
    a, b = [1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 6]
    long = pd.DataFrame([{"rater": rater, "scenario_id": f"s{i}", "example_id": f"e{i}",
                          "system": "advisor", "criterion": c, "rating": value}
                         for rater, values in (("a", a), ("b", b))
                         for i, value in enumerate(values) for c in CRITERIA])  # fmt: skip
    ceiling = human_ceiling(long, n_splits=20).set_index("criterion")
    r = stats.pearsonr(a, b).statistic
    assert ceiling["split_half"].to_numpy() == pytest.approx([2 * r / (1 + r)] * 5)
    assert np.allclose(ceiling["split_half_ci_low"], ceiling["split_half_ci_high"])
    rho = stats.spearmanr(a, b).statistic
    assert ceiling["loro_spearman"].to_numpy() == pytest.approx([rho] * 5)
    assert (ceiling["n_raters"] == 2).all() and (ceiling["n_items"] == 6).all()


def test_the_within_system_ceiling_leaves_the_systems_differences_out():
    long = rated(1.0, system_points=2.0)
    pooled, within = human_ceiling(long), human_ceiling(long, within_system=True)
    assert (pooled["loro_spearman"] > within["loro_spearman"] + 0.1).all()


def test_a_judge_that_tracks_the_engineers_agrees_within_systems_beside_the_ceiling():
    long = rated(1.0, seed=3)
    items = item_scores(long)
    noise = np.random.default_rng(5).normal(0, 0.3, (len(items), len(CRITERIA)))
    metrics = items[["example_id", "system"]].assign(**{
        f"judge_{c}": items[f"human_{c}"] + noise[:, k] for k, c in enumerate(CRITERIA)})  # fmt: skip
    judge = judge_agreement(items, metrics, long, n_resamples=200, n_splits=20)
    assert list(judge.columns) == list(JUDGE_COLUMNS)
    assert list(judge["criterion"].unique()) == list(CRITERIA)
    assert set(judge["scope"]) == {"within", "within_pooled", "pooled"}
    assert (judge["judge_spearman"] > 0.5).all() and (judge["ci_low"] > 0).all()
    ceiling = human_ceiling(long, n_splits=20).set_index("criterion")["loro_spearman"]
    pooled = judge[judge["scope"] == "pooled"].set_index("criterion")["human_loro_spearman"]
    assert np.allclose(pooled, ceiling[list(CRITERIA)])
    assert judge["human_loro_spearman"].between(0.2, 1).all()
    no_judge = judge_agreement(items, metrics.drop(columns=list(metrics.columns[2:])), long)
    assert no_judge.empty and list(no_judge.columns) == list(JUDGE_COLUMNS)


def test_the_report_section_reads_within_systems_first_and_says_when_ratings_are_simulated():
    table = validity(*simulated(seed=2))
    ceiling = human_ceiling(rated(1.0), n_splits=20)
    no_judge = pd.DataFrame(columns=list(JUDGE_COLUMNS))
    lines = validity_markdown(table, ceiling, no_judge, simulated=True)
    assert lines[0] == "## Do automated metrics track engineers? (item level)"
    assert any("simulated" in line for line in lines)
    assert any("no judge configured" in line for line in lines)
    row = next(line for line in lines if line.startswith("| human_mean | bertscore_f1 |"))
    within, pooled, between = (cell.strip() for cell in row.split("|")[3:6])
    assert within.endswith("(80)") and abs(float(within.split()[0])) < 0.25
    assert float(pooled.split()[0]) > 0.9 and between.endswith("(5)")
    criteria = [line.split("|")[1].strip() for line in lines if line.count("|") == 7]
    assert criteria[1:] == ["---", *CRITERIA, MEAN]  # the ceiling table, header first
    plain = validity_markdown(table.iloc[:0], ceiling, no_judge)
    assert not any("simulated" in line for line in plain)
    assert any(line.startswith("No item-level correlations") for line in plain)
