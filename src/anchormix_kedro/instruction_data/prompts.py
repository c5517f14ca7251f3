"""A variant's prompt: the instruction dataset's conversations asked another way.

The instruction dataset holds each example's conversations once, asked as ``templating``
says (the genre named or not, an instruction drawn from a pool of phrasings). A variant
may ask differently (``systems.variants.<name>.prompt``): without the genre, with one
phrasing for every example, or with each clip's BS.1770 meter reading, as LLM2Fx puts DSP
features in the prompt (a tool-assisted variant). :func:`variant_conversations` rewrites
the user's text of the stored conversations, in training and at inference alike, so a
variant is always asked the way it learnt; the clips are left as they are.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import pandas as pd

from anchormix_kedro.advice_language.wording import STEM_WORDS, example_rng, instruction_text
from anchormix_kedro.vocabulary import TARGET_ONLY, messages_column

__all__ = [
    "FIXED",
    "INSTRUCTION_POOLS",
    "VARIED",
    "PromptSettings",
    "loudness_levels",
    "meter_sentence",
    "stem_loudness",
    "variant_conversations",
]

VARIED, FIXED = "varied", "fixed"
INSTRUCTION_POOLS: tuple[str, ...] = (VARIED, FIXED)
#: The draw every example of a ``fixed`` pool shares: one phrasing for all of them.
_FIXED_DRAW = "one phrasing for every example"


@dataclass(frozen=True)
class PromptSettings:
    """How a variant is asked.

    ``genre``: name the song's genre (``None``: as the dataset was built,
    ``templating.mention_genre_in_prompt``); ``instructions``: ``varied`` (the pool of
    phrasings, as built) or ``fixed`` (one phrasing for every example); ``meter``: add
    each clip's BS.1770 loudness as heard (a tool-assisted variant).
    """

    genre: bool | None = None
    instructions: str = VARIED
    meter: bool = False

    @classmethod
    def from_params(cls, params: Mapping | None, where: str = "prompt") -> PromptSettings:
        params = dict(params or {})
        unknown = sorted(set(params) - {"genre", "instructions", "meter"})
        if unknown:
            raise ValueError(
                f"{where} has unknown keys {unknown}; expected genre, instructions, meter"
            )
        genre = params.get("genre")
        if genre is not None and not isinstance(genre, bool):
            raise ValueError(f"{where}.genre must be true, false or null, got {genre!r}")
        instructions = params.get("instructions", VARIED)
        if instructions not in INSTRUCTION_POOLS:
            raise ValueError(
                f"{where}.instructions {instructions!r} is not one of {', '.join(INSTRUCTION_POOLS)}"
            )
        meter = params.get("meter", False)
        if not isinstance(meter, bool):
            raise ValueError(f"{where}.meter must be true or false, got {meter!r}")
        return cls(genre, instructions, meter)

    @property
    def as_built(self) -> bool:
        """Asked exactly as the instruction dataset's conversations are."""
        return self == PromptSettings()

    def as_dict(self) -> dict:
        return asdict(self)


def _genre_prefix(formulation: str, anchor: str, target: str, genre: str) -> str:
    """What naming the genre puts before an instruction (the same draw with and without)."""
    named = instruction_text(formulation, anchor, target, random.Random(0), genre)
    plain = instruction_text(formulation, anchor, target, random.Random(0))
    return named.removesuffix(plain)


def meter_sentence(formulation: str, anchor: str, target: str, anchor_lufs, target_lufs) -> str:
    """The meter's readings of the clips as played, e.g. "BS.1770 meter: the drums read
    -14.2 LUFS, the vocal -17.9 LUFS." (the target alone for ``target_only``)."""

    def reading(lufs: float) -> str:
        return f"{lufs:.1f} LUFS" if math.isfinite(lufs) else "silence"

    target_part = f"{STEM_WORDS[target].noun} {reading(target_lufs)}"
    if formulation == TARGET_ONLY:
        return f"BS.1770 meter: {target_part}."
    return f"BS.1770 meter: {STEM_WORDS[anchor].noun} {reading(anchor_lufs)}, {target_part}."


def stem_loudness(rows: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Each ``(excerpt, stem)``'s loudness as mixed, from the examples' level columns."""
    levels: dict[tuple[str, str], float] = {}
    for ex in rows.itertuples(index=False):
        levels.setdefault((ex.excerpt_id, ex.anchor), float(ex.anchor_lufs))
        levels.setdefault((ex.excerpt_id, ex.target), float(ex.target_lufs))
    return levels


def loudness_levels(loudness: pd.DataFrame) -> dict[tuple[str, str], float]:
    """Each ``(excerpt, stem)``'s loudness as mixed, from ingestion's loudness table."""
    return {
        (str(e), str(s)): float(v)
        for e, s, v in loudness[["excerpt_id", "stem", "lufs"]].itertuples(index=False)
    }


def _instruction(messages: list[dict]) -> dict:
    user = next(m for m in messages if m["role"] == "user")
    return next(item for item in user["content"] if item.get("type") == "text")


def variant_conversations(
    rows: pd.DataFrame,
    formulation: str,
    prompt: PromptSettings,
    levels: Mapping[tuple[str, str], float] | None = None,
) -> list[str]:
    """The conversations of ``rows`` in ``formulation``, asked as ``prompt`` says.

    The rows are the instruction dataset's (or the evaluation's test examples in a
    condition: ``stage_db`` plays both clips at a common gain, ``anchor_excerpt_id`` takes
    the anchor from another song). ``levels``: every ``(excerpt, stem)``'s loudness as
    mixed (default: read off ``rows``), for the meter's readings of a swapped anchor.
    """
    column = messages_column(formulation)
    if prompt.as_built:
        return rows[column].tolist()
    if prompt.meter and levels is None:
        levels = stem_loudness(rows)
    out = []
    for ex in rows.itertuples(index=False):
        messages = json.loads(getattr(ex, column))
        text = _instruction(messages)
        prefix = _genre_prefix(formulation, ex.anchor, ex.target, ex.genre)
        named = bool(prefix) and text["text"].startswith(prefix)
        instruction = text["text"].removeprefix(prefix) if named else text["text"]
        if prompt.instructions == FIXED:
            rng = example_rng(0, _FIXED_DRAW, formulation)
            instruction = instruction_text(formulation, ex.anchor, ex.target, rng)
        if prompt.genre if prompt.genre is not None else named:
            instruction = _genre_prefix(formulation, ex.anchor, ex.target, ex.genre) + instruction
        if prompt.meter:
            stage = float(getattr(ex, "stage_db", 0.0) or 0.0)
            anchor_from = getattr(ex, "anchor_excerpt_id", None) or ex.excerpt_id
            key = (anchor_from, ex.anchor)
            if key not in levels:
                raise ValueError(
                    f"no loudness for the {ex.anchor} of excerpt {anchor_from!r}, the anchor "
                    f"of example {ex.example_id!r}: the meter cannot read it"
                )
            anchor_lufs = levels[key] + stage
            target_lufs = float(ex.target_lufs) + float(ex.gain_db) + stage
            reading = meter_sentence(formulation, ex.anchor, ex.target, anchor_lufs, target_lufs)
            instruction = f"{instruction} {reading}"
        text["text"] = instruction
        out.append(json.dumps(messages))
    return out
