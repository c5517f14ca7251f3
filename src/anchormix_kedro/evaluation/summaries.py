"""Automated evaluation of gain advice: every metric per example and system, summaries.

- :func:`join_advice` pairs each system's advice with its example (label, gain, levels,
  reference advice) from the instruction dataset.
- :func:`truth_columns` reads the direction and dB amount back out of the advice and scores
  them against the perturbation actually applied; :func:`convention_columns` says how far
  the level left by the advised fader move sits from the genre convention measured on the
  training split (research question 2).
- :func:`text_metric_columns` and :func:`judge_columns` wrap :mod:`anchormix_kedro.evaluation.text_metrics`
  and :mod:`anchormix_kedro.evaluation.judge`; :func:`assemble_metric_table` puts everything side by side.
- :func:`summarize` gives per-system estimates with seeded percentile-bootstrap confidence
  intervals; :func:`ablation_frame` and :func:`ablation_markdown` lay them out side by side
  (section 5.4); :func:`convention_following` is the per-genre table of research question 2.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anchormix_kedro.evaluation.judge import LLMJudge, judge_all
from anchormix_kedro.evaluation.parsing import ParsedAdvice
from anchormix_kedro.evaluation.truth import truth_metrics_frame
from anchormix_kedro.instruction_data.conventions import convention_index, lookup_convention
from anchormix_kedro.vocabulary import CRITERIA, SYSTEM_ORDER

logger = logging.getLogger(__name__)

#: The systems of the ablation (section 5.4), in the order tables show them; any other
#: system name is accepted and shown after these.
#: Pooled rows (all systems or all genres) carry this name.
POOLED = "all"

EXAMPLE_COLUMNS: tuple[str, ...] = (
    "example_id",
    "excerpt_id",
    "song",
    "split",
    "genre",
    "anchor",
    "target",
    "label",
    "gain_db",
    "reference_relative_db",
    "perturbed_relative_db",
)
ADVICE_REQUIRED_COLUMNS: tuple[str, ...] = ("example_id", "system", "advice")
JUDGE_SCORE_COLUMNS: tuple[str, ...] = tuple(f"judge_{name}" for name in CRITERIA)
HUMAN_SCORE_COLUMNS: tuple[str, ...] = tuple(f"human_{name}" for name in CRITERIA)
TEXT_SCORE_COLUMNS: tuple[str, ...] = (
    "bertscore_precision",
    "bertscore_recall",
    "bertscore_f1",
    "rouge_l",
    "meteor",
)
#: Per-example numeric measures of correctness known from the perturbation (a correct
#: direction scores 1, a wrong or unstated one 0) and of distance from the convention.
TRUTH_SCORE_COLUMNS: tuple[str, ...] = (
    "direction_correct_score",
    "fader_move_error_db",
    "amount_error_db",
    "convention_distance_after_db",
)


# --------------------------------------------------------------------------- joining


def order_systems(systems: Sequence[str], preferred: Sequence[str] = SYSTEM_ORDER) -> list[str]:
    """Unique system names: the ablation's systems in their order first, any others sorted."""
    present = list(dict.fromkeys(str(s) for s in systems))
    return [s for s in preferred if s in present] + sorted(s for s in present if s not in preferred)


def _missing_text(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def join_advice(
    advice_by_system: pd.DataFrame,
    instruction_dataset: pd.DataFrame,
    split: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each system's advice beside its example: one row per (example, system).

    ``advice_by_system`` needs ``example_id``, ``system`` and ``advice`` (``latency_s`` is
    kept when present). Advice may be empty (scored as such) or missing (scores stay
    missing). ``split`` keeps only examples of that split (or splits); ``None`` keeps all.
    Raises ``ValueError`` naming duplicated pairs or example ids the dataset lacks.
    """
    missing = [c for c in ADVICE_REQUIRED_COLUMNS if c not in advice_by_system.columns]
    if missing:
        raise ValueError(
            f"advice_by_system lacks columns {missing}; it has {list(advice_by_system.columns)}"
        )
    lacking = [c for c in (*EXAMPLE_COLUMNS, "advice") if c not in instruction_dataset.columns]
    if lacking:
        raise ValueError(f"instruction_dataset lacks columns {lacking}")
    advice = advice_by_system.copy()
    advice["example_id"] = advice["example_id"].astype(str)
    advice["system"] = advice["system"].astype(str)
    duplicated = advice.duplicated(["example_id", "system"], keep=False)
    if duplicated.any():
        pairs = advice.loc[duplicated, ["example_id", "system"]].drop_duplicates().head(5)
        raise ValueError(
            f"advice_by_system holds {int(duplicated.sum())} rows for repeated (example_id, "
            f"system) pairs, e.g. {list(pairs.itertuples(index=False, name=None))}"
        )
    examples = instruction_dataset[list(EXAMPLE_COLUMNS) + ["advice"]].rename(
        columns={"advice": "reference_advice"}
    )
    unknown = sorted(set(advice["example_id"]) - set(examples["example_id"].astype(str)))
    if unknown:
        raise ValueError(
            f"advice_by_system names {len(unknown)} example ids that the instruction dataset "
            f"lacks, e.g. {unknown[:5]}"
        )
    if "latency_s" not in advice.columns:
        advice["latency_s"] = np.nan
    advice["advice"] = [None if _missing_text(a) else str(a) for a in advice["advice"]]
    joined = advice[["example_id", "system", "advice", "latency_s"]].merge(
        examples, on="example_id", how="left", validate="many_to_one"
    )
    if split is not None:
        wanted = {split} if isinstance(split, str) else set(split)
        before = len(joined)
        joined = joined[joined["split"].isin(wanted)]
        if len(joined) < before:
            logger.info(
                "Evaluating the %s split only: %d of %d advice rows kept",
                "/".join(sorted(wanted)),
                len(joined),
                before,
            )
        if joined.empty:
            raise ValueError(
                f"no advice for examples of split {sorted(wanted)}; advice_by_system covers "
                f"splits {sorted(set(advice.merge(examples, on='example_id')['split']))}"
            )
    rank = {s: i for i, s in enumerate(order_systems(joined["system"]))}
    joined = joined.sort_values(
        ["system", "example_id"], key=lambda c: c.map(rank) if c.name == "system" else c
    )
    columns = ["example_id", "system", *EXAMPLE_COLUMNS[1:], "advice", "reference_advice"]
    return joined[[*columns, "latency_s"]].reset_index(drop=True)


# --------------------------------------------------------------------------- per-example metrics


def truth_columns(examples: pd.DataFrame) -> pd.DataFrame:
    """Direction, amount and their errors against the applied perturbation, per row.

    Columns of :class:`anchormix_kedro.evaluation.parsing.TruthMetrics` plus ``advised_move_db``:
    the fader move the advice asks for (down negative, 0 for "leave it", missing when the
    advice names no direction or, outside "balanced", no amount).
    """
    truth = truth_metrics_frame(
        list(examples["advice"]), list(examples["label"]), list(examples["gain_db"])
    )
    moves = [
        ParsedAdvice(
            None if _missing_text(d) else d, None if pd.isna(a) else float(a)
        ).fader_move_db
        for d, a in zip(truth["predicted_direction"], truth["predicted_amount_db"], strict=True)
    ]
    truth["advised_move_db"] = pd.array(moves, dtype="Float64")
    truth.index = examples.index
    return truth


CONVENTION_OUTPUT_COLUMNS: tuple[str, ...] = (
    "convention_genre",
    "convention_median_db",
    "convention_q25_db",
    "convention_q75_db",
    "level_before_db",
    "level_after_db",
    "convention_distance_before_db",
    "convention_distance_after_db",
    "convention_gain_db",
    "within_convention_iqr_after",
    "reference_convention_distance_db",
)


def convention_columns(
    examples: pd.DataFrame,
    advised_move_db: Sequence[float | None],
    conventions: pd.DataFrame,
    min_songs: int = 3,
) -> pd.DataFrame:
    """Where the advised fader move leaves the target against the genre's convention.

    The convention is the median reference level of the pair in the genre's training songs
    (all genres pooled where the genre has fewer than ``min_songs``). ``level_before_db`` is
    the perturbed relative level, ``level_after_db`` the level after the advised move;
    ``convention_gain_db`` is how much closer to the convention median the move brings it
    (negative: further away); ``reference_convention_distance_db`` is where the professional
    mix itself sits, the distance a perfect undo of the perturbation would leave.
    """
    index = convention_index(conventions)
    rows = []
    for example, move in zip(examples.itertuples(index=False), advised_move_db, strict=True):
        found = lookup_convention(index, example.genre, example.anchor, example.target, min_songs)
        if found is None:
            rows.append(dict.fromkeys(CONVENTION_OUTPUT_COLUMNS))
            continue
        median = float(found["median_db"])
        before = float(example.perturbed_relative_db)
        after = None if move is None or pd.isna(move) else before + float(move)
        distance_after = None if after is None else abs(after - median)
        rows.append(
            {
                "convention_genre": found["genre"],
                "convention_median_db": median,
                "convention_q25_db": float(found["q25_db"]),
                "convention_q75_db": float(found["q75_db"]),
                "level_before_db": before,
                "level_after_db": after,
                "convention_distance_before_db": abs(before - median),
                "convention_distance_after_db": distance_after,
                "convention_gain_db": None
                if distance_after is None
                else abs(before - median) - distance_after,
                "within_convention_iqr_after": None
                if after is None
                else float(found["q25_db"]) <= after <= float(found["q75_db"]),
                "reference_convention_distance_db": abs(
                    float(example.reference_relative_db) - median
                ),
            }
        )
    frame = pd.DataFrame(rows, columns=list(CONVENTION_OUTPUT_COLUMNS), index=examples.index)
    for column in CONVENTION_OUTPUT_COLUMNS[1:-2] + CONVENTION_OUTPUT_COLUMNS[-1:]:
        frame[column] = frame[column].astype("Float64")
    frame["within_convention_iqr_after"] = frame["within_convention_iqr_after"].astype("boolean")
    return frame


def text_metric_columns(examples: pd.DataFrame, **options) -> pd.DataFrame:
    """BERTScore, ROUGE-L and METEOR of each advice against the reference advice.

    ``options`` go to :func:`anchormix_kedro.evaluation.text_metrics.score_texts` (``bertscore_model``,
    ``bertscore_num_layers``, ``batch_size``, ``device``, ``use_wordnet``); the returned
    frame's ``attrs["variants"]`` says which model and METEOR variant ran.
    """
    from anchormix_kedro.evaluation.text_metrics import score_texts

    scores = score_texts(list(examples["advice"]), list(examples["reference_advice"]), **options)
    scores.index = examples.index
    return scores


def judge_columns(
    examples: pd.DataFrame, judge: LLMJudge | None, progress: bool = False
) -> pd.DataFrame:
    """The LLM judge's four scores (``judge_<criterion>``, Int64), their mean and rationale.

    Every system's advice is judged against the same scenario, the anchor included, so the
    judge neither learns which system wrote it nor judges systems by different facts. With
    ``judge=None`` every score is missing (the log says no judge is configured).
    """
    items = [
        {
            "item_id": f"{row.example_id}::{row.system}",
            "advice": row.advice,
            "target": row.target,
            "anchor": row.anchor,
            "genre": row.genre,
            "gain_db": row.gain_db,
            "label": row.label,
        }
        for row in examples.itertuples(index=False)
    ]
    results = judge_all(items, judge, progress=progress)
    renamed = results.rename(columns={name: f"judge_{name}" for name in CRITERIA}).rename(
        columns={"rationale": "judge_rationale", "rubric_version": "judge_rubric_version"}
    )
    renamed["judge_mean"] = (
        renamed[list(JUDGE_SCORE_COLUMNS)].astype("Float64").mean(axis=1, skipna=False)
    )
    renamed = renamed.drop(columns=["item_id"])
    renamed.index = examples.index
    return renamed


def assemble_metric_table(*parts: pd.DataFrame) -> pd.DataFrame:
    """Join per-example frames that share one row order (the examples first) side by side."""
    lengths = {len(part) for part in parts}
    if len(lengths) != 1:
        raise ValueError(f"metric frames differ in length: {[len(p) for p in parts]}")
    columns = [c for part in parts for c in part.columns]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise ValueError(f"metric frames repeat columns {repeated}")
    table = pd.concat([part.reset_index(drop=True) for part in parts], axis=1)
    # Booleans as 0/1 floats where a mean or a correlation wants numbers.
    table["direction_correct_score"] = (
        table["direction_correct"].astype("Float64").fillna(0.0)
        if "direction_correct" in table
        else np.nan
    )
    return table


# --------------------------------------------------------------------------- bootstrap


def _rng(seed: int, *labels: str) -> np.random.Generator:
    """A generator for one (seed, labels) combination, independent of call order."""
    return np.random.default_rng([int(seed), zlib.crc32("|".join(labels).encode("utf-8"))])


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """The mean and its percentile-bootstrap confidence interval: ``(mean, low, high)``.

    Missing values are dropped first. No values give NaNs; a single value gives a
    zero-width interval.
    """
    x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").astype(float))
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    rng = rng or np.random.default_rng(0)
    draws = rng.integers(0, x.size, size=(int(n_resamples), x.size))
    means = x[draws].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(x.mean()), float(low), float(high)


def balanced_f1(outcomes: Sequence[str | None]) -> float:
    """F1 of "balanced" detection from ``tp``/``fp``/``fn``/``tn`` outcomes (NaN if undefined)."""
    labels = pd.Series(list(outcomes), dtype="object")
    tp, fp, fn = ((labels == k).sum() for k in ("tp", "fp", "fn"))
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else math.nan


def bootstrap_balanced_f1(
    outcomes: Sequence[str | None],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Balanced-detection F1 over parsed advice, with a percentile-bootstrap interval."""
    labels = np.array([o for o in outcomes if isinstance(o, str)], dtype=object)
    if labels.size == 0:
        return math.nan, math.nan, math.nan
    rng = rng or np.random.default_rng(0)
    draws = rng.integers(0, labels.size, size=(int(n_resamples), labels.size))
    tp, fp, fn = ((labels == k).astype(float)[draws].sum(axis=1) for k in ("tp", "fp", "fn"))
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, np.nan)
    alpha = (1.0 - confidence) / 2
    if np.isnan(f1).all():
        return balanced_f1(labels), math.nan, math.nan
    low, high = np.nanquantile(f1, [alpha, 1.0 - alpha])
    return balanced_f1(labels), float(low), float(high)


# --------------------------------------------------------------------------- summaries


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


AUTOMATED_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "direction_accuracy",
        "Direction accuracy (unparsed = wrong)",
        "direction_correct_score",
        True,
    ),
    MetricSpec("parse_rate", "Advice states a direction", "parsed", True),
    MetricSpec(
        "balanced_f1", "Balanced detection F1", "balanced_outcome", True, kind="balanced_f1"
    ),
    MetricSpec(
        "fader_move_mae_db", "Fader move error (dB)", "fader_move_error_db", False, digits=2
    ),
    MetricSpec(
        "amount_mae_db", "Amount error, right direction (dB)", "amount_error_db", False, digits=2
    ),
    MetricSpec("bertscore_precision", "BERTScore precision", "bertscore_precision", True),
    MetricSpec("bertscore_recall", "BERTScore recall", "bertscore_recall", True),
    MetricSpec("bertscore_f1", "BERTScore F1", "bertscore_f1", True),
    MetricSpec("rouge_l", "ROUGE-L F1", "rouge_l", True),
    MetricSpec("meteor", "METEOR", "meteor", True),
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
    "system",
    "metric",
    "label",
    "n",
    "estimate",
    "ci_low",
    "ci_high",
    "better",
    "digits",
)
# How a summary says which way is better; plain words survive a CSV round trip.
_BETTER = {True: "higher", False: "lower", None: "neither"}


def summarize(
    table: pd.DataFrame,
    specs: Sequence[MetricSpec] = AUTOMATED_METRICS,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    group_column: str = "system",
    pooled: bool = False,
) -> pd.DataFrame:
    """Per group (system) estimate of every metric with a percentile-bootstrap interval.

    Long format, columns :data:`SUMMARY_COLUMNS` (``better`` is ``higher``, ``lower`` or
    ``neither``); ``n`` counts the examples that have the
    metric (0 with NaN estimates when none do, e.g. judge scores without a judge). The
    resampling of each (group, metric) is seeded from ``seed`` and their names, so adding a
    system or a metric does not change the others' intervals. ``pooled=True`` adds a group
    :data:`POOLED` over all rows.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    groups: list[tuple[str, pd.DataFrame]] = [
        (g, table[table[group_column] == g]) for g in order_systems(table[group_column])
    ]
    if pooled:
        groups.append((POOLED, table))
    rows = []
    for group, frame in groups:
        for spec in specs:
            if spec.column not in frame.columns:
                continue
            rng = _rng(seed, str(group), spec.name)
            values = frame[spec.column]
            if spec.kind == "balanced_f1":
                n = int(values.map(lambda v: isinstance(v, str)).sum())
                estimate, low, high = bootstrap_balanced_f1(values, n_resamples, confidence, rng)
            else:
                numeric = pd.to_numeric(values.astype("Float64"), errors="coerce")
                n = int(numeric.notna().sum())
                estimate, low, high = bootstrap_mean(numeric, n_resamples, confidence, rng)
            rows.append(
                {
                    "system": group,
                    "metric": spec.name,
                    "label": spec.label,
                    "n": n,
                    "estimate": estimate,
                    "ci_low": low,
                    "ci_high": high,
                    "better": _BETTER[spec.higher_is_better],
                    "digits": spec.digits,
                }
            )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _cell(estimate: float, low: float, high: float, digits: int) -> str:
    if estimate is None or pd.isna(estimate):
        return "n/a"
    if pd.isna(low) or pd.isna(high):
        return f"{estimate:.{digits}f}"
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def ablation_frame(summary: pd.DataFrame, systems: Sequence[str] | None = None) -> pd.DataFrame:
    """The summary laid out as an ablation table: one row per metric, one column per system.

    Cells read ``estimate [low, high]`` ("n/a" where no example has the metric); systems in
    :data:`SYSTEM_ORDER` first. Columns: ``metric``, ``label``, then one per system.
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


def ablation_markdown(
    summary: pd.DataFrame,
    systems: Sequence[str] | None = None,
    expected_systems: Sequence[str] = SYSTEM_ORDER,
    title: str = "Ablation: every system on every metric",
    notes: Sequence[str] = (),
    confidence: float = 0.95,
) -> str:
    """The ablation table in Markdown, best estimate per metric in bold, with its notes.

    Each cell is ``estimate [low, high]`` with a ``confidence`` percentile-bootstrap
    interval; the row's ``n`` per system is listed beneath. Systems of the ablation that are
    absent from the summary are named.
    """
    frame = ablation_frame(summary, systems)
    systems = list(frame.columns[2:])
    best = _best_systems(summary[summary["system"].isin(systems)])
    lines = [f"# {title}", ""]
    lines.append("| metric | " + " | ".join(systems) + " |")
    lines.append("|---|" + "---|" * len(systems))
    for row in frame.itertuples(index=False):
        values = list(row)[2:]
        cells = [
            f"**{v}**" if s in best.get(row.metric, set()) and v != "n/a" else v
            for s, v in zip(systems, values, strict=True)
        ]
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    counts = summary.groupby("system")["n"].max()
    lines += [
        "",
        f"Cells: estimate [{confidence:.0%} percentile-bootstrap interval]. Examples per system: "
        + ", ".join(f"{s} {int(counts.get(s, 0))}" for s in systems)
        + ". Bold: the best estimate where higher or lower is better.",
    ]
    absent = [s for s in expected_systems if s not in systems]
    if absent:
        lines.append(f"Systems without advice in this run: {', '.join(absent)}.")
    lines += [f"{note}" for note in notes if note]
    return "\n".join(lines) + "\n"


def summary_metrics_for_mlflow(summary: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{"<system>.<metric>.<stat>": {"value", "step"}}`` for estimates, bounds and n.

    Metrics without any value (NaN) are left out: MLflow has no missing value.
    """
    metrics: dict[str, dict[str, float]] = {}
    for row in summary.itertuples(index=False):
        key = f"{_mlflow_key(row.system)}.{row.metric}"
        for stat in ("estimate", "ci_low", "ci_high", "n"):
            value = getattr(row, stat)
            if value is not None and not pd.isna(value):
                metrics[f"{key}.{stat}"] = {"value": float(value), "step": 0}
    return metrics


def _mlflow_key(name: str) -> str:
    """MLflow metric names allow letters, digits, ``_ - . / space``: replace the rest."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in str(name))


# --------------------------------------------------------------------------- conventions (RQ2)

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
            rng_after, rng_gain = _rng(seed, system, genre, "after"), _rng(seed, system, genre)
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


# --------------------------------------------------------------------------- plots


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: figures are saved by the catalog, never shown
    import matplotlib.pyplot as plt

    return plt


def plot_summary(summary: pd.DataFrame, metrics: Sequence[str] | None = None):
    """One panel per metric: each system's estimate with its confidence interval."""
    plt = _pyplot()
    available = summary[summary["estimate"].notna()]
    metrics = [
        m
        for m in (metrics or list(dict.fromkeys(available["metric"])))
        if m in set(available["metric"])
    ]
    if not metrics:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No metric has any value", ha="center", va="center")
        return fig
    columns = min(4, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, metrics, strict=False):
        frame = available[available["metric"] == metric]
        frame = frame.set_index("system").loc[order_systems(frame["system"])]
        x = np.arange(len(frame))
        lower = (frame["estimate"] - frame["ci_low"]).clip(lower=0).fillna(0)
        upper = (frame["ci_high"] - frame["estimate"]).clip(lower=0).fillna(0)
        ax.bar(x, frame["estimate"], color="#4C72B0", alpha=0.8)
        ax.errorbar(x, frame["estimate"], yerr=[lower, upper], fmt="none", color="black", capsize=3)
        ax.set_xticks(x, frame.index, rotation=30, ha="right", fontsize=8)
        ax.set_title(frame["label"].iloc[0], fontsize=9)
    fig.suptitle("Automated metrics per system (bars: estimate, whiskers: bootstrap interval)")
    fig.tight_layout()
    return fig


def plot_convention_following(frame: pd.DataFrame):
    """Per genre: distance from the convention after each system's advice, before it, and
    where the professional mixes sit (research question 2)."""
    plt = _pyplot()
    data = frame[frame["genre"] != POOLED]
    if data.empty:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No example has a genre convention", ha="center", va="center")
        return fig
    genres = sorted(data["genre"].unique())
    systems = order_systems(data["system"])
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(genres) + 2), 4.5))
    x = np.arange(len(genres))
    for i, system in enumerate(systems):
        rows = data[data["system"] == system].set_index("genre").reindex(genres)
        estimate = rows["distance_after_db"].astype(float)
        lower = (estimate - rows["distance_after_ci_low"].astype(float)).clip(lower=0).fillna(0)
        upper = (rows["distance_after_ci_high"].astype(float) - estimate).clip(lower=0).fillna(0)
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, estimate, width, label=system)
        ax.errorbar(
            x + (i - (len(systems) - 1) / 2) * width,
            estimate,
            yerr=[lower, upper],
            fmt="none",
            color="black",
            capsize=2,
            linewidth=0.8,
        )
    first = data.drop_duplicates("genre").set_index("genre").reindex(genres)
    ax.scatter(x, first["distance_before_db"], marker="v", color="grey", zorder=3, label="before")
    ax.scatter(
        x, first["reference_distance_db"], marker="*", s=80, color="black", zorder=3,
        label="professional mix",
    )  # fmt: skip
    ax.set_xticks(x, genres, rotation=30, ha="right")
    ax.set_ylabel("|level - genre convention| (dB)")
    ax.set_title("Does the advice follow the genre conventions of the training split?")
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    return fig


def metric_columns(table: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The given columns that ``table`` has with at least one value, in order."""
    return [c for c in columns if c in table.columns and table[c].notna().any()]
