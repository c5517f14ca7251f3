"""Do automated metrics track engineers? Item-level validity with example-clustered intervals.

An *item* is one advice (one system, one example), scored by the mean of its raters and by
each metric. Pooling all systems' items answers the wrong question: if ratings depend only
on the system and a metric also differs by system, the pooled correlation is large and
"significant" although the metric cannot tell a system's better advice from its worse. So
:func:`metric_validity` reports ``within`` (among one system's items); ``within_pooled``,
the primary answer, the within-system correlation pooled over systems (Spearman: average
ranks taken within each system, centred on the system's mean rank, correlated over all
items; Pearson: values centred on each system's mean, correlated; with equally many items
per system and no ties the Spearman is the mean of the per-system rhos); ``pooled``; and
``between``, the correlation of the system means: the part of pooled the systems explain.

Intervals are percentile bootstraps clustered by example: a resample draws examples with
replacement and each brings all its items, which share audio and difficulty. A resample is
a row of frequency weights on the items, so all resamples are computed at once; weighted
average ranks equal the ranks of the resampled items, ties included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from anchormix_kedro.evaluation.correlation import _interval, _row_pearson
from anchormix_kedro.evaluation.summaries import POOLED, order_systems
from anchormix_kedro.vocabulary import CRITERIA

MEAN = "mean"  # the ceiling's row for each rater's mean of the criteria (items: human_mean)
HUMAN_COLUMNS: tuple[str, ...] = (*(f"human_{c}" for c in CRITERIA), "human_mean")
WITHIN, WITHIN_POOLED, POOLED_SCOPE, BETWEEN = "within", "within_pooled", "pooled", "between"
MIN_SYSTEMS_FOR_INTERVAL = 4
VALIDITY_COLUMNS: tuple[str, ...] = ("human", "metric", "scope", "system", "n_items",
                                     "n_examples", "spearman_rho", "spearman_ci_low",
                                     "spearman_ci_high", "pearson_r", "pearson_ci_low",
                                     "pearson_ci_high", "note")  # fmt: skip
CEILING_COLUMNS: tuple[str, ...] = ("criterion", "loro_spearman", "loro_ci_low", "loro_ci_high",
                                    "split_half", "split_half_ci_low", "split_half_ci_high",
                                    "n_raters", "n_items", "note")  # fmt: skip
JUDGE_COLUMNS: tuple[str, ...] = ("criterion", "scope", "system", "n_items", "judge_spearman",
                                  "ci_low", "ci_high", "human_loro_spearman", "note")  # fmt: skip
_STATISTICS = VALIDITY_COLUMNS[6:12]


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if missing := [c for c in columns if c not in frame.columns]:
        raise ValueError(f"{name} lacks column(s): {', '.join(missing)}")


def _ratings(long: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    _require(long, [*columns, "criterion", "rating"], "the long ratings")
    unknown = sorted(set(long["criterion"].astype(str)) - set(CRITERIA))
    if unknown:
        raise ValueError(f"criterion {unknown[0]!r} is not one of {', '.join(CRITERIA)}")
    data = long.astype(dict.fromkeys([*columns, "criterion"], str))
    return data.assign(rating=pd.to_numeric(long["rating"]).astype(float)).dropna(subset=["rating"])


def item_scores(long: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario: its example and system, ``n_raters``, ``human_<criterion>``
    (mean over raters) and ``human_mean`` (mean of the criteria's means)."""
    keys = ["example_id", "system", "scenario_id"]
    data = _ratings(long, ["rater", *keys])
    if data.empty:
        return pd.DataFrame(columns=[*keys, "n_raters", *HUMAN_COLUMNS])
    means = data.pivot_table(index=keys, columns="criterion", values="rating", aggfunc="mean")
    means = means.reindex(columns=list(CRITERIA)).add_prefix("human_")
    means["human_mean"] = means.mean(axis=1)
    means["n_raters"] = data.groupby(keys)["rater"].nunique()
    means = means.reset_index().sort_values(keys, ignore_index=True)
    return means.rename_axis(columns=None)[[*keys, "n_raters", *HUMAN_COLUMNS]]


# Weighted statistics. ``weights`` has a row per resample and a column per item: row 0 all
# ones (the data as observed), the others how often each item's example was drawn.
def _onehot(codes: np.ndarray) -> np.ndarray:
    return np.eye(int(codes.max()) + 1)[codes]


def _centred(values: np.ndarray, strata: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``values`` minus their weighted mean within each stratum, per row of ``weights``."""
    onehot = _onehot(strata)
    total = weights @ onehot
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(total > 0, ((weights * values) @ onehot) / total, 0.0)
    return values - means[:, strata]


def _r(sxy: np.ndarray, sxx: np.ndarray, syy: np.ndarray) -> np.ndarray:
    """Pearson's r from weighted sums of centred products (NaN where a measure is constant)."""
    denominator = np.sqrt(sxx * syy)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.where(denominator > 1e-12, sxy / denominator, np.nan), -1.0, 1.0)


def _within_ranks(values: np.ndarray, strata: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average ranks within strata, an item of weight w counting w times (ties shared)."""
    order = np.lexsort((values, strata))
    v, s = values[order], strata[order]
    starts = np.r_[True, (v[1:] != v[:-1]) | (s[1:] != s[:-1])]  # of each group of ties
    tied = np.add.reduceat(weights[:, order], np.flatnonzero(starts), axis=1)
    before = np.cumsum(tied, axis=1) - tied
    first = np.r_[True, s[starts][1:] != s[starts][:-1]]  # each stratum's first group
    stratum_start = np.maximum.accumulate(np.where(first, np.arange(first.size), 0))
    ranks, group = np.empty(weights.shape), np.cumsum(starts) - 1
    ranks[:, order] = (before - before[:, stratum_start] + (tied + 1) / 2)[:, group]
    return ranks


def _example_weights(examples: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Row 0 all ones; then per resample, how often each item's example was drawn."""
    n = int(examples.max()) + 1
    draws = np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    draws += np.arange(n_resamples)[:, None] * n  # a separate range of bins per resample
    counts = np.bincount(draws.ravel(), minlength=n_resamples * n).reshape(n_resamples, n)
    return np.vstack([np.ones(examples.size), counts[:, examples]])


def _forms(values: np.ndarray, systems: np.ndarray, weights: np.ndarray) -> dict:
    """Per (ranked, centring): centred ``c``, ``weights * c``, each system's sum of w c^2."""
    forms, onehot = {}, _onehot(systems)
    for ranked in (True, False):
        for scope, strata in ((WITHIN, systems), (POOLED_SCOPE, systems * 0)):
            v = _within_ranks(values, strata, weights) if ranked else values
            c = _centred(v, strata, weights)
            forms[ranked, scope] = (c, weights * c, (weights * c * c) @ onehot)
    return forms


def _correlations(fx: dict, fy: dict, onehot: np.ndarray) -> dict:
    """Per (ranked, scope): r in each system (resamples x systems), within_pooled, pooled."""
    out = {}
    for (ranked, scope), (_, wcx, sxx) in fx.items():
        cy, _, syy = fy[ranked, scope]
        sxy = (wcx * cy) @ onehot  # per system
        out[ranked, scope] = _r(sxy, sxx, syy)
        pooled = WITHIN_POOLED if scope == WITHIN else POOLED_SCOPE
        out[ranked, pooled] = _r(sxy.sum(axis=1), sxx.sum(axis=1), syy.sum(axis=1))
    return out


def _summary(spearman: np.ndarray, pearson: np.ndarray, confidence: float) -> dict:
    return dict(zip(_STATISTICS, (float(spearman[0]), *_interval(spearman[1:], confidence),
                                  float(pearson[0]), *_interval(pearson[1:], confidence)),
                    strict=True))  # fmt: skip


# Metric validity.
def _join(items, metrics, human_columns, metric_columns) -> pd.DataFrame:
    keys, parts = ["example_id", "system"], []
    for name, frame, columns in (("items", items, human_columns),
                                 ("metrics", metrics, metric_columns)):  # fmt: skip
        _require(frame, [*keys, *columns], name)
        part = frame[[*keys, *columns]].astype(dict.fromkeys(keys, str))
        twice = part.loc[part.duplicated(keys), keys].to_numpy()
        if len(twice):
            raise ValueError(f"{name} has more than one row for example_id {twice[0][0]!r}, "
                             f"system {twice[0][1]!r}")  # fmt: skip
        parts.append(part.assign(**{c: pd.to_numeric(part[c], errors="coerce") for c in columns}))
    return parts[0].merge(parts[1], on=keys, how="inner")


def _scope_row(scope, system, examples, spearman, pearson, settings) -> dict:
    confidence, min_items = settings
    row = {"scope": scope, "system": system, "n_items": examples.size,
           "n_examples": np.unique(examples).size, "note": ""}  # fmt: skip
    if examples.size < min_items:
        return {**row, "note": f"{examples.size} items: at least {min_items} needed"}
    if not np.isfinite(pearson[0]):  # _r gives NaN exactly where a measure is constant
        where = " within every system" if scope == WITHIN_POOLED else ""
        return {**row, "note": f"a measure is constant{where}: no correlation defined"}
    return {**row, **_summary(spearman, pearson, confidence)}


def _between_row(x, y, examples, systems, weights, confidence) -> dict:
    present = np.unique(systems)
    k, onehot = present.size, _onehot(systems)[:, present]
    row = {"scope": BETWEEN, "system": POOLED, "n_items": k, "n_examples": np.unique(examples).size,
           "note": f"{k} system means; the interval resamples examples, not systems"}  # fmt: skip
    with np.errstate(invalid="ignore", divide="ignore"):  # a system no example drew: NaN
        mx, my = (((weights * v) @ onehot) / (weights @ onehot) for v in (x, y))
    if k < 3 or np.ptp(mx[0]) == 0 or np.ptp(my[0]) == 0:
        return {**row, "note": f"{k} systems, means all equal or fewer than 3: no correlation"}
    spearman = _row_pearson(stats.rankdata(mx, axis=1), stats.rankdata(my, axis=1))
    row.update(_summary(spearman, _row_pearson(mx, my), confidence))
    if k < MIN_SYSTEMS_FOR_INTERVAL:
        row.update(dict.fromkeys(_STATISTICS[1:3] + _STATISTICS[4:], math.nan), note=f"{k} "
                   f"system means: no interval (at least {MIN_SYSTEMS_FOR_INTERVAL} systems)")  # fmt: skip
    return row


def _cell_rows(columns, human, metric, codes, weights, cache, settings) -> list[dict]:
    """One (human, metric) pair's rows; ``cache`` holds :func:`_forms` shared by pairs."""
    keep = np.isfinite(columns[human]) & np.isfinite(columns[metric])
    label, key = {"human": human, "metric": metric}, keep.tobytes()
    if not keep.any():
        return [{**label, "scope": POOLED_SCOPE, "system": POOLED, "n_items": 0, "note": "no item"}]
    x, y = columns[metric][keep], columns[human][keep]
    examples, systems, w = codes["example"][keep], codes["system"][keep], weights[:, keep]
    for column, values in ((metric, x), (human, y)):
        if (column, key) not in cache:
            cache[column, key] = _forms(values, systems, w)
    r = _correlations(cache[metric, key], cache[human, key], _onehot(systems))
    rows = [_scope_row(WITHIN, name, examples[systems == i], r[True, WITHIN][:, i],
                       r[False, WITHIN][:, i], settings)
            for i, name in enumerate(codes["names"]) if (systems == i).any()]  # fmt: skip
    rows += [_scope_row(scope, POOLED, examples, r[True, scope], r[False, scope], settings)
             for scope in (WITHIN_POOLED, POOLED_SCOPE)]  # fmt: skip
    rows.append(_between_row(x, y, examples, systems, w, settings[0]))
    return [{**label, **row} for row in rows]


def metric_validity(items: pd.DataFrame, metrics: pd.DataFrame, human_columns: Sequence[str],
                    metric_columns: Sequence[str], n_resamples: int = 1000,
                    confidence: float = 0.95, seed: int = 0,
                    min_items: int = 5) -> pd.DataFrame:  # fmt: skip
    """Each human column against each metric column by scope (module docstring; columns
    :data:`VALIDITY_COLUMNS`), ``items`` and ``metrics`` joined on example and system; items
    missing a value are left out per pair. Too few items (under ``min_items``, at least 3)
    or a constant measure give NaN and a ``note``. One seeded draw of examples serves all."""
    joined = _join(items, metrics, list(human_columns), list(metric_columns))
    if joined.empty:
        return pd.DataFrame(columns=list(VALIDITY_COLUMNS))
    names = order_systems(joined["system"])
    codes = {"names": names, "example": pd.factorize(joined["example_id"])[0],
             "system": joined["system"].map({s: i for i, s in enumerate(names)}).to_numpy()}  # fmt: skip
    weights = _example_weights(codes["example"], int(n_resamples), seed)
    settings, cache = (float(confidence), max(3, int(min_items))), {}
    columns = {c: joined[c].to_numpy(float) for c in [*human_columns, *metric_columns]}
    rows = [row for human in human_columns for metric in metric_columns
            for row in _cell_rows(columns, human, metric, codes, weights, cache, settings)]  # fmt: skip
    return pd.DataFrame(rows, columns=list(VALIDITY_COLUMNS))


# The human ceiling.
def _loro(matrix, strata, n_resamples, confidence, seed, min_items) -> dict:
    rated = np.isfinite(matrix)
    count, total, values = rated.sum(axis=0), np.nansum(matrix, axis=0), []
    for own, keep in zip(matrix, rated & (count >= 2), strict=True):
        if keep.sum() >= min_items:
            others = (total[keep] - own[keep]) / (count[keep] - 1)  # the other raters' mean
            forms = (_forms(v, strata[keep], np.ones((1, keep.sum()))) for v in (own[keep], others))
            values.append(_correlations(*forms, _onehot(strata[keep]))[True, WITHIN_POOLED][0])
    values = np.asarray([v for v in values if np.isfinite(v)])  # a constant rater has none
    row = {"n_raters": values.size, "n_items": int((count >= 2).sum())}
    if values.size < 2:
        return {**row, "note": f"{values.size} raters with {min_items}+ items rated by others "
                               "and varied ratings: LORO needs 2"}  # fmt: skip
    draws = np.random.default_rng(seed).integers(0, values.size, (n_resamples, values.size))
    low, high = _interval(values[draws].mean(axis=1), confidence)
    return {**row, "loro_spearman": float(values.mean()), "loro_ci_low": low, "loro_ci_high": high}


def _split_half(matrix, strata, n_splits, seed) -> dict:
    n_raters = matrix.shape[0]
    first = np.random.default_rng(seed).random((n_splits, n_raters)).argsort(axis=1)
    first = first < n_raters // 2  # a random half of the raters per split
    rated, values = np.isfinite(matrix).astype(float), np.nan_to_num(matrix)
    halves = [(h @ values, h @ rated) for h in (first.astype(float), (~first).astype(float))]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = [np.where(count > 0, total / count, 0.0) for total, count in halves]
    both = ((halves[0][1] > 0) & (halves[1][1] > 0)).astype(float)  # rated in both halves
    xc, yc = (_centred(m, strata, both) for m in means)
    r = _r(*((both * a * b).sum(axis=1) for a, b in ((xc, yc), (xc, xc), (yc, yc))))
    with np.errstate(invalid="ignore", divide="ignore"):  # Spearman-Brown for two halves
        corrected = np.where((r > -1) & (both.sum(axis=1) >= 3), 2 * r / (1 + r), np.nan)
    finite = corrected[np.isfinite(corrected)]
    if n_raters < 2 or finite.size < 0.5 * n_splits:
        return {"note": "split-half needs 2 raters and 3 items rated in both halves"}
    low, high = np.percentile(finite, [2.5, 97.5])
    return {"split_half": float(finite.mean()), "split_half_ci_low": float(low),
            "split_half_ci_high": float(high)}  # fmt: skip


def human_ceiling(long: pd.DataFrame, n_splits: int = 200, seed: int = 0,
                  n_resamples: int = 1000, confidence: float = 0.95, min_items: int = 5,
                  within_system: bool = False) -> pd.DataFrame:  # fmt: skip
    """Engineers' agreement per criterion and for each rater's mean of the criteria
    (:data:`MEAN`); columns :data:`CEILING_COLUMNS`. ``loro_*``, leave one rater out: per
    rater with ``min_items`` items others rated too, Spearman with the *other* raters' mean;
    the mean over raters, interval over raters: one more engineer's agreement, the ceiling
    for an automatic judge. ``split_half*``: per random split of the raters into halves,
    Pearson of the halves' item means (items rated in both), Spearman-Brown corrected
    (2r/(1+r)), averaged over ``n_splits``; ``_ci_low``/``_ci_high`` are the splits' 2.5 and
    97.5 percentiles, a spread over splits, not a confidence interval. ``within_system``
    centres ranks and values within systems first (items are all systems' scenarios)."""
    data = _ratings(long, ["rater", "scenario_id", *(["system"] if within_system else [])])
    per_rater = data.groupby(["rater", "scenario_id"], as_index=False)["rating"].mean()
    systems = data.groupby("scenario_id")["system"].first() if within_system else None
    rows = []
    for criterion in (*CRITERIA, MEAN):
        part = per_rater if criterion == MEAN else data[data["criterion"] == criterion]
        table = part.pivot_table(index="rater", columns="scenario_id", values="rating")
        if table.empty:
            rows.append({"criterion": criterion, "n_raters": 0, "n_items": 0, "note": "no ratings"})
            continue
        strata = (pd.factorize(systems.reindex(table.columns))[0] if within_system
                  else np.zeros(table.shape[1], dtype=int))  # fmt: skip
        matrix = table.to_numpy(float)
        loro = _loro(matrix, strata, int(n_resamples), float(confidence), seed, min_items)
        half = _split_half(matrix, strata, int(n_splits), seed)
        note = "; ".join(p.pop("note") for p in (loro, half) if "note" in p)
        rows.append({"criterion": criterion, **loro, **half, "note": note})
    return pd.DataFrame(rows, columns=list(CEILING_COLUMNS))


def judge_agreement(items: pd.DataFrame, metrics: pd.DataFrame, long: pd.DataFrame,
                    n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                    min_items: int = 5, n_splits: int = 200) -> pd.DataFrame:  # fmt: skip
    """``judge_<criterion>`` against ``human_<criterion>`` (:data:`JUDGE_COLUMNS`): Spearman
    ``within``, ``within_pooled`` and ``pooled`` as in :func:`metric_validity`, beside the
    LORO ceiling (:func:`human_ceiling`; within systems but for the pooled row). Criteria
    without judge scores are left out: with no judge configured the frame is empty."""
    judged = [c for c in CRITERIA if f"judge_{c}" in metrics
              and pd.to_numeric(metrics[f"judge_{c}"], errors="coerce").notna().any()]  # fmt: skip
    if not judged:
        return pd.DataFrame(columns=list(JUDGE_COLUMNS))
    options = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    loro = {within: human_ceiling(long, n_splits, within_system=within, min_items=min_items,
                                  **options).set_index("criterion")["loro_spearman"]
            for within in (True, False)}  # fmt: skip
    table = metric_validity(items, metrics, [f"human_{c}" for c in judged],
                            [f"judge_{c}" for c in judged], min_items=min_items, **options)  # fmt: skip
    table = table[(table["human"].str[6:] == table["metric"].str[6:]) & (table["scope"] != BETWEEN)]
    rows = [{"criterion": r.metric[6:], "scope": r.scope, "system": r.system, "n_items": r.n_items,
             "judge_spearman": r.spearman_rho, "ci_low": r.spearman_ci_low,
             "ci_high": r.spearman_ci_high, "note": r.note,
             "human_loro_spearman": loro[r.scope != POOLED_SCOPE].get(r.metric[6:], math.nan)}
            for r in table.itertuples(index=False)]  # fmt: skip
    return pd.DataFrame(rows, columns=list(JUDGE_COLUMNS))


# The report.
def _ci(value: object, low: object = None, high: object = None) -> str:
    text = "n/a" if pd.isna(value) else f"{float(value):.2f}"
    return text if pd.isna(low) or pd.isna(high) else f"{text} [{low:.2f}, {high:.2f}]"


def _metric_lines(validity: pd.DataFrame) -> list[str]:
    judged = validity["metric"].str.startswith("judge_")
    same = judged & (validity["human"].str[6:] == validity["metric"].str[6:])
    shown = validity[((validity["human"] == "human_mean") | same) & (validity["scope"] != WITHIN)]
    cells = shown.assign(cell=[f"n/a ({r.note})" if pd.isna(r.spearman_rho) else
                               f"{_ci(r.spearman_rho, r.spearman_ci_low, r.spearman_ci_high)} "
                               f"({r.n_items})" for r in shown.itertuples(index=False)])  # fmt: skip
    wide = cells.pivot(index=["human", "metric"], columns="scope", values="cell")
    wide = wide.reindex(columns=[WITHIN_POOLED, POOLED_SCOPE, BETWEEN]).fillna("n/a")
    return ["| engineers | metric | within systems rho [CI] (items) | pooled rho [CI] (items) | "
            "between systems rho (systems) |", "|---|---|---|---|---|",
            *(f"| {h} | {m} | {' | '.join(row)} |" for (h, m), row in wide.iterrows())]  # fmt: skip


def _judge_lines(judge: pd.DataFrame) -> list[str]:
    if judge.empty:
        return ["No LLM judge scores (no judge configured): no comparison with the ceiling."]
    lines = ["| criterion | judge within systems rho [CI] | one engineer within systems | "
             "judge pooled rho [CI] | one engineer pooled |", "|---|---|---|---|---|"]  # fmt: skip
    shown = [WITHIN_POOLED, POOLED_SCOPE]
    w, p = (judge[judge["scope"] == s].set_index("criterion") for s in shown)
    for c in w.index.intersection(p.index):
        cells = [f"{_ci(*f.loc[c, ['judge_spearman', 'ci_low', 'ci_high']])} | "
                 f"{_ci(f.loc[c, 'human_loro_spearman'])}" for f in (w, p)]  # fmt: skip
        lines.append(f"| {c} | {cells[0]} | {cells[1]} |")
    return lines


def validity_markdown(validity: pd.DataFrame, ceiling: pd.DataFrame, judge: pd.DataFrame,
                      simulated: bool = False) -> list[str]:  # fmt: skip
    """The report section: how to read it, metrics vs engineers, the ceiling, the judge."""
    lines = ["## Do automated metrics track engineers? (item level)", ""]
    if simulated:
        lines += ["**The ratings here are simulated, not engineers': these numbers test the "
                  "analysis, not the metrics.**", ""]  # fmt: skip
    lines += ["An item is one system's advice on one example, scored by its raters' mean. "
              "**Within systems** is the primary answer: among one system's advice (ranks taken "
              "within each system, pooled over systems), does the metric tell better advice from "
              "worse? **Pooled** mixes in the differences between systems, which **between** "
              "(the correlation of the system means) shows: it is large when systems differ in "
              "both, even if the metric says nothing about single advice. Intervals: bootstrap "
              "over examples, each drawn example with all its items.", ""]  # fmt: skip
    if validity.empty:
        lines += ["No item-level correlations: no rated advice matches the metric table.", ""]
    else:
        lines += ["### Metrics against the engineers", "", *_metric_lines(validity), ""]
    lines += ["### The human ceiling", "",
              "One engineer against the others' mean (leave-one-rater-out Spearman) is the "
              "ceiling for an automatic judge. Split-half (Spearman-Brown corrected) is the item "
              "means' reliability; its range is a spread over splits, not a confidence interval. "
              "The first interval resamples raters only: raters share items, so it is narrow.",
              "", "| criterion | one engineer vs the others, rho [raters resampled] | split-half [2.5-97.5% "
              "of splits] | raters | items | note |", "|---|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {r.criterion} | {_ci(r.loro_spearman, r.loro_ci_low, r.loro_ci_high)} | "
              f"{_ci(r.split_half, r.split_half_ci_low, r.split_half_ci_high)} | {r.n_raters} "
              f"| {r.n_items} | {'' if pd.isna(r.note) else r.note} |"
              for r in ceiling.itertuples(index=False)]  # fmt: skip
    return [*lines, "", "### The LLM judge against the ceiling", "", *_judge_lines(judge), ""]
