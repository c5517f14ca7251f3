"""Systems compared with a reference system (the advisor) on the same examples: paired
differences with intervals and p-values from a bootstrap over songs."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from anchormix_kedro.evaluation.conditions import AS_MIXED, order_conditions
from anchormix_kedro.evaluation.statistics import paired_song_bootstrap, seeded_rng
from anchormix_kedro.evaluation.summaries import (
    AUTOMATED_METRICS,
    BETTER_WORDS,
    MetricSpec,
    mlflow_key,
    order_systems,
)

COMPARISON_COLUMNS: tuple[str, ...] = (
    "condition",
    "system",
    "reference",
    "metric",
    "label",
    "n",
    "n_songs",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "better",
    "digits",
)


def paired_comparisons(
    table: pd.DataFrame,
    reference: str,
    specs: Sequence[MetricSpec] = AUTOMATED_METRICS,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_column: str = "song",
    example_column: str = "example_id",
    group_column: str = "system",
) -> pd.DataFrame:
    """Every other system minus ``reference`` on the same examples, per metric: the
    difference, its interval and a two-sided p-value from a paired bootstrap over songs.

    Long format, columns :data:`COMPARISON_COLUMNS`; empty when ``reference`` has no rows.
    A condition column, when the table has several, should be filtered first.
    """
    rows = []
    base = table[table[group_column] == reference].set_index(example_column)
    if base.empty:
        return pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    for system in order_systems(table[group_column]):
        if system == reference:
            continue
        other = table[table[group_column] == system].set_index(example_column)
        shared = other.index.intersection(base.index)
        for spec in specs:
            if spec.column not in table.columns or spec.column == "latency_s":
                continue
            kind = "balanced_f1" if spec.kind == "balanced_f1" else "mean"
            first, second = other.loc[shared, spec.column], base.loc[shared, spec.column]
            if kind == "mean":
                first = pd.to_numeric(first.astype("Float64"), errors="coerce")
                second = pd.to_numeric(second.astype("Float64"), errors="coerce")
                if first.isna().all() or second.isna().all():
                    continue
            result = paired_song_bootstrap(
                first,
                second,
                base.loc[shared, cluster_column],
                kind,
                n_resamples,
                confidence,
                seeded_rng(seed, "paired", system, reference, spec.name),
            )
            rows.append(
                {
                    "condition": None,
                    "system": system,
                    "reference": reference,
                    "metric": spec.name,
                    "label": spec.label,
                    **result,
                    "better": BETTER_WORDS[spec.higher_is_better],
                    "digits": spec.digits,
                }
            )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def paired_comparisons_by_condition(table: pd.DataFrame, reference: str, **options) -> pd.DataFrame:
    """:func:`paired_comparisons` within each condition (``as_mixed`` for a table without
    a condition column), stacked with a ``condition`` column."""
    parts = []
    conditions = (
        order_conditions(table["condition"]) if "condition" in table.columns else [AS_MIXED]
    )
    for condition in conditions:
        rows = table if "condition" not in table.columns else table[table["condition"] == condition]
        parts.append(paired_comparisons(rows, reference, **options).assign(condition=condition))
    if not parts:
        return pd.DataFrame(columns=list(COMPARISON_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(COMPARISON_COLUMNS)]


def comparison_metrics_for_mlflow(comparisons: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{"<condition>/<system>_minus_<reference>.<metric>.<stat>": {"value", "step"}}``."""
    metrics: dict[str, dict[str, float]] = {}
    for row in comparisons.itertuples(index=False):
        key = mlflow_key(f"{row.condition}/{row.system}_minus_{row.reference}.{row.metric}")
        for stat in ("difference", "ci_low", "ci_high", "p_value"):
            value = getattr(row, stat)
            if value is not None and not pd.isna(value):
                metrics[f"{key}.{stat}"] = {"value": float(value), "step": 0}
    return metrics


def comparison_markdown(comparisons: pd.DataFrame, confidence: float = 0.95) -> str:
    """The paired comparisons as a Markdown table: one row per metric, one column per system."""
    if comparisons.empty:
        return ""
    reference = comparisons["reference"].iloc[0]
    systems = order_systems(comparisons["system"])
    lines = [
        f"**Each system minus `{reference}`, on the same examples**",
        "",
        "| metric | " + " | ".join(systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for _metric, frame in comparisons.groupby("metric", sort=False):
        cells = []
        by_system = frame.set_index("system")
        for system in systems:
            if system not in by_system.index:
                cells.append("n/a")
                continue
            row = by_system.loc[system]
            digits = int(row["digits"])
            if pd.isna(row["difference"]):
                cells.append("n/a")
                continue
            cells.append(
                f"{row['difference']:+.{digits}f} [{row['ci_low']:+.{digits}f}, "
                f"{row['ci_high']:+.{digits}f}], p={row['p_value']:.3f} "
                f"({int(row['n'])} ex., {int(row['n_songs'])} songs)"
            )
        lines.append(f"| {frame['label'].iloc[0]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Paired bootstrap over songs: {int(confidence * 100)}% intervals of the difference "
        "and two-sided p-values.",
    ]
    return "\n".join(lines) + "\n"


def comparison_sections(
    comparisons: pd.DataFrame | None, confidence: float = 0.95
) -> dict[str, str]:
    """Each condition's comparison table in Markdown, keyed by condition."""
    if comparisons is None or comparisons.empty:
        return {}
    return {
        str(condition): comparison_markdown(rows, confidence)
        for condition, rows in comparisons.groupby("condition", sort=False)
    }
