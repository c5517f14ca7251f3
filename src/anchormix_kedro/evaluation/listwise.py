"""Listwise judging of the evaluation table: one ranking of every system's advice per example.

:func:`listwise_items` groups the per-(example, system) table into one item per example and
condition; :func:`rank_advice` has the judge rank each item
(:mod:`anchormix_kedro.evaluation.judge.listwise`) and returns one row per (example,
condition, system) with its rank (1 = best), the label it was shown under and the judge's
reason, or the reason there is no rank. Summaries (mean rank, win rates with song-level
intervals) are in :mod:`anchormix_kedro.evaluation.listwise_summary`.

A *condition* is the state of the stems the advice was given for. The evaluation table
has one so far, the stems as mixed (:data:`DEFAULT_CONDITION`); a table with a
``condition`` column may hold more, and ``conditions`` chooses which are ranked.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import pandas as pd

from anchormix_kedro.evaluation.conditions import AS_MIXED
from anchormix_kedro.evaluation.judge import NO_JUDGE_MESSAGE, LLMJudge, log_coverage
from anchormix_kedro.evaluation.judge.listwise import (
    LISTWISE_RUBRIC_VERSION,
    ListwiseItem,
    ListwiseResult,
    rank_all,
)
from anchormix_kedro.evaluation.summaries import order_systems

logger = logging.getLogger(__name__)

#: The stems at their levels in the mix as delivered: the condition every example has.
DEFAULT_CONDITION = AS_MIXED
CONDITION_COLUMN = "condition"
NO_ADVICE = "no advice to rank"
LISTWISE_COLUMNS: tuple[str, ...] = (
    "example_id",
    "condition",
    "song",
    "system",
    "shown_as",
    "listwise_rank",
    "n_ranked",
    "listwise_reason",
    "listwise_ok",
    "listwise_error",
    "listwise_cached",
    "judge_backend",
    "judge_model",
    "listwise_rubric_version",
)
_SCENARIO = ("target", "anchor", "genre", "gain_db", "label")


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _with_conditions(examples: pd.DataFrame, conditions: Sequence[str] | None) -> pd.DataFrame:
    """The rows of the chosen conditions, with a ``condition`` column (default filled in)."""
    table = examples.copy()
    if CONDITION_COLUMN not in table.columns:
        table[CONDITION_COLUMN] = DEFAULT_CONDITION
    table[CONDITION_COLUMN] = table[CONDITION_COLUMN].fillna(DEFAULT_CONDITION).astype(str)
    if conditions is None:
        return table
    wanted = [str(c) for c in ([conditions] if isinstance(conditions, str) else conditions)]
    present = sorted(set(table[CONDITION_COLUMN]))
    unknown = [c for c in wanted if c not in present]
    if unknown:
        raise ValueError(
            f"listwise conditions {unknown} are not in the evaluation table, which holds "
            f"{present}; set automated_eval.listwise.conditions to some of those (or null)"
        )
    return table[table[CONDITION_COLUMN].isin(wanted)]


def listwise_items(
    examples: pd.DataFrame, conditions: Sequence[str] | None = (DEFAULT_CONDITION,)
) -> tuple[list[ListwiseItem], pd.DataFrame]:
    """One item per (example, condition) holding every system's advice, and the rows used.

    ``examples`` is the evaluation table (``example_id``, ``system``, ``advice``, ``song``
    and the scenario columns). Advice that is missing (no answer was generated) is left
    out of its item; empty advice is ranked like any other.
    """
    lacking = [
        c for c in ("example_id", "system", "advice", "song", *_SCENARIO) if c not in examples
    ]
    if lacking:
        raise ValueError(f"the evaluation table lacks columns {lacking} for the listwise judge")
    table = _with_conditions(examples, conditions)
    repeated = table.duplicated(["example_id", CONDITION_COLUMN, "system"], keep=False)
    if repeated.any():
        first = table.loc[repeated, ["example_id", CONDITION_COLUMN, "system"]].iloc[0].tolist()
        raise ValueError(
            f"the evaluation table holds {int(repeated.sum())} rows for repeated (example, "
            f"condition, system), e.g. {first}: each system answers an example once"
        )
    items = []
    for (example_id, condition), rows in table.groupby(
        ["example_id", CONDITION_COLUMN], sort=False
    ):
        first = rows.iloc[0]
        answers = tuple(
            (str(system), str(advice))
            for system, advice in zip(rows["system"], rows["advice"], strict=True)
            if not _missing(advice)
        )
        scenario = {c: (None if _missing(first[c]) else first[c]) for c in _SCENARIO}
        items.append(
            ListwiseItem(
                item_id=f"{example_id}::{condition}",
                target=str(scenario["target"]),
                answers=answers,
                anchor=scenario["anchor"],
                genre=scenario["genre"],
                true_gain_db=None if scenario["gain_db"] is None else float(scenario["gain_db"]),
                true_label=scenario["label"],
            )
        )
    return items, table


def rank_advice(
    examples: pd.DataFrame,
    judge: LLMJudge | None,
    conditions: Sequence[str] | None = (DEFAULT_CONDITION,),
    seed: int = 0,
    rubric_version: str = LISTWISE_RUBRIC_VERSION,
    progress: bool = False,
    max_in_flight: int | None = None,
) -> pd.DataFrame:
    """Every system's rank per (example, condition): columns :data:`LISTWISE_COLUMNS`.

    ``listwise_rank`` is 1 for the best of ``n_ranked`` answers, missing (never guessed)
    where the judge failed, answered outside the shape asked, or had fewer than two
    answers, and for systems without advice; ``listwise_error`` says why. With
    ``judge=None`` every rank is missing and the log says no judge is configured.
    """
    items, table = listwise_items(examples, conditions)
    if judge is None:
        logger.warning(NO_JUDGE_MESSAGE)
        results = [ListwiseResult(i.item_id, (), None, None, "no judge configured") for i in items]
        provenance = {"backend": None, "model": None, "rubric_version": rubric_version}
    else:
        results = rank_all(items, judge, seed, rubric_version, progress, max_in_flight)
        provenance = judge.provenance(rubric_version)
    by_item = {result.item_id: result for result in results}
    answered = {item.item_id: set(item.systems) for item in items}
    rows = []
    for row in table.itertuples(index=False):
        item_id = f"{row.example_id}::{getattr(row, CONDITION_COLUMN)}"
        result = by_item[item_id]
        listed = row.system in answered[item_id]
        rows.append(
            {
                "example_id": row.example_id,
                "condition": getattr(row, CONDITION_COLUMN),
                "song": row.song,
                "system": row.system,
                "shown_as": result.label_of(row.system),
                "listwise_rank": result.rank_of(row.system) if listed else None,
                "n_ranked": len(result.ranking) if result.ok else None,
                "listwise_reason": result.reason,
                "listwise_ok": result.ok and listed,
                "listwise_error": result.error if listed else NO_ADVICE,
                "listwise_cached": result.cached,
                "judge_backend": provenance["backend"],
                "judge_model": provenance["model"],
                "listwise_rubric_version": provenance["rubric_version"],
            }
        )
    frame = pd.DataFrame(rows, columns=list(LISTWISE_COLUMNS))
    frame = frame.astype({"listwise_rank": "Int64", "n_ranked": "Int64"})
    frame = frame.astype({"listwise_ok": "boolean", "listwise_cached": "boolean"})
    _log_coverage(frame, results, judge)
    return frame


def _log_coverage(frame: pd.DataFrame, results: list[ListwiseResult], judge) -> None:
    if judge is None or not results:
        return
    log_coverage("Listwise judge", judge, results, "examples ranked", "without a ranking")


def listwise_status(ranks: pd.DataFrame, judge: LLMJudge | None, enabled: bool = True) -> dict:
    """What the listwise judge did: configured or not, examples ranked, from cache, missing."""
    per_item = ranks.drop_duplicates(["example_id", "condition"])
    ranked = int(per_item["n_ranked"].notna().sum())
    return {
        "enabled": bool(enabled),
        "configured": judge is not None,
        "model": None if judge is None else judge.backend.model,
        "rubric_version": None if ranks.empty else str(ranks["listwise_rubric_version"].iloc[0]),
        "conditions": sorted(set(ranks["condition"])),
        "systems": order_systems(ranks["system"]),
        "examples": len(per_item),
        "ranked": ranked,
        "from_cache": int(per_item["listwise_cached"].fillna(False).sum()),
        "missing": len(per_item) - ranked,
    }


def empty_ranks() -> pd.DataFrame:
    """A rank table without rows (the listwise judge switched off)."""
    frame = pd.DataFrame(columns=list(LISTWISE_COLUMNS))
    for column in ("listwise_rank", "n_ranked"):
        frame[column] = frame[column].astype("Int64")
    for column in ("listwise_ok", "listwise_cached"):
        frame[column] = frame[column].astype("boolean")
    return frame
