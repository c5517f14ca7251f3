"""Inter-rater agreement: Krippendorff's alpha (:func:`krippendorff_alpha`, from its
definition through the coincidence matrix; nominal, ordinal, interval and ratio metrics),
per criterion (:func:`rater_agreement`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from anchormix_kedro.vocabulary import CRITERIA

LEVELS: tuple[str, ...] = ("nominal", "ordinal", "interval", "ratio")


def _distances(values: np.ndarray, totals: np.ndarray, level: str) -> np.ndarray:
    """Squared difference ``delta^2(c, k)`` between every two values, for the metric."""
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    if level == "interval":
        return np.subtract.outer(values, values) ** 2
    if level == "ratio":
        sums = np.add.outer(values, values)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(sums != 0, np.subtract.outer(values, values) / sums, 0.0)
        return ratio**2
    if level == "ordinal":
        # sum_{g=c}^{k} n_g - (n_c + n_k) / 2 equals mid_k - mid_c, mid = cumsum - n / 2.
        middle = np.cumsum(totals) - totals / 2.0
        return np.subtract.outer(middle, middle) ** 2
    raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


def krippendorff_alpha(
    reliability_data: Sequence[Sequence[float]] | np.ndarray, level: str
) -> float:
    """Krippendorff's alpha of a raters x units matrix (NaN: not rated), ``1 - D_o / D_e``.

    Values of a unit pair up across raters in a coincidence matrix (a unit rated by ``m``
    raters adds ``1 / (m - 1)`` per ordered pair); units with fewer than two ratings do not
    count. ``level`` is ``nominal``, ``ordinal``, ``interval`` or ``ratio``. Returns NaN when
    fewer than two values pair up or all pairable values are equal (alpha is undefined).
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    data = np.asarray(reliability_data, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"reliability data must be raters x units (2-D), got shape {data.shape}")
    rated = ~np.isnan(data)
    pairable = rated.sum(axis=0) >= 2
    data = data[:, pairable]
    values = np.unique(data[~np.isnan(data)])
    if values.size == 0:
        return math.nan
    position = {value: i for i, value in enumerate(values)}
    coincidences = np.zeros((values.size, values.size))
    for unit in data.T:
        present = unit[~np.isnan(unit)]
        counts = np.bincount([position[v] for v in present], minlength=values.size).astype(float)
        coincidences += (np.outer(counts, counts) - np.diag(counts)) / (present.size - 1)
    totals = coincidences.sum(axis=1)
    n = totals.sum()
    if n < 2:
        return math.nan
    distances = _distances(values, totals, level)
    observed = (coincidences * distances).sum()
    expected = (np.outer(totals, totals) * distances).sum() / (n - 1)
    if expected == 0:
        return math.nan
    return float(1.0 - observed / expected)


AGREEMENT_COLUMNS: tuple[str, ...] = (
    "criterion",
    "level",
    "alpha",
    "n_raters",
    "n_scenarios",
    "n_ratings",
    "note",
)


def rater_agreement(
    ratings: pd.DataFrame, levels: Sequence[str] = ("ordinal", "interval")
) -> pd.DataFrame:
    """Krippendorff's alpha of each criterion (and of their mean) at each level.

    ``n_scenarios`` and ``n_ratings`` count scenarios rated by at least two raters and their
    ratings; ``note`` says why alpha is missing where it is.
    """
    rows = []
    data = ratings.copy()
    if not data.empty:
        data["mean"] = data[list(CRITERIA)].astype(float).mean(axis=1)
    for criterion in (*CRITERIA, "mean"):
        if data.empty:
            matrix = np.empty((0, 0))
        else:
            matrix = data.pivot_table(
                index="rater", columns="scenario_id", values=criterion, aggfunc="first"
            ).to_numpy(dtype=float)
        n_raters = matrix.shape[0]
        shared = (~np.isnan(matrix)).sum(axis=0) >= 2 if matrix.size else np.array([], bool)
        n_scenarios = int(shared.sum())
        n_ratings = int((~np.isnan(matrix[:, shared])).sum()) if matrix.size else 0
        for level in levels:
            note = ""
            alpha = math.nan
            if n_raters < 2 or n_scenarios == 0:
                note = "needs at least two raters rating the same scenarios"
            else:
                alpha = krippendorff_alpha(matrix, level)
                if math.isnan(alpha):
                    note = "undefined: every shared rating is the same"
            rows.append(
                {
                    "criterion": criterion,
                    "level": level,
                    "alpha": alpha,
                    "n_raters": n_raters,
                    "n_scenarios": n_scenarios,
                    "n_ratings": n_ratings,
                    "note": note,
                }
            )
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))
