"""How well automated metrics agree with people, and with the truth of the perturbation.

:func:`correlate` gives Pearson's r and Spearman's rho of two measures with scipy's
p-values and percentile-bootstrap confidence intervals (pairs resampled, seeded).
:func:`correlation_table` does so for every pair of an x and a y column, per system and
pooled; :func:`plot_heatmap` draws one table as a heatmap.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from anchormix_kedro.evaluation.summaries import POOLED, order_systems

CORRELATION_COLUMNS: tuple[str, ...] = (
    "comparison",
    "system",
    "x",
    "y",
    "n",
    "pearson_r",
    "pearson_p",
    "pearson_ci_low",
    "pearson_ci_high",
    "spearman_rho",
    "spearman_p",
    "spearman_ci_low",
    "spearman_ci_high",
    "note",
)


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row of ``x`` with the same row of ``y`` (NaN where constant)."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / denominator
    r[denominator <= 1e-12] = np.nan
    return np.clip(r, -1.0, 1.0)


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if finite.size < 0.5 * draws.size:  # most resamples constant: no honest interval
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(low), float(high)


def correlate(
    x: Sequence[float],
    y: Sequence[float],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_pairs: int = 3,
) -> dict[str, float | int | str]:
    """Pearson and Spearman of paired values, p-values (scipy) and bootstrap intervals.

    Pairs with a missing value are dropped. Fewer than ``min_pairs`` pairs or a constant
    measure give NaNs with a ``note`` saying why. Intervals come from ``n_resamples``
    resamples of the pairs (percentile method); Spearman ranks each resample afresh.
    """
    xs = pd.to_numeric(pd.Series(list(x), dtype="object"), errors="coerce").to_numpy(float)
    ys = pd.to_numeric(pd.Series(list(y), dtype="object"), errors="coerce").to_numpy(float)
    if xs.size != ys.size:
        raise ValueError(f"x has {xs.size} values but y has {ys.size}: they pair up")
    keep = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    result: dict[str, float | int | str] = {
        "n": int(xs.size),
        **dict.fromkeys(CORRELATION_COLUMNS[5:13], math.nan),
        "note": "",
    }
    if xs.size < max(3, int(min_pairs)):
        result["note"] = f"{xs.size} pairs: at least {max(3, int(min_pairs))} needed"
        return result
    if np.ptp(xs) == 0 or np.ptp(ys) == 0:
        result["note"] = "a measure is constant: no correlation defined"
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        pearson = stats.pearsonr(xs, ys)
        spearman = stats.spearmanr(xs, ys)
    rng = np.random.default_rng(int(seed))
    draws = rng.integers(0, xs.size, size=(int(n_resamples), xs.size))
    bx, by = xs[draws], ys[draws]
    pearson_low, pearson_high = _interval(_row_pearson(bx, by), confidence)
    ranks_x = stats.rankdata(bx, axis=1)
    ranks_y = stats.rankdata(by, axis=1)
    spearman_low, spearman_high = _interval(_row_pearson(ranks_x, ranks_y), confidence)
    result.update(
        pearson_r=float(pearson.statistic),
        pearson_p=float(pearson.pvalue),
        pearson_ci_low=pearson_low,
        pearson_ci_high=pearson_high,
        spearman_rho=float(spearman.statistic),
        spearman_p=float(spearman.pvalue),
        spearman_ci_low=spearman_low,
        spearman_ci_high=spearman_high,
    )
    return result


def correlation_table(
    frame: pd.DataFrame,
    x_columns: Sequence[str],
    y_columns: Sequence[str],
    comparison: str,
    group_column: str = "system",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_pairs: int = 3,
) -> pd.DataFrame:
    """:func:`correlate` for every (x, y) column pair, per system and pooled (:data:`POOLED`).

    ``comparison`` labels the rows (e.g. ``human_vs_automated``). Columns
    :data:`CORRELATION_COLUMNS`. Each cell's resampling is seeded from ``seed`` and its
    names, so results do not depend on which other columns are present.
    """
    groups = [(g, frame[frame[group_column] == g]) for g in order_systems(frame[group_column])]
    groups.append((POOLED, frame))
    rows = []
    for group, data in groups:
        for x in x_columns:
            for y in y_columns:
                if x == y:
                    continue
                cell_seed = zlib.crc32(f"{seed}|{comparison}|{group}|{x}|{y}".encode())
                values = correlate(
                    data[x].astype("Float64"),
                    data[y].astype("Float64"),
                    n_resamples,
                    confidence,
                    cell_seed,
                    min_pairs,
                )
                rows.append({"comparison": comparison, "system": group, "x": x, "y": y, **values})
    return pd.DataFrame(rows, columns=list(CORRELATION_COLUMNS))


def plot_heatmap(
    table: pd.DataFrame,
    panels: Sequence[tuple[str, str]],
    statistic: str = "spearman_rho",
    system: str = POOLED,
):
    """One heatmap panel per ``(comparison, title)`` of ``table``: rows x, columns y.

    Cells show the statistic (``*`` where its p-value is below 0.05); empty cells are grey.
    A panel whose comparison has no rows says so instead of drawing.
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: figures are saved by the catalog, never shown
    import matplotlib.pyplot as plt

    p_column = statistic.split("_")[0] + "_p"
    shapes = []
    for comparison, _ in panels:
        data = table[(table["comparison"] == comparison) & (table["system"] == system)]
        shapes.append((data["x"].nunique(), data["y"].nunique()))
    width = sum(max(3.0, 0.75 * ny + 2.5) for _, ny in shapes)
    height = max(3.0, 0.5 * max((nx for nx, _ in shapes), default=4) + 2.0)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width, height), squeeze=False, layout="constrained"
    )
    image = None
    for ax, (comparison, title) in zip(axes[0], panels, strict=True):
        data = table[(table["comparison"] == comparison) & (table["system"] == system)]
        if data.empty:
            ax.axis("off")
            ax.set_title(title, fontsize=10)
            ax.text(0.5, 0.5, "No data", ha="center", va="center")
            continue
        xs, ys = list(dict.fromkeys(data["x"])), list(dict.fromkeys(data["y"]))
        grid = data.pivot(index="x", columns="y", values=statistic).reindex(index=xs, columns=ys)
        p_values = data.pivot(index="x", columns="y", values=p_column).reindex(index=xs, columns=ys)
        values = grid.to_numpy(dtype=float)
        cmap = matplotlib.colormaps["RdBu_r"].copy()
        cmap.set_bad("#dddddd")
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(len(ys)), ys, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(xs)), xs, fontsize=8)
        for i in range(len(xs)):
            for j in range(len(ys)):
                value = values[i, j]
                if np.isfinite(value):
                    star = "*" if p_values.iat[i, j] < 0.05 else ""
                    ax.text(j, i, f"{value:.2f}{star}", ha="center", va="center", fontsize=7)
        ax.set_title(title, fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label=statistic.replace("_", " "))
    scope = "pooled over systems" if system == POOLED else f"system {system}"
    fig.suptitle(f"{statistic.replace('_', ' ')}, {scope} (* p < 0.05)", fontsize=11)
    return fig
