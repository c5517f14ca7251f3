"""The per-example metric table: each system's advice beside its example, every metric.

- :func:`join_advice` pairs each system's advice with its example (label, gain, levels,
  reference advice) from the instruction dataset.
- :func:`truth_columns` reads the direction and dB amount back out of the advice and scores
  them against the perturbation actually applied; :func:`convention_columns` says how far
  the level left by the advised fader move sits from the genre convention measured on the
  training split (research question 2).
- :func:`text_metric_columns` and :func:`judge_columns` wrap :mod:`anchormix_kedro.evaluation.text_metrics`
  and :mod:`anchormix_kedro.evaluation.judge`; :func:`assemble_metric_table` puts everything side by side.
- :func:`metric_columns` says which metric columns of a table hold any value.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from anchormix_kedro.advice_language.parsing import ParsedAdvice
from anchormix_kedro.advice_language.wording import core_advice
from anchormix_kedro.evaluation.conditions import AS_MIXED, order_conditions
from anchormix_kedro.evaluation.judge import LLMJudge, judge_all
from anchormix_kedro.evaluation.summaries import AS_WRITTEN, order_systems
from anchormix_kedro.evaluation.truth import truth_metrics_frame
from anchormix_kedro.instruction_data.conventions import convention_index, lookup_convention
from anchormix_kedro.vocabulary import CRITERIA

logger = logging.getLogger(__name__)

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
#: The same text metrics on the advice as written, optional sentences kept (the primary
#: ones compare the cores: :func:`anchormix_kedro.advice_language.wording.core_advice`).
TEXT_SCORE_AS_WRITTEN_COLUMNS: tuple[str, ...] = tuple(
    f"{c}{AS_WRITTEN}" for c in TEXT_SCORE_COLUMNS
)
#: Per-example numeric measures of correctness known from the perturbation (a correct
#: direction scores 1, a wrong or unstated one 0) and of distance from the convention.
#: Offsets (|gain| in dB, at least) whose direction accuracy is also reported on its own:
#: an imbalance any engineer hears at once.
LARGE_OFFSETS_DB: tuple[int, ...] = (4, 10)
TRUTH_SCORE_COLUMNS: tuple[str, ...] = (
    "direction_correct_score",
    *(f"direction_correct_{t}db_score" for t in LARGE_OFFSETS_DB),
    "fader_move_error_db",
    "amount_error_db",
    "convention_distance_after_db",
)


# --------------------------------------------------------------------------- joining


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
    if "condition" not in advice.columns:
        advice["condition"] = AS_MIXED
    key = ["example_id", "condition", "system"]
    duplicated = advice.duplicated(key, keep=False)
    if duplicated.any():
        pairs = advice.loc[duplicated, key].drop_duplicates().head(5)
        raise ValueError(
            f"advice_by_system holds {int(duplicated.sum())} rows for repeated (example_id, "
            f"condition, system) triples, e.g. {list(pairs.itertuples(index=False, name=None))}"
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
    joined = advice[["example_id", "condition", "system", "advice", "latency_s"]].merge(
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
    ranks = {
        "condition": {c: i for i, c in enumerate(order_conditions(joined["condition"]))},
        "system": {s: i for i, s in enumerate(order_systems(joined["system"]))},
    }
    joined = joined.sort_values(
        ["condition", "system", "example_id"],
        key=lambda c: c.map(ranks[c.name]) if c.name in ranks else c,
    )
    columns = [
        "example_id", "condition", "system", *EXAMPLE_COLUMNS[1:], "advice", "reference_advice"
    ]  # fmt: skip
    return joined[[*columns, "latency_s"]].reset_index(drop=True)


# --------------------------------------------------------------------------- per-example metrics


def truth_columns(examples: pd.DataFrame) -> pd.DataFrame:
    """Direction, amount and their errors against the applied perturbation, per row.

    Columns of :class:`anchormix_kedro.advice_language.parsing.TruthMetrics` plus ``advised_move_db``:
    the fader move the advice asks for (down negative, 0 for "leave it", missing when the
    advice names no direction or, outside "balanced", no amount).
    """
    truth = truth_metrics_frame(
        list(examples["advice"]),
        list(examples["label"]),
        list(examples["gain_db"]),
        list(examples["target"]) if "target" in examples else None,
        list(examples["anchor"]) if "anchor" in examples else None,
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
    """BERTScore, ROUGE-L and METEOR of each advice against the reference advice: of the
    cores (:data:`TEXT_SCORE_COLUMNS`, optional sentences taken out of both, the wording
    policy) and of the texts as written (:data:`TEXT_SCORE_AS_WRITTEN_COLUMNS`).

    Both are scored in one call, so a pair shared by the two is scored once. ``options`` go to :func:`anchormix_kedro.evaluation.text_metrics.score_texts` (``bertscore_model``,
    ``bertscore_num_layers``, ``batch_size``, ``device``, ``use_wordnet``); the returned
    frame's ``attrs["variants"]`` says which model and METEOR variant ran.
    """
    from anchormix_kedro.evaluation.text_metrics import score_texts

    written = list(examples["advice"]), list(examples["reference_advice"])
    cores = [core_advice(a) for a in written[0]], [core_advice(r) for r in written[1]]
    scores = score_texts(cores[0] + written[0], cores[1] + written[1], **options)
    n = len(examples)
    core = scores.iloc[:n].reset_index(drop=True)
    as_written = scores.iloc[n:].reset_index(drop=True)
    as_written.columns = [f"{c}{AS_WRITTEN}" for c in as_written.columns]
    frame = pd.concat([core, as_written], axis=1)
    frame.index = examples.index
    frame.attrs = scores.attrs
    return frame


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
            "item_id": f"{row.example_id}::{getattr(row, 'condition', AS_MIXED)}::{row.system}",
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
    if "gain_db" in table:  # the same score for the imbalances any engineer hears
        size = pd.to_numeric(table["gain_db"], errors="coerce").abs()
        for threshold in LARGE_OFFSETS_DB:
            table[f"direction_correct_{threshold}db_score"] = table[
                "direction_correct_score"
            ].where(size >= threshold)
    return table


def metric_columns(table: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The given columns that ``table`` has with at least one value, in order."""
    return [c for c in columns if c in table.columns and table[c].notna().any()]
