"""The tiny base's stand-in for pretraining: generic listening, not mixing advice.

A real audio-language model arrives knowing what instruments sound like and which of two
sounds is louder. The tiny model starts from random weights, so before LoRA it is trained
fully on generic listening tasks built from the same clips: name a stem and its loudness,
and say which of two clips is louder and by how much. It never sees what a good balance
is, nor any advice, so the "generic base" ablation stays generic.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence

import pandas as pd

from anchormix_kedro.advice_language.wording import (
    STEM_WORDS,
    ClipPart,
    audio_uri,
    conversation,
)
from anchormix_kedro.model.timbre import NO_TIMBRE, TimbreAugmentation

COMPARE_PROMPTS = (
    "Which clip is louder, and by how much?",
    "Compare the loudness of Audio 1 and Audio 2.",
)
DESCRIBE_PROMPTS = (
    "Describe this stem and its loudness.",
    "What is playing in Audio 1, and how loud is it?",
    "Name the instrument in Audio 1 and give its integrated loudness.",
)


def describe_clip(stem: str, lufs: float) -> str:
    noun = STEM_WORDS[stem].noun
    return f"{noun[0].upper()}{noun[1:]}, at about {lufs:.0f} LUFS."


def description_conversations(examples: pd.DataFrame, system_prompt: str, seed: int) -> list[str]:
    """One description per distinct clip of ``examples``: the anchor as mixed, the target as perturbed."""
    rng = random.Random(seed)
    clips: dict[str, tuple[str, float]] = {}
    for row in examples.itertuples(index=False):
        clips[audio_uri(row.excerpt_id, row.anchor)] = (row.anchor, row.anchor_lufs)
        clips[audio_uri(row.excerpt_id, row.target, row.gain_db)] = (
            row.target,
            row.target_lufs + row.gain_db,
        )
    return [
        json.dumps(
            conversation(
                system_prompt, [uri], rng.choice(DESCRIBE_PROMPTS), describe_clip(stem, lufs)
            )
        )
        for uri, (stem, lufs) in sorted(clips.items())
    ]


def compare_clips(first: str, second: str, difference_db: float) -> str:
    """E.g. "Audio 2 (the vocal) is about 6 dB louder than Audio 1 (the drums)."."""
    a, b = STEM_WORDS[first].noun, STEM_WORDS[second].noun
    if abs(difference_db) < 0.5:
        return f"Audio 1 ({a}) and Audio 2 ({b}) are about equally loud."
    louder, softer = ("2", "1") if difference_db > 0 else ("1", "2")
    names = {"1": a, "2": b}
    return f"Audio {louder} ({names[louder]}) is about {abs(difference_db):.0f} dB louder than Audio {softer} ({names[softer]})."


# Which clips the comparisons set side by side: each example's anchor and target, or any
# two stems of its excerpt (the ear hears every stem against every other).
ANCHOR_TARGET = "anchor_target"
EVERY_STEM_PAIR = "every_stem_pair"
COMPARISONS = (ANCHOR_TARGET, EVERY_STEM_PAIR)


def comparison_conversations(
    examples: pd.DataFrame,
    system_prompt: str,
    seed: int,
    comparisons: str = ANCHOR_TARGET,
    timbre: TimbreAugmentation = NO_TIMBRE,
    loudness_change: Callable[[ClipPart], float] | None = None,
) -> list[str]:
    """For each example: which of two clips is louder and by how much, the second clip at
    the example's gain. ``anchor_target``: the example's own two clips; ``every_stem_pair``:
    two stems of its excerpt drawn at random (in either order), so there are as many
    comparisons, over every pair of stems the excerpt has.

    With a ``timbre`` augmentation each clip is EQ'd at random and the stated difference
    includes what the EQs did to the loudness: ``loudness_change`` (needed then) says how
    many dB louder a part's EQ makes it."""
    if comparisons not in COMPARISONS:
        raise ValueError(
            f"training.pretrain.comparisons {comparisons!r} is not one of {COMPARISONS}"
        )
    if timbre and loudness_change is None:
        raise ValueError("a timbre augmentation needs the loudness change of an EQ")
    rng = random.Random(seed)
    levels: dict[str, dict[str, float]] = {}  # excerpt -> stem -> loudness as delivered
    if comparisons == EVERY_STEM_PAIR:
        for row in examples.itertuples(index=False):
            stems = levels.setdefault(row.excerpt_id, {})
            stems[row.anchor], stems[row.target] = row.anchor_lufs, row.target_lufs
    conversations = []
    for row in examples.itertuples(index=False):
        if comparisons == ANCHOR_TARGET:
            first, second, difference = row.anchor, row.target, row.perturbed_relative_db
        else:
            stems = levels[row.excerpt_id]
            first, second = rng.sample(sorted(stems), 2)
            difference = stems[second] + row.gain_db - stems[first]
        first_eq, second_eq = timbre.draw(rng), timbre.draw(rng)
        if first_eq or second_eq:
            difference += loudness_change(
                ClipPart(row.excerpt_id, second, row.gain_db, second_eq)
            ) - loudness_change(ClipPart(row.excerpt_id, first, 0.0, first_eq))
        uris = [
            audio_uri(row.excerpt_id, first, equalisation=first_eq),
            audio_uri(row.excerpt_id, second, row.gain_db, equalisation=second_eq),
        ]
        answer = compare_clips(first, second, difference)
        conversations.append(
            json.dumps(conversation(system_prompt, uris, rng.choice(COMPARE_PROMPTS), answer))
        )
    return conversations


WRITING_PROMPTS = (
    "Write a short note a mixing engineer might give.",
    "Give an example of gain advice.",
)


def language_conversations(texts: Sequence[str], system_prompt: str, seed: int) -> list[str]:
    """Text-only conversations: the language a pretrained model already speaks, with no audio.

    Without a clip there is nothing to judge, so this teaches words and phrasing only.
    """
    rng = random.Random(seed)
    return [
        json.dumps(
            [
                {"role": "system", "content": system_prompt},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": rng.choice(WRITING_PROMPTS)}],
                },
                {"role": "assistant", "content": text},
            ]
        )
        for text in sorted(set(texts))
    ]


def listening_conversations(
    examples: pd.DataFrame,
    system_prompt: str,
    seed: int,
    language: Sequence[str] = (),
    absolute_levels: bool = True,
    comparisons: str = ANCHOR_TARGET,
    timbre: TimbreAugmentation = NO_TIMBRE,
    loudness_change: Callable[[ClipPart], float] | None = None,
) -> list[str]:
    """The generic pre-training corpus, shuffled: clip descriptions, loudness comparisons and
    text-only language (``language``).

    Without ``absolute_levels`` (a front end that levels every conversation to its first
    clip) a lone clip's loudness cannot be heard, so clips are not described.
    ``comparisons``, ``timbre`` and ``loudness_change``: which clips are compared and how
    they are coloured (:func:`comparison_conversations`).
    """
    descriptions = description_conversations(examples, system_prompt, seed)
    conversations = (
        (descriptions if absolute_levels else [])
        + comparison_conversations(
            examples, system_prompt, seed, comparisons, timbre, loudness_change
        )
        + language_conversations(language, system_prompt, seed)
    )
    random.Random(seed).shuffle(conversations)
    return conversations


def conversation_texts(conversations: Sequence[str]) -> list[str]:
    """Every text of the conversations (system, instructions, answers): the tiny tokenizer's corpus."""
    texts = []
    for raw in conversations:
        for message in json.loads(raw):
            content = message["content"]
            if isinstance(content, str):
                texts.append(content)
            else:
                texts.extend(c["text"] for c in content if c["type"] == "text")
    return texts
