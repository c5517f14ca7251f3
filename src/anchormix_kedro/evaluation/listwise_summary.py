"""Per-system summaries of the listwise judge: mean rank, first places, pairwise win rates.

Examples of one song share its mix, so they are not independent: every interval here comes
from a percentile bootstrap that resamples *songs*, each with all its examples
(:func:`anchormix_kedro.evaluation.statistics.song_bootstrap_mean`), seeded per
(condition, system[, opponent]) as the other summaries are.

- :func:`rank_summary`: ``listwise_mean_rank_<condition>`` (1 = best) and
  ``listwise_first_place_<condition>`` per system, in the long format of
  :func:`anchormix_kedro.evaluation.summaries.summarize`, so they sit beside the pointwise
  scores in the ablation table;
- :func:`win_rates`: for each pair of systems, the share of examples where the first is
  ranked above the second (both ranked), with its interval;
- :func:`win_rate_markdown`: that matrix in Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from anchormix_kedro.evaluation.conditions import order_conditions
from anchormix_kedro.evaluation.statistics import seeded_rng, song_bootstrap_mean
from anchormix_kedro.evaluation.summaries import SUMMARY_COLUMNS, order_systems

WIN_RATE_COLUMNS: tuple[str, ...] = (
    "condition",
    "system",
    "opponent",
    "n",
    "songs",
    "wins",
    "win_rate",
    "ci_low",
    "ci_high",
)


def _ranked(ranks: pd.DataFrame) -> pd.DataFrame:
    ranked = ranks[ranks["listwise_rank"].notna()].copy()
    ranked["listwise_rank"] = ranked["listwise_rank"].astype(float)
    ranked["song"] = ranked["song"].astype(str)
    return ranked


def rank_summary(
    ranks: pd.DataFrame,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    systems: Sequence[str] = (),
) -> pd.DataFrame:
    """Mean rank and share of first places per system and condition (columns of ``summarize``).

    ``n`` counts the examples where the system was ranked; a system without any has NaN
    estimates. Systems in ``systems`` order (then the rest, see ``order_systems``).
    """
    rows = []
    ranked = _ranked(ranks)
    for condition in order_conditions(ranks["condition"]):
        of_condition = ranked[ranked["condition"] == condition]
        field = int(of_condition["n_ranked"].max()) if len(of_condition) else 0
        of_field = f" of {field}" if field else ""
        for system in order_systems(ranks["system"], systems):
            mine = of_condition[of_condition["system"] == system]
            for metric, values, label, better, digits in (
                (
                    "listwise_mean_rank",
                    mine["listwise_rank"],
                    f"LLM judge, listwise: mean rank (1 = best{of_field})",
                    "lower",
                    2,
                ),
                (
                    "listwise_first_place",
                    (mine["listwise_rank"] == 1).astype(float),
                    "LLM judge, listwise: ranked first (share)",
                    "higher",
                    3,
                ),
            ):
                rng = seeded_rng(seed, "listwise", condition, system, metric)
                estimate, low, high, songs = song_bootstrap_mean(
                    values, mine["song"], n_resamples, confidence, rng
                )
                rows.append(
                    {
                        "condition": condition,
                        "system": system,
                        "metric": metric,
                        "label": label,
                        "n": len(mine),
                        "estimate": estimate,
                        "ci_low": low,
                        "ci_high": high,
                        "better": better,
                        "digits": digits,
                        "n_songs": songs,
                    }
                )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def win_rates(
    ranks: pd.DataFrame,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    systems: Sequence[str] = (),
) -> pd.DataFrame:
    """How often each system is ranked above each other one, per condition.

    Over the examples where both are ranked: ``wins`` of ``n``, ``win_rate`` and its
    song-level bootstrap interval (``songs`` songs). Columns :data:`WIN_RATE_COLUMNS`.
    """
    rows = []
    ranked = _ranked(ranks)
    names = order_systems(ranks["system"], systems)
    for condition in sorted(set(ranks["condition"])):
        of_condition = ranked[ranked["condition"] == condition]
        table = of_condition.pivot_table(
            index=["example_id", "song"], columns="system", values="listwise_rank"
        )
        for system in names:
            for opponent in names:
                if opponent == system:
                    continue
                wins, songs_of_wins = pd.Series(dtype=float), []
                if system in table and opponent in table:  # both ranked somewhere
                    both = table[[system, opponent]].dropna()
                    wins = (both[system] < both[opponent]).astype(float)
                    songs_of_wins = list(both.index.get_level_values("song"))
                rng = seeded_rng(seed, "listwise-wins", condition, system, opponent)
                rate, low, high, songs = song_bootstrap_mean(
                    wins, songs_of_wins, n_resamples, confidence, rng
                )
                rows.append(
                    {
                        "condition": condition,
                        "system": system,
                        "opponent": opponent,
                        "n": len(wins),
                        "songs": songs,
                        "wins": int(wins.sum()),
                        "win_rate": rate,
                        "ci_low": low,
                        "ci_high": high,
                    }
                )
    return pd.DataFrame(rows, columns=list(WIN_RATE_COLUMNS))


def win_rate_markdown(
    table: pd.DataFrame, systems: Sequence[str] = (), confidence: float = 0.95
) -> str:
    """Per condition, a matrix: row system's win rate against the column system [interval]."""
    if table.empty:
        return "No listwise rankings: no win rates.\n"
    lines = []
    for condition, rows in table.groupby("condition", sort=True):
        names = order_systems(pd.concat([rows["system"], rows["opponent"]]), systems)
        cells = {
            (r.system, r.opponent): "n/a"
            if pd.isna(r.win_rate)
            else f"{r.win_rate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] (n={r.n})"
            for r in rows.itertuples(index=False)
        }
        lines += [
            f"Condition `{condition}`: share of examples where the row's system is ranked "
            f"above the column's, [{confidence:.0%} interval, songs resampled].",
            "",
            "| system | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for system in names:
            row = [cells.get((system, o), "-") if o != system else "-" for o in names]
            lines.append(f"| {system} | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)
