"""The judge's rubric and prompt: what it is told about a mix and the advice to rate.

:class:`JudgeItem` is one piece of advice and what is known about its mix;
:func:`judge_messages` turns it into the chat the judge model reads (the rubric of
:data:`CRITERION_DEFINITIONS` on the 7-point scale, then the scenario and the advice).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anchormix_kedro.vocabulary import CRITERIA, LIKERT_LABELS, LIKERT_MAX, LIKERT_MIN

RUBRIC_VERSION = "anchormix-judge-v1"
CRITERION_DEFINITIONS: dict[str, str] = {
    "effectiveness": (
        "Would following the advice fix the level of the target against the anchor? Judge "
        "the direction and the size of the fader move against the true imbalance when it is "
        "given."
    ),
    "musicality": (
        "Does the advice show sound musical judgement about the roles of the two stems in "
        "this genre (what should lead, what should support)?"
    ),
    "actionability": (
        "Can an engineer act on it at once: which fader, which direction, by how many dB?"
    ),
    "helpfulness": (
        "Overall usefulness to an engineer balancing this mix: clear, concise, correct and "
        "free of misleading content."
    ),
}


@dataclass(frozen=True)
class JudgeItem:
    """One piece of advice to rate, and what is known about the mix it is about.

    ``true_gain_db`` is the offset applied to the target (positive: the target was made
    louder), ``true_label`` its label (``too_loud``, ``too_soft``, ``balanced``); either may
    be ``None`` when unknown. ``anchor=None`` means the target was heard alone. ``advice=None``
    (no answer was generated) is not sent to the judge: its scores stay missing.
    """

    item_id: str
    advice: str | None
    target: str
    anchor: str | None = None
    genre: str | None = None
    true_gain_db: float | None = None
    true_label: str | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> JudgeItem:
        """From a dict or a DataFrame row; ``example_id``, ``gain_db`` and ``label`` also work."""

        def value(*names: str) -> Any:
            for name in names:
                if name in row and not _is_missing(row[name]):
                    return row[name]
            return None

        item_id, advice, target = value("item_id", "example_id"), value("advice"), value("target")
        if item_id is None or target is None:
            raise ValueError(f"a judge item needs item_id (or example_id) and target: {row!r}")
        gain = value("true_gain_db", "gain_db")
        return cls(
            item_id=str(item_id),
            advice=None if advice is None else str(advice),
            target=str(target),
            anchor=value("anchor"),
            genre=value("genre"),
            true_gain_db=None if gain is None else float(gain),
            true_label=value("true_label", "label"),
        )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _stem_noun(stem: str) -> str:
    from anchormix_kedro.advice_language.wording import STEM_WORDS

    return STEM_WORDS[stem].noun if stem in STEM_WORDS else stem


def _true_imbalance(item: Any) -> str:
    target = _stem_noun(item.target)
    label = {
        "too_loud": "too loud",
        "too_soft": "too soft",
        "balanced": "balanced (leave the fader as it is)",
    }.get(item.true_label or "", None)
    if item.true_gain_db is None:
        if label is None:
            return "unknown: judge the advice on its plausibility."
        return f"{target} is {label}."
    gain = item.true_gain_db
    where = "at its level in the professional mix"
    if abs(gain) >= 0.05:
        louder = "louder" if gain > 0 else "softer"
        where = f"{abs(gain):.1f} dB {louder} than in the professional mix"
    sentence = f"{target} is {where}"
    if label is not None:
        sentence += f"; its label is {label}"
    if item.true_label != "balanced" and abs(gain) >= 0.05:
        move = "down" if gain > 0 else "up"
        sentence += f"; the ideal fix is to move its fader {move} by about {abs(gain):.1f} dB"
    return sentence + "."


def criteria_text() -> str:
    """The rubric's criteria, one ``- name: definition`` line each."""
    return "\n".join(f"- {name}: {CRITERION_DEFINITIONS[name]}" for name in CRITERIA)


def scenario_text(item: Any) -> str:
    """The scenario lines of a prompt: anchor, target, genre and the true imbalance.

    ``item`` has ``anchor``, ``target``, ``genre``, ``true_gain_db`` and ``true_label`` (a
    :class:`JudgeItem` or a listwise item).
    """
    anchor = _stem_noun(item.anchor) if item.anchor else "none (the target was heard on its own)"
    return (
        "Scenario:\n"
        f"- Anchor stem: {anchor}\n"
        f"- Target stem: {_stem_noun(item.target)}\n"
        f"- Genre: {item.genre or 'unknown'}\n"
        f"- True imbalance: {_true_imbalance(item)}"
    )


def judge_messages(item: JudgeItem) -> list[dict[str, str]]:
    """The chat the judge model reads: the rubric (system) and the scenario and advice (user)."""
    scale = ", ".join(f"{score} = {name}" for score, name in LIKERT_LABELS.items())
    criteria = criteria_text()
    shape = ", ".join(f'"{name}": <integer {LIKERT_MIN}-{LIKERT_MAX}>' for name in CRITERIA)
    system = (
        "You are an experienced mixing engineer rating gain-balancing advice that an "
        "assistant gave about a multitrack mix. Rate the advice on each criterion below on "
        f"a 7-point scale ({scale}).\n\n"
        f"Criteria:\n{criteria}\n\n"
        "Answer with strict JSON only, no other text:\n"
        f'{{{shape}, "rationale": "<one or two sentences>"}}'
    )
    user = f'{scenario_text(item)}\n\nAdvice to rate:\n"""\n{item.advice}\n"""'
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
