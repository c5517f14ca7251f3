"""Strict parsing of the judge's answers, JSON in the asked shape, or a reason why not.

:func:`parse_judge_output` reads a pointwise answer (four scores and a rationale),
:func:`parse_ranking` a listwise one (every shown label once, best first, and a reason).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from anchormix_kedro.vocabulary import CRITERIA, LIKERT_MAX, LIKERT_MIN


class JudgeOutputError(ValueError):
    """The judge's answer is not JSON in the rubric's shape."""


_FENCE = re.compile(r"^\s*```[ \t]*(?:json)?[ \t]*\n?(?P<body>.*?)\n?[ \t]*```\s*$", re.S | re.I)


def _reject_constant(name: str) -> None:
    raise JudgeOutputError(f"non-finite number {name} in the answer")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise JudgeOutputError(f"duplicate keys {duplicates}")
    return dict(pairs)


def _json_object(text: str, keys: Sequence[str]) -> dict[str, Any]:
    """One JSON object, optionally inside a Markdown code fence, holding ``keys``."""
    if not isinstance(text, str) or not text.strip():
        raise JudgeOutputError("empty answer")
    fenced = _FENCE.match(text)
    body = fenced["body"] if fenced else text
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise JudgeOutputError(f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise JudgeOutputError(f"expected a JSON object, got {type(data).__name__}")
    missing = [key for key in keys if key not in data]
    if missing:
        raise JudgeOutputError(f"missing keys {missing}")
    return data


def parse_judge_output(text: str) -> tuple[dict[str, int], str]:
    """The scores and rationale of an answer, or :class:`JudgeOutputError` saying why not.

    The answer must be one JSON object, optionally inside a Markdown code fence, holding
    every criterion as an integer from 1 to 7 (not a float, string or boolean) and
    ``rationale`` as a string. Extra keys are ignored.
    """
    data = _json_object(text, (*CRITERIA, "rationale"))
    scores = {}
    for name in CRITERIA:
        score = data[name]
        if isinstance(score, bool) or not isinstance(score, int):
            raise JudgeOutputError(f"{name} must be an integer, got {score!r}")
        if not LIKERT_MIN <= score <= LIKERT_MAX:
            raise JudgeOutputError(
                f"{name} = {score} is outside the scale {LIKERT_MIN}..{LIKERT_MAX}"
            )
        scores[name] = score
    if not isinstance(data["rationale"], str):
        raise JudgeOutputError(f"rationale must be a string, got {data['rationale']!r}")
    return scores, data["rationale"].strip()


def parse_ranking(text: str, labels: Sequence[str]) -> tuple[list[str], str]:
    """The ranking (labels, best first) and reason of a listwise answer, or why not.

    The answer must be one JSON object, optionally inside a Markdown code fence, holding
    ``ranking``, a list naming every label in ``labels`` exactly once (no other, no tie),
    and ``reason`` as a string. Extra keys are ignored.
    """
    data = _json_object(text, ("ranking", "reason"))
    ranking = data["ranking"]
    if not isinstance(ranking, list) or not all(isinstance(label, str) for label in ranking):
        raise JudgeOutputError(f"ranking must be a list of labels, got {ranking!r}")
    ranking = [label.strip() for label in ranking]
    unknown = sorted({label for label in ranking if label not in labels})
    if unknown:
        raise JudgeOutputError(f"ranking names unknown labels {unknown}; shown: {list(labels)}")
    repeated = sorted({label for label in ranking if ranking.count(label) > 1})
    if repeated:
        raise JudgeOutputError(f"ranking repeats labels {repeated}")
    left_out = [label for label in labels if label not in ranking]
    if left_out:
        raise JudgeOutputError(f"ranking leaves out labels {left_out}")
    if not isinstance(data["reason"], str):
        raise JudgeOutputError(f"reason must be a string, got {data['reason']!r}")
    return ranking, data["reason"].strip()
