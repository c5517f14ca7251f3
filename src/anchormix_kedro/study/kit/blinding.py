"""Blinding: advice that does not betray its system.

Raters must judge what the advice says, not recognise who wrote it. Two things give a
system away: a sentence only one system writes (the DSP rule ends every piece of advice
with the genre's convention, "Across genres, the bass usually sits about 2 dB below the
drums."), and a style of its own. :func:`strip_convention` takes the convention sentence
out of every system's advice shown in the study; :func:`distinctive_phrases` reports, per
system, the phrases that only it uses, so a study can be checked before it is sent.
"""

from __future__ import annotations

import random
import re
from collections import Counter

import pandas as pd

from anchormix_kedro.advice_language.parsing import parse_advice
from anchormix_kedro.advice_language.wording import advice_text
from anchormix_kedro.vocabulary import BALANCED

_CONVENTION = re.compile(
    r"\s*(?:In [^.]+? mixes,|Across genres,)[^.]*?\busually sits?\b[^.]*\.", re.IGNORECASE
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
BLINDING_COLUMNS: tuple[str, ...] = ("system", "phrase", "share", "advice")


def strip_convention(advice: str) -> str:
    """The advice without the genre-convention sentence (every system alike)."""
    return _CONVENTION.sub("", advice).strip() if isinstance(advice, str) else advice


def common_wording(candidates: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``candidates`` (one row per example and system, with ``anchor``, ``target`` and
    ``advice``) with each advice said in the common words of its judgement: the direction
    and amount read from it, worded by the reference templates (anchor and target named),
    one phrasing drawn per example and system. Advice whose judgement cannot be read (no
    direction, no amount, or cues that contradict each other) keeps its own words."""

    def reword(row) -> str:
        parsed = parse_advice(row.advice)
        readable = (
            parsed.direction is not None
            and not parsed.contradictory
            and (parsed.direction == BALANCED or parsed.amount_db is not None)
        )
        if not readable:
            return row.advice
        rng = random.Random(f"{seed}:{row.example_id}:{row.system}")
        return advice_text(parsed.direction, row.target, row.anchor, parsed.amount_db or 0.0, rng)

    return candidates.assign(advice=[reword(row) for row in candidates.itertuples(index=False)])


def _ngrams(text: str, n: int) -> set[str]:
    words = _WORD.findall(str(text).lower())
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def distinctive_phrases(key: pd.DataFrame, n: int = 4, min_share: float = 0.5) -> pd.DataFrame:
    """Per system, the ``n``-word phrases in at least ``min_share`` of its advice that no
    other system's advice contains (columns :data:`BLINDING_COLUMNS`; empty: blind).

    Stem names and numbers differ between examples, not systems, so a phrase must recur
    across a system's advice to count; ``advice`` is one example of it.
    """
    rows = []
    by_system = {s: list(g["advice"].astype(str)) for s, g in key.groupby("system", sort=True)}
    grams = {s: [_ngrams(a, n) for a in texts] for s, texts in by_system.items()}
    for system, sets in grams.items():
        counts = Counter(g for found in sets for g in found)
        others = set().union(*(g for s, gs in grams.items() if s != system for g in gs))
        for phrase, count in counts.items():
            share = count / len(sets)
            if share >= min_share and phrase not in others:
                example = next(a for a, g in zip(by_system[system], sets, strict=True)
                               if phrase in g)  # fmt: skip
                rows.append({"system": system, "phrase": phrase, "share": round(share, 3),
                             "advice": example})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(BLINDING_COLUMNS))
    return table.sort_values(["system", "share", "phrase"], ascending=[True, False, True])
