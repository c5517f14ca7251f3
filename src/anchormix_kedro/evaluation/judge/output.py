"""Strict parsing of the judge's answer: JSON in the rubric's shape, or a reason why not."""

from __future__ import annotations

import json
import re
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


def parse_judge_output(text: str) -> tuple[dict[str, int], str]:
    """The scores and rationale of an answer, or :class:`JudgeOutputError` saying why not.

    The answer must be one JSON object, optionally inside a Markdown code fence, holding
    every criterion as an integer from 1 to 7 (not a float, string or boolean) and
    ``rationale`` as a string. Extra keys are ignored.
    """
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
    missing = [key for key in (*CRITERIA, "rationale") if key not in data]
    if missing:
        raise JudgeOutputError(f"missing keys {missing}")
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
