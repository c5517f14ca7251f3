"""Direction accuracy by the size of the imbalance: where a system starts to hear it.

Offsets are grouped by ``|gain_db|`` into bins an engineer would name (balanced, 2-3 dB,
4-6 dB, 7-9 dB, 10 dB and more); each cell is the share of correct directions (unparsed
advice counts as wrong) per condition and system, with its count of examples. Beside it,
whether the amounts a system states follow the true offsets (:func:`amount_tracking`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from anchormix_kedro.evaluation.conditions import AS_MIXED, order_conditions
from anchormix_kedro.evaluation.statistics import seeded_rng, song_bootstrap_statistic
from anchormix_kedro.evaluation.summaries import order_systems

#: ``(label, low, high)``: |gain| in dB, both ends included.
OFFSET_BINS: tuple[tuple[str, float, float], ...] = (
    ("balanced (within 1.5 dB)", 0.0, 1.5),
    ("2-3 dB", 1.5001, 3.5),
    ("4-6 dB", 3.5001, 6.5),
    ("7-9 dB", 6.5001, 9.5),
    (">= 10 dB", 9.5001, np.inf),
)
BY_OFFSET_COLUMNS = ("condition", "system", "offset", "n", "direction_accuracy")


def accuracy_by_offset(metrics: pd.DataFrame) -> pd.DataFrame:
    """Long table: condition, system, offset bin, examples, direction accuracy."""
    table = metrics.copy()
    if "condition" not in table.columns:
        table["condition"] = AS_MIXED
    size = pd.to_numeric(table["gain_db"], errors="coerce").abs()
    correct = table["direction_correct_score"].astype(float)
    rows = []
    for condition in order_conditions(table["condition"]):
        for system in order_systems(table["system"]):
            mine = (table["condition"] == condition) & (table["system"] == system)
            for label, low, high in OFFSET_BINS:
                chosen = mine & size.between(low, high)
                n = int(chosen.sum())
                rows.append(
                    {
                        "condition": condition,
                        "system": system,
                        "offset": label,
                        "n": n,
                        "direction_accuracy": float(correct[chosen].mean()) if n else np.nan,
                    }
                )
    return pd.DataFrame(rows, columns=list(BY_OFFSET_COLUMNS))


AMOUNT_TRACKING_COLUMNS = (
    "condition",
    "system",
    "n",
    "spearman",
    "ci_low",
    "ci_high",
    "n_songs",
)
AMOUNT_LABEL = "stated amount vs true offset (Spearman)"


def _spearman(stated: np.ndarray, true: np.ndarray) -> float:
    if len(stated) < 3 or np.ptp(stated) == 0 or np.ptp(true) == 0:
        return math.nan  # a constant amount has no rank order to follow the offsets with
    return float(stats.spearmanr(stated, true).statistic)


def amount_tracking(
    metrics: pd.DataFrame,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_column: str = "song",
) -> pd.DataFrame:
    """Spearman's rank correlation between the amount a system states and the true
    ``|gain_db|``, per condition and system, with an interval from resampling songs.

    Only advice with the right direction and an amount counts (the rows that have an
    ``amount_error_db``): a constant "about 7 dB" scores no correlation at all.
    """
    table = metrics.copy()
    if "condition" not in table.columns:
        table["condition"] = AS_MIXED
    rows = []
    for condition in order_conditions(table["condition"]):
        for system in order_systems(table["system"]):
            mine = table[
                (table["condition"] == condition)
                & (table["system"] == system)
                & table["amount_error_db"].notna()
            ]
            stated = pd.to_numeric(mine["predicted_amount_db"], errors="coerce").to_numpy(float)
            true = pd.to_numeric(mine["gain_db"], errors="coerce").abs().to_numpy(float)
            spearman, low, high, n_songs = song_bootstrap_statistic(
                lambda rows: _spearman(stated[rows], true[rows]),  # noqa: B023 (called here)
                mine[cluster_column].tolist(),
                n_resamples,
                confidence,
                seeded_rng(seed, "amount", condition, system),
            )
            rows.append(
                {
                    "condition": condition,
                    "system": system,
                    "n": len(mine),
                    "spearman": spearman,
                    "ci_low": low,
                    "ci_high": high,
                    "n_songs": n_songs,
                }
            )
    return pd.DataFrame(rows, columns=list(AMOUNT_TRACKING_COLUMNS))


def by_offset_markdown(
    table: pd.DataFrame, systems: list[str] | None = None, amounts: pd.DataFrame | None = None
) -> str:
    """Per condition, a table: one row per offset bin, one column per system; with
    ``amounts`` (:func:`amount_tracking`), a last row of the stated amounts' correlation."""
    if table.empty:
        return ""
    systems = systems or order_systems(table["system"])
    systems = [s for s in systems if s in set(table["system"])]
    lines = []
    for condition in order_conditions(table["condition"]):
        rows = table[table["condition"] == condition].set_index(["offset", "system"])
        lines += [
            f"Condition `{condition}`:",
            "",
            "| offset | " + " | ".join(systems) + " |",
            "|---|" + "---|" * len(systems),
        ]
        for label, _, _ in OFFSET_BINS:
            cells = []
            for system in systems:
                value, n = rows.loc[(label, system), ["direction_accuracy", "n"]]
                cells.append("n/a" if pd.isna(value) else f"{value:.2f} ({int(n)})")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        if amounts is not None and not amounts.empty:
            mine = amounts[amounts["condition"] == condition].set_index("system")
            cells = []
            for system in systems:
                if system not in mine.index or pd.isna(mine.loc[system, "spearman"]):
                    cells.append("n/a")
                    continue
                row = mine.loc[system]
                interval = (
                    f" [{row.ci_low:.2f}, {row.ci_high:.2f}]" if not pd.isna(row.ci_low) else ""
                )
                cells.append(f"{row.spearman:.2f}{interval} ({int(row.n)})")
            lines.append(f"| {AMOUNT_LABEL} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
