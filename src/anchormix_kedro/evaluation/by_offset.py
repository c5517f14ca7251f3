"""Direction accuracy by the size of the imbalance: where a system starts to hear it.

Offsets are grouped by ``|gain_db|`` into bins an engineer would name (balanced, 2-3 dB,
4-6 dB, 7-9 dB, 10 dB and more); each cell is the share of correct directions (unparsed
advice counts as wrong) per condition and system, with its count of examples.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from anchormix_kedro.evaluation.conditions import AS_MIXED, order_conditions
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


def by_offset_markdown(table: pd.DataFrame, systems: list[str] | None = None) -> str:
    """Per condition, a table: one row per offset bin, one column per system."""
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
        lines.append("")
    return "\n".join(lines)
