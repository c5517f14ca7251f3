"""Research question 2: does each system's advice move the level toward the genre convention?

:func:`convention_following` summarises the per-example convention columns
(:func:`anchormix_kedro.evaluation.metric_table.convention_columns`) per system and genre
with bootstrap intervals; :func:`convention_markdown` writes that table in Markdown.
"""

from __future__ import annotations

import math

import pandas as pd

from anchormix_kedro.evaluation.statistics import bootstrap_mean, seeded_rng
from anchormix_kedro.evaluation.summaries import POOLED, order_systems

CONVENTION_TABLE_COLUMNS: tuple[str, ...] = (
    "system",
    "genre",
    "n",
    "n_with_move",
    "distance_before_db",
    "distance_after_db",
    "distance_after_ci_low",
    "distance_after_ci_high",
    "gain_toward_convention_db",
    "gain_ci_low",
    "gain_ci_high",
    "share_moved_toward",
    "share_within_iqr_after",
    "reference_distance_db",
)


def convention_following(
    table: pd.DataFrame,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Research question 2: per system and genre, does the advice move toward the convention?

    From the per-example table (:func:`convention_columns`): mean distance from the genre's
    training-split convention before the advice and after the advised move (with an
    interval), the mean gain toward it (positive: closer), the share of moves that bring the
    level closer and that land within the convention's interquartile range, and where the
    professional mixes sit (``reference_distance_db``). One row per (system, genre) plus
    genre :data:`POOLED` per system; ``n_with_move`` counts advice whose move is known.
    """
    rows = []
    for system in order_systems(table["system"]):
        by_system = table[(table["system"] == system) & table["convention_median_db"].notna()]
        genres = sorted(by_system["genre"].unique())
        for genre in [*genres, POOLED]:
            frame = by_system if genre == POOLED else by_system[by_system["genre"] == genre]
            if frame.empty:
                continue
            after = frame["convention_distance_after_db"].astype("Float64")
            gain = frame["convention_gain_db"].astype("Float64")
            moved = gain.dropna()
            rng_after, rng_gain = (
                seeded_rng(seed, system, genre, "after"),
                seeded_rng(seed, system, genre),
            )
            mean_after, after_low, after_high = bootstrap_mean(
                after, n_resamples, confidence, rng_after
            )
            mean_gain, gain_low, gain_high = bootstrap_mean(gain, n_resamples, confidence, rng_gain)
            within = frame["within_convention_iqr_after"].dropna().astype(float)
            rows.append(
                {
                    "system": system,
                    "genre": genre,
                    "n": len(frame),
                    "n_with_move": len(moved),
                    "distance_before_db": float(
                        frame["convention_distance_before_db"].astype(float).mean()
                    ),
                    "distance_after_db": mean_after,
                    "distance_after_ci_low": after_low,
                    "distance_after_ci_high": after_high,
                    "gain_toward_convention_db": mean_gain,
                    "gain_ci_low": gain_low,
                    "gain_ci_high": gain_high,
                    "share_moved_toward": float((moved > 0).mean()) if len(moved) else math.nan,
                    "share_within_iqr_after": float(within.mean()) if len(within) else math.nan,
                    "reference_distance_db": float(
                        frame["reference_convention_distance_db"].astype(float).mean()
                    ),
                }
            )
    return pd.DataFrame(rows, columns=list(CONVENTION_TABLE_COLUMNS))


def convention_markdown(frame: pd.DataFrame) -> str:
    """The per-genre convention table in Markdown (dB distances, shares in percent)."""

    def number(value: float, digits: int = 2) -> str:
        return "n/a" if pd.isna(value) else f"{value:.{digits}f}"

    def share(value: float) -> str:
        return "n/a" if pd.isna(value) else f"{value:.0%}"

    lines = [
        "| system | genre | n | before (dB) | after (dB) [CI] | gain toward (dB) [CI] "
        "| moved toward | within IQR | professional mix (dB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples(index=False):
        lines.append(
            f"| {r.system} | {r.genre} | {r.n} | {number(r.distance_before_db)} | "
            f"{number(r.distance_after_db)} [{number(r.distance_after_ci_low)}, "
            f"{number(r.distance_after_ci_high)}] | {number(r.gain_toward_convention_db)} "
            f"[{number(r.gain_ci_low)}, {number(r.gain_ci_high)}] | "
            f"{share(r.share_moved_toward)} | {share(r.share_within_iqr_after)} | "
            f"{number(r.reference_distance_db)} |"
        )
    return "\n".join(lines) + "\n"
