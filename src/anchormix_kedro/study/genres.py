"""Research question 5.2, genre norms: the ratings per genre, beside whether the advice
leaves the level inside that genre's professional range.

:func:`genre_table` gives, per genre, system and criterion, the mean rating with a
percentile-bootstrap interval over the genre's examples (each drawn example brings all its
ratings: raters of one example are not independent), and beside it, over the same
scenarios, the share of advice whose advised move leaves the target inside the usual range
(25th to 75th percentile) of the genre's professional mixes, and the mean distance from the
genre's median after the move (the evaluation's convention columns, ``level_after_db``
being the perturbed level plus the advised move). The study guarantees
``study_kit.min_examples_per_genre`` examples of each genre; with so few per genre the
intervals are wide, and the table says how many examples each row stands on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anchormix_kedro.evaluation.statistics import seeded_rng, song_bootstrap_mean

GENRE_COLUMNS: tuple[str, ...] = ("genre", "system", "criterion", "mean", "ci_low", "ci_high",
                                  "n_ratings", "n_raters", "n_examples", "share_within_range",
                                  "n_with_move", "distance_after_db")  # fmt: skip
RANGE_COLUMNS = ("within_convention_iqr_after", "convention_distance_after_db")
MEAN_OF_CRITERIA = "mean of criteria"


def genre_table(long: pd.DataFrame, metrics: pd.DataFrame | None = None, n_resamples: int = 1000,
                confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Per genre, system and criterion (and the mean of the criteria): columns
    :data:`GENRE_COLUMNS`. ``long``: :func:`~anchormix_kedro.study.effects.long_ratings`;
    ``metrics``: the evaluation's rows (``example_id``, ``system`` and the convention
    columns), as mixed."""
    if long.empty:
        return pd.DataFrame(columns=list(GENRE_COLUMNS))
    per_rating = long.pivot_table(index=["rater", "scenario_id", "example_id", "system", "genre"],
                                  columns="criterion", values="rating").reset_index()  # fmt: skip
    criteria = [c for c in long["criterion"].unique() if c in per_rating]
    per_rating[MEAN_OF_CRITERIA] = per_rating[criteria].mean(axis=1)
    ranges = _range_check(per_rating, metrics)
    rows = []
    for (genre, system), cell in per_rating.groupby(["genre", "system"], sort=True):
        for criterion in [*criteria, MEAN_OF_CRITERIA]:
            values = cell[["example_id", criterion]].dropna()
            rng = seeded_rng(seed, genre, system, criterion)
            _mean, low, high, n_examples = song_bootstrap_mean(
                values[criterion], values["example_id"], n_resamples, confidence, rng
            )
            if n_examples < 2:  # one example: no interval over examples
                low = high = np.nan
            rows.append({"genre": genre, "system": system, "criterion": criterion,
                         "mean": float(values[criterion].mean()), "ci_low": low, "ci_high": high,
                         "n_ratings": len(values), "n_raters": cell["rater"].nunique(),
                         "n_examples": n_examples, **ranges.get((genre, system), {})})  # fmt: skip
    return pd.DataFrame(rows, columns=list(GENRE_COLUMNS))


def _range_check(per_rating: pd.DataFrame, metrics: pd.DataFrame | None) -> dict:
    """(genre, system) -> where the advice leaves the level, over the rated scenarios."""
    if metrics is None or metrics.empty or not set(RANGE_COLUMNS) <= set(metrics.columns):
        return {}
    scenarios = per_rating[["example_id", "system", "genre"]].drop_duplicates()
    joined = scenarios.merge(metrics[["example_id", "system", *RANGE_COLUMNS]].astype(
        {"example_id": str, "system": str}), on=["example_id", "system"], how="left")  # fmt: skip
    out = {}
    for (genre, system), cell in joined.groupby(["genre", "system"]):
        within = cell["within_convention_iqr_after"].dropna().astype(bool)
        out[(genre, system)] = {
            "share_within_range": float(within.mean()) if len(within) else np.nan,
            "n_with_move": len(within),
            "distance_after_db": float(pd.to_numeric(cell["convention_distance_after_db"],
                                                     errors="coerce").mean()),
        }  # fmt: skip
    return out
