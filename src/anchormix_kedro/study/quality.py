"""Raters' attention, from the catch trials, and the exclusion rule the analysis applies.

- **Catch**: advice in the wrong direction; a rater who listened rates its effectiveness low.
- **Repeat**: one scenario shown twice; the mean absolute difference of the two answers
  over the four criteria is the rater's test-retest difference.
- **Listening**: the seconds of audio the rater played, over all their scenarios.

:func:`rater_quality` gives each rater's results and whether the rule in
``study.exclusion`` excludes them (a rule whose trial a rater has not answered yet does not
exclude them). Exclusion leaves the data where it is: the analysis leaves those raters out
and reports who and why.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd
import sqlalchemy as sa

from anchormix_kedro.study.answers import query_frame
from anchormix_kedro.study.design import REPEAT_SUFFIX
from anchormix_kedro.study.schema import answers, assignments, events, raters
from anchormix_kedro.study.storage import StudyStore
from anchormix_kedro.vocabulary import CRITERIA

QUALITY_COLUMNS: tuple[str, ...] = ("rater", "catch_effectiveness", "repeat_mean_abs_diff",
                                    "listened_seconds", "headphone_correct", "excluded",
                                    "reason")  # fmt: skip
QUALITY_INPUT_COLUMNS: dict[str, tuple[str, ...]] = {
    "raters": ("rater", "study_version"),
    "assignments": ("item", "scenario_id", "kind", "rater", "study_version"),
    "answers": ("item", *CRITERIA, "rater", "study_version"),
    "listened": ("study_version", "rater", "seconds"),
    "checks": ("study_version", "rater", "correct"),
}
DEFAULT_RULES = {"catch_max_effectiveness": 3, "repeat_max_mean_abs_diff": 2.0,
                 "min_listened_seconds": None, "min_headphone_correct": None}  # fmt: skip


def quality_inputs(store: StudyStore, version: str | None = None) -> dict[str, pd.DataFrame]:
    """What the quality checks read, as tables (``version`` None: every study): ``raters``
    (study_version, rater), ``assignments`` (+ item, scenario_id, kind), ``answers``
    (+ item, the criteria) and ``listened`` (+ seconds of audio played)."""
    where = [raters.c.study_version == version] if version is not None else []
    rater = [raters.c.label.label("rater"), raters.c.study_version]
    slots = query_frame(store, sa.select(assignments.c.item, assignments.c.scenario_id,
                   assignments.c.kind, *rater).join(raters, raters.c.id == assignments.c.rater_id)
                   .where(*where))  # fmt: skip
    given = query_frame(store, sa.select(answers.c.item, *(answers.c[c] for c in CRITERIA), *rater)
                   .join(raters, raters.c.id == answers.c.rater_id).where(*where))  # fmt: skip
    logged = query_frame(store, sa.select(events.c.kind, events.c.detail, *rater)
                    .join(raters, raters.c.id == events.c.rater_id)
                    .where(events.c.kind.in_(["listened", "headphone_check"]), *where))  # fmt: skip
    detail = [json.loads(d or "{}") for d in logged["detail"]]
    logged["seconds"] = [float(d.get("seconds", 0.0)) for d in detail]
    logged["correct"] = [d.get("correct") for d in detail]
    keys = ["study_version", "rater"]
    listened = logged[logged["kind"] == "listened"].groupby(keys, as_index=False)["seconds"].sum()
    checked = logged[logged["kind"] == "headphone_check"].groupby(keys, as_index=False)["correct"]
    people = query_frame(store, sa.select(*rater).where(*where))
    return {"raters": people, "assignments": slots, "answers": given, "listened": listened,
            "checks": checked.last()[[*keys, "correct"]]}  # fmt: skip


def rater_quality(inputs: Mapping[str, pd.DataFrame], version: str,
                  rules: Mapping | None = None) -> pd.DataFrame:  # fmt: skip
    """Each rater's catch, repeat and listening results in study ``version``, and the
    rule's verdict (columns :data:`QUALITY_COLUMNS`)."""
    rules = {**DEFAULT_RULES, **(rules or {})}

    def of_study(name: str) -> pd.DataFrame:
        frame = inputs[name]
        return frame[frame["study_version"] == version] if len(frame) else frame

    slots, given, played = of_study("assignments"), of_study("answers"), of_study("listened")
    listened = played.set_index("rater")["seconds"].to_dict() if len(played) else {}
    checked = of_study("checks") if "checks" in inputs else pd.DataFrame()
    headphones = checked.set_index("rater")["correct"].to_dict() if len(checked) else {}
    people = sorted(of_study("raters")["rater"]) if len(inputs["raters"]) else []
    ratings = (given.set_index(["rater", "item"])[list(CRITERIA)] if len(given)
               else pd.DataFrame(columns=list(CRITERIA)))  # fmt: skip
    rows = []
    for rater in people:
        mine = slots[slots["rater"] == rater] if len(slots) else slots
        catch = _rating(ratings, rater, mine, "catch")
        repeat = _repeat_difference(ratings, rater, mine)
        seconds = float(listened.get(rater, 0.0))
        reasons = []
        if None not in (catch, rules["catch_max_effectiveness"]) and (
            catch > rules["catch_max_effectiveness"]
        ):
            reasons.append(f"rated the wrong-direction catch {catch:g} for effectiveness "
                           f"(at most {rules['catch_max_effectiveness']})")  # fmt: skip
        if None not in (repeat, rules["repeat_max_mean_abs_diff"]) and (
            repeat > rules["repeat_max_mean_abs_diff"]
        ):
            reasons.append(f"answered the repeated scenario {repeat:.2f} points apart "
                           f"(at most {rules['repeat_max_mean_abs_diff']})")  # fmt: skip
        minimum = rules.get("min_listened_seconds")
        if minimum is not None and len(mine) and seconds < float(minimum):
            reasons.append(f"played {seconds:.0f} s of audio (at least {minimum})")
        correct = headphones.get(rater)
        least = rules.get("min_headphone_correct")
        if None not in (correct, least) and correct < least:
            reasons.append(f"answered {correct} of 3 headphone trials right (at least {least})")
        rows.append({"rater": rater, "catch_effectiveness": catch,
                     "repeat_mean_abs_diff": repeat, "listened_seconds": round(seconds, 1),
                     "headphone_correct": correct,
                     "excluded": bool(reasons), "reason": "; ".join(reasons)})  # fmt: skip
    return pd.DataFrame(rows, columns=list(QUALITY_COLUMNS))


def _rating(ratings: pd.DataFrame, rater: str, mine: pd.DataFrame, kind: str) -> float | None:
    items = mine.loc[mine["kind"] == kind, "item"] if len(mine) else []
    for item in items:
        if (rater, item) in ratings.index:
            value = ratings.loc[(rater, item), "effectiveness"]
            return None if pd.isna(value) else float(value)
    return None


def _repeat_difference(ratings: pd.DataFrame, rater: str, mine: pd.DataFrame) -> float | None:
    items = mine.loc[mine["kind"] == "repeat", "item"] if len(mine) else []
    for item in items:
        original = item.removesuffix(REPEAT_SUFFIX)
        if (rater, item) in ratings.index and (rater, original) in ratings.index:
            first = ratings.loc[(rater, original)].astype(float)
            second = ratings.loc[(rater, item)].astype(float)
            if first.notna().all() and second.notna().all():
                return float((first - second).abs().mean())
    return None
