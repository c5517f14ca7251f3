"""Per-system summaries of the metric table and the ablation table (section 5.4).

:func:`summarize` gives per-system estimates with seeded percentile-bootstrap confidence
intervals (:mod:`anchormix_kedro.evaluation.statistics`); :func:`ablation_frame` and
:func:`ablation_markdown` lay them out side by side; :func:`summary_metrics_for_mlflow`
flattens them for MLflow. :func:`order_systems` and :data:`POOLED` are shared by the
other evaluation modules. The per-example table is built in
:mod:`anchormix_kedro.evaluation.metric_table`, the genre-convention analysis (research
question 2) is in :mod:`anchormix_kedro.evaluation.convention_following` and the figures in
:mod:`anchormix_kedro.evaluation.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anchormix_kedro.evaluation.conditions import (
    AS_MIXED,
    CONDITION_DESCRIPTIONS,
    order_conditions,
)
from anchormix_kedro.evaluation.meter_oracle import ORACLE_METER, ORACLES
from anchormix_kedro.evaluation.statistics import (
    bootstrap_balanced_f1,
    bootstrap_mean,
    seeded_rng,
    song_bootstrap_balanced_f1,
    song_bootstrap_mean,
)
from anchormix_kedro.vocabulary import BASELINES, CRITERIA

#: Pooled rows (all systems or all genres) carry this name.
POOLED = "all"


def order_systems(systems: Sequence[str], preferred: Sequence[str] = ()) -> list[str]:
    """Unique system names: ``preferred`` ones in their order (the declared order, see
    :func:`anchormix_kedro.vocabulary.system_order`), then trained variants sorted, then the
    baselines, then the oracles (:data:`anchormix_kedro.evaluation.meter_oracle.ORACLES`)."""
    present = list(dict.fromkeys(str(s) for s in systems))
    preferred = list(dict.fromkeys(preferred))
    rest = [s for s in present if s not in preferred and s not in ORACLES]
    return (
        [s for s in preferred if s in present and s not in ORACLES]
        + sorted(s for s in rest if s not in BASELINES)
        + [s for s in BASELINES if s in rest]
        + [s for s in ORACLES if s in present]
    )


def declared_systems(evaluation_common: Mapping, systems: Mapping | None = None) -> Mapping:
    """The ``systems`` declaration: the run's own (``params:systems``) when given, which an
    environment's grid extends, else the copy in ``evaluation_common`` (interpolated in
    base, so without an environment's additions)."""
    return systems or (evaluation_common or {}).get("systems") or {}


def system_header(system: str) -> str:
    """A system's name as a table's column header: an oracle says it is one."""
    return f"{system} (oracle)" if system in ORACLES else system


@dataclass(frozen=True)
class MetricSpec:
    """One summarised metric: where its per-example values come from and how to read it.

    ``higher_is_better`` is ``None`` for descriptive measures (no "best" is marked).
    """

    name: str
    label: str
    column: str
    higher_is_better: bool | None
    kind: str = "mean"  # "mean" or "balanced_f1"
    digits: int = 3


def _judge_spec(name: str) -> MetricSpec:
    return MetricSpec(f"judge_{name}", f"LLM judge: {name} (1-7)", f"judge_{name}", True, digits=2)


def _human_spec(name: str) -> MetricSpec:
    return MetricSpec(f"human_{name}", f"Engineers: {name} (1-7)", f"human_{name}", True, digits=2)


#: Text metrics of the advice's core against the reference's (optional sentences out of
#: both, the wording policy); ``<name>_as_written`` scores the texts as written.
TEXT_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("bertscore_precision", "BERTScore precision", "bertscore_precision", True),
    MetricSpec("bertscore_recall", "BERTScore recall", "bertscore_recall", True),
    MetricSpec("bertscore_f1", "BERTScore F1", "bertscore_f1", True),
    MetricSpec("rouge_l", "ROUGE-L F1", "rouge_l", True),
    MetricSpec("meteor", "METEOR", "meteor", True),
)
#: Suffix of the text metrics scored on the advice as written (optional sentences kept).
AS_WRITTEN = "_as_written"

AUTOMATED_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "direction_accuracy",
        "Direction accuracy (unparsed = wrong)",
        "direction_correct_score",
        True,
    ),
    MetricSpec(
        "direction_accuracy_4db",
        "Direction accuracy, offsets of 4 dB or more",
        "direction_correct_4db_score",
        True,
    ),
    MetricSpec(
        "direction_accuracy_10db",
        "Direction accuracy, offsets of 10 dB or more",
        "direction_correct_10db_score",
        True,
    ),
    MetricSpec("parse_rate", "Advice states a direction", "parsed", True),
    MetricSpec(
        "self_consistency",
        "Self-consistent advice",
        "self_consistent",
        True,
    ),
    MetricSpec("wrong_stem_rate", "Names a stem it was not asked about", "wrong_stem", False),
    MetricSpec(
        "balanced_f1", "Balanced detection F1", "balanced_outcome", True, kind="balanced_f1"
    ),
    MetricSpec(
        "fader_move_mae_db", "Fader move error (dB)", "fader_move_error_db", False, digits=2
    ),
    MetricSpec(
        "amount_mae_db", "Amount error, right direction (dB)", "amount_error_db", False, digits=2
    ),
    *TEXT_METRICS,
    *(
        MetricSpec(
            f"{m.name}{AS_WRITTEN}", f"{m.label}, as written", f"{m.column}{AS_WRITTEN}", True
        )
        for m in TEXT_METRICS
    ),
    *(_judge_spec(name) for name in CRITERIA),
    MetricSpec("judge_mean", "LLM judge: mean of the four (1-7)", "judge_mean", True, digits=2),
    MetricSpec(
        "convention_distance_after_db",
        "Distance from genre convention after advice (dB)",
        "convention_distance_after_db",
        None,
        digits=2,
    ),
    MetricSpec("latency_s", "Latency (s)", "latency_s", False, digits=2),
)
HUMAN_METRICS: tuple[MetricSpec, ...] = (
    *(_human_spec(name) for name in CRITERIA),
    MetricSpec("human_mean", "Engineers: mean of the four (1-7)", "human_mean", True, digits=2),
)
SUMMARY_COLUMNS: tuple[str, ...] = (
    "condition",
    "system",
    "metric",
    "label",
    "n",
    "estimate",
    "ci_low",
    "ci_high",
    "better",
    "digits",
    "n_songs",
)
# How a summary says which way is better; plain words survive a CSV round trip.
BETTER_WORDS = {True: "higher", False: "lower", None: "neither"}


def summarize(
    table: pd.DataFrame,
    specs: Sequence[MetricSpec] = AUTOMATED_METRICS,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    group_column: str = "system",
    pooled: bool = False,
    cluster_column: str | None = None,
    condition_column: str = "condition",
) -> pd.DataFrame:
    """Per group (system) estimate of every metric with a percentile-bootstrap interval.

    Long format, columns :data:`SUMMARY_COLUMNS` (``better`` is ``higher``, ``lower`` or
    ``neither``); ``n`` counts the examples that have the
    metric (0 with NaN estimates when none do, e.g. judge scores without a judge). The
    resampling of each (group, metric) is seeded from ``seed`` and their names, so adding a
    system or a metric does not change the others' intervals. ``pooled=True`` adds a group
    :data:`POOLED` over all rows. With ``cluster_column`` (e.g. ``song``) present, the
    intervals resample whole clusters and ``n_songs`` counts them; else they resample
    examples and ``n_songs`` is missing. A table with a ``condition_column`` is summarized
    per condition (in :func:`order_conditions`); one without it is ``as_mixed``.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    by_condition = condition_column in table.columns
    conditions = order_conditions(table[condition_column]) if by_condition else [AS_MIXED]
    rows = []
    for condition in conditions:
        rows_of = table[table[condition_column] == condition] if by_condition else table
        groups = [
            (g, rows_of[rows_of[group_column] == g]) for g in order_systems(rows_of[group_column])
        ]
        if pooled:
            groups.append((POOLED, rows_of))
        for group, frame in groups:
            for spec in specs:
                if spec.column not in frame.columns:
                    continue
                rng = seeded_rng(seed, str(group), spec.name)
                clusters = frame[cluster_column] if cluster_column in frame.columns else None
                n, estimate, low, high, songs = _estimate(
                    spec, frame[spec.column], clusters, n_resamples, confidence, rng
                )
                rows.append(
                    {
                        "condition": condition,
                        "system": group,
                        "metric": spec.name,
                        "label": spec.label,
                        "n": n,
                        "estimate": estimate,
                        "ci_low": low,
                        "ci_high": high,
                        "better": BETTER_WORDS[spec.higher_is_better],
                        "digits": spec.digits,
                        "n_songs": songs,
                    }
                )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _estimate(
    spec: MetricSpec,
    values: pd.Series,
    clusters: pd.Series | None,
    n_resamples: int,
    confidence: float,
    rng,
) -> tuple:
    """``(n, estimate, ci_low, ci_high, n_songs)`` of one metric of one group: clusters
    (songs) resampled when given, examples otherwise (``n_songs`` then missing)."""
    if spec.kind == "balanced_f1":
        n = int(values.map(lambda v: isinstance(v, str)).sum())
        if clusters is not None:
            return n, *song_bootstrap_balanced_f1(values, clusters, n_resamples, confidence, rng)
        return n, *bootstrap_balanced_f1(values, n_resamples, confidence, rng), None
    numeric = pd.to_numeric(values.astype("Float64"), errors="coerce")
    n = int(numeric.notna().sum())
    if clusters is not None:
        return n, *song_bootstrap_mean(numeric, clusters, n_resamples, confidence, rng)
    return n, *bootstrap_mean(numeric, n_resamples, confidence, rng), None


def _cell(estimate: float, low: float, high: float, digits: int) -> str:
    if estimate is None or pd.isna(estimate):
        return "n/a"
    if pd.isna(low) or pd.isna(high):
        return f"{estimate:.{digits}f}"
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def ablation_frame(summary: pd.DataFrame, systems: Sequence[str] | None = None) -> pd.DataFrame:
    """The summary laid out as an ablation table: one row per metric, one column per system.

    Cells read ``estimate [low, high]`` ("n/a" where no example has the metric); systems in
    :func:`order_systems`. Columns: ``metric``, ``label``, then one per system.
    """
    systems = list(systems) if systems is not None else order_systems(summary["system"])
    metrics = list(dict.fromkeys(summary["metric"]))
    labels = dict(zip(summary["metric"], summary["label"], strict=False))
    cells = {
        (r.metric, r.system): _cell(r.estimate, r.ci_low, r.ci_high, int(r.digits))
        for r in summary.itertuples(index=False)
    }
    rows = [
        {"metric": m, "label": labels[m], **{s: cells.get((m, s), "n/a") for s in systems}}
        for m in metrics
    ]
    return pd.DataFrame(rows, columns=["metric", "label", *systems])


def _best_systems(summary: pd.DataFrame) -> dict[str, set[str]]:
    best: dict[str, set[str]] = {}
    for metric, frame in summary.groupby("metric", sort=False):
        frame = frame[frame["estimate"].notna()]
        direction = str(frame["better"].iloc[0]) if len(frame) else "neither"
        if len(frame) < 2 or direction not in ("higher", "lower"):
            continue
        target = frame["estimate"].max() if direction == "higher" else frame["estimate"].min()
        best[metric] = set(frame.loc[np.isclose(frame["estimate"], target), "system"])
    return best


#: The metrics shown condition by condition at the top of a multi-condition table.
HEADLINE_METRICS: tuple[str, ...] = (
    "direction_accuracy",
    "direction_accuracy_4db",
    "balanced_f1",
    "amount_mae_db",
)


def _counts_line(summary: pd.DataFrame, systems: Sequence[str]) -> str:
    """How many examples (and songs, when counted) each system's figures rest on."""
    counts = summary.groupby("system")["n"].max()
    songs = summary.groupby("system")["n_songs"].max() if "n_songs" in summary else None

    def count(system: str) -> str:
        songs_of = None if songs is None else songs.get(system)
        text = f"{system} {int(counts.get(system, 0))}"
        return text if songs_of is None or pd.isna(songs_of) else f"{text} ({int(songs_of)} songs)"

    return "Examples per system: " + ", ".join(count(s) for s in systems) + "."


def _metric_table_lines(summary: pd.DataFrame, systems: Sequence[str]) -> list[str]:
    frame = ablation_frame(summary, systems)
    # The oracle shows the ceiling; the best is marked among the systems.
    best = _best_systems(
        summary[summary["system"].isin(systems) & ~summary["system"].isin(ORACLES)]
    )
    headers = [system_header(s) for s in systems]
    lines = ["| metric | " + " | ".join(headers) + " |", "|---|" + "---|" * len(systems)]
    for row in frame.itertuples(index=False):
        values = list(row)[2:]
        cells = [
            f"**{v}**" if s in best.get(row.metric, set()) and v != "n/a" else v
            for s, v in zip(systems, values, strict=True)
        ]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    return lines


def _overview_lines(
    summary: pd.DataFrame, systems: Sequence[str], conditions: list[str]
) -> list[str]:
    """The headline metrics with one column per condition."""
    lines = ["## Conditions side by side", ""]
    lines += [f"- `{c}`: {CONDITION_DESCRIPTIONS.get(c, c)}" for c in conditions] + [""]
    for metric in HEADLINE_METRICS:
        rows = summary[summary["metric"] == metric]
        if rows["estimate"].notna().sum() == 0:
            continue
        cells = {
            (r.system, r.condition): _cell(r.estimate, r.ci_low, r.ci_high, int(r.digits))
            for r in rows.itertuples(index=False)
        }
        lines += [
            f"**{rows['label'].iloc[0]}**",
            "",
            "| system | " + " | ".join(f"`{c}`" for c in conditions) + " |",
            "|---|" + "---|" * len(conditions),
        ]
        lines += [
            f"| {system_header(s)} | "
            + " | ".join(cells.get((s, c), "n/a") for c in conditions)
            + " |"
            for s in systems
        ] + [""]
    return lines


#: What every table with the oracle row says of it.
ORACLE_NOTE = (
    f"`{ORACLE_METER} (oracle)`: not a trained system but the ceiling of judging by level: an "
    "exact BS.1770 meter of the clips as played, judged against the training split's genre "
    "conventions and worded as the DSP rule words it."
)


def ablation_markdown(
    summary: pd.DataFrame,
    systems: Sequence[str] | None = None,
    expected_systems: Sequence[str] = (),
    title: str = "Ablation: every system on every metric",
    notes: Sequence[str] = (),
    confidence: float = 0.95,
    sections: Mapping[str, str] | None = None,
) -> str:
    """The ablation table in Markdown, best estimate per metric in bold, with its notes.

    Each cell is ``estimate [low, high]`` with a ``confidence`` percentile-bootstrap
    interval; the examples (and songs) per system are listed beneath. With several
    conditions, the headline metrics come first with the conditions side by side, then one
    table per condition, each followed by ``sections[condition]`` (e.g. the paired
    comparisons). Systems of the ablation that are absent from the summary are named.
    """
    systems = list(systems) if systems is not None else order_systems(summary["system"])
    systems = [s for s in systems if s in set(summary["system"])]
    if "condition" in summary.columns and len(summary):
        conditions = order_conditions(summary["condition"].fillna(AS_MIXED))
    else:
        conditions = [AS_MIXED]
    lines = [f"# {title}", ""]
    several = len(conditions) > 1
    if several:
        lines += _overview_lines(summary, systems, conditions)
    for condition in conditions:
        part = summary if not several else summary[summary["condition"] == condition]
        if several:
            lines += [f"## Condition `{condition}`", ""]
        lines += _metric_table_lines(part, systems)
        lines += ["", _counts_line(part, systems)]
        extra = (sections or {}).get(condition)
        if extra:
            lines += ["", extra.rstrip("\n"), ""]
        elif several:
            lines.append("")
    lines += [
        "",
        f"Cells: estimate [{confidence:.0%} bootstrap interval]. Bold: the best estimate "
        "of a system where higher or lower is better.",
    ]
    if any(s in ORACLES for s in systems):
        lines.append(ORACLE_NOTE)
    absent = [s for s in expected_systems if s not in systems]
    if absent:
        lines.append(f"Systems without advice in this run: {', '.join(absent)}.")
    lines += [f"{note}" for note in notes if note]
    return "\n".join(lines) + "\n"


def summary_metrics_for_mlflow(summary: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{"<condition>/<system>.<metric>.<stat>": {"value", "step"}}`` for estimates,
    bounds, examples and songs (MLflow groups the charts by condition).

    Metrics without any value (NaN) are left out: MLflow has no missing value.
    """
    metrics: dict[str, dict[str, float]] = {}
    for row in summary.itertuples(index=False):
        condition = getattr(row, "condition", None) or AS_MIXED
        key = f"{mlflow_key(condition)}/{mlflow_key(row.system)}.{row.metric}"
        for stat in ("estimate", "ci_low", "ci_high", "n", "n_songs"):
            value = getattr(row, stat, None)
            if value is not None and not pd.isna(value):
                metrics[f"{key}.{stat}"] = {"value": float(value), "step": 0}
    return metrics


def mlflow_key(name: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . / space``: replace the rest."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in str(name))
