"""Timbre augmentation: clips coloured by a random broad EQ, so the model meets every stem
in more timbres than the training songs have (docs/recipes.md, recipes M and O).

The pretraining stand-in's loudness comparisons state what the EQ did to the loudness;
fine-tuning's clips are turned down or up by it, so the balance, and with it the advice,
stays as true as it was.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from anchormix_kedro.advice_language.wording import (
    Equalisation,
    audio_items,
    audio_uri,
    clip_parts,
)


@dataclass(frozen=True)
class TimbreAugmentation:
    """Each clip coloured by a random broad EQ: a tilt drawn from ``±tilt_db`` across the
    mel bands and a bell of ``±bell_db`` anywhere in them (``training.pretrain.timbre``,
    ``training.finetune_timbre``). Zero for both: the clips as recorded."""

    tilt_db: float = 0.0
    bell_db: float = 0.0

    def __post_init__(self) -> None:
        if self.tilt_db < 0 or self.bell_db < 0:
            raise ValueError(
                f"tilt_db ({self.tilt_db}) and bell_db "
                f"({self.bell_db}) are ranges and cannot be negative"
            )

    @classmethod
    def from_params(cls, params: dict | None, key: str) -> TimbreAugmentation:
        """The augmentation a parameters block asks for, with ``key`` named in any error."""
        unknown = sorted(set(params or {}) - {"tilt_db", "bell_db"})
        if unknown:
            raise ValueError(f"{key}: unknown keys {unknown}; expected tilt_db and bell_db")
        try:
            return cls(**(params or {}))
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None

    def __bool__(self) -> bool:
        return bool(self.tilt_db or self.bell_db)

    def draw(self, rng: random.Random) -> Equalisation:
        """A random EQ; none (and nothing drawn from ``rng``) when the augmentation is off."""
        if not self:
            return Equalisation()
        return Equalisation(
            round(rng.uniform(-self.tilt_db, self.tilt_db), 1),
            round(rng.uniform(-self.bell_db, self.bell_db), 1),
            round(rng.uniform(0.0, 1.0), 2),
        )


NO_TIMBRE = TimbreAugmentation()  # the clips as recorded


def loudness_neutral_uri(uri: str, equalisation: Equalisation, loudness_change: Callable) -> str:
    """The clip of ``uri`` coloured by ``equalisation`` and played as loud as before: its gain
    less what the EQ added to its loudness. A clip joining two stems plays as recorded (an
    EQ colours a clip of one stem)."""
    parts = clip_parts(uri)
    if len(parts) != 1 or not equalisation:
        return uri
    part = replace(parts[0], equalisation=equalisation)
    return audio_uri(
        part.excerpt_id,
        part.stem,
        part.gain_db - loudness_change(part),
        equalisation=equalisation,
    )


def coloured_conversations(
    conversations: Sequence[str],
    timbre: TimbreAugmentation,
    loudness_change: Callable,
    seed: int,
) -> list[str]:
    """Fine-tuning's conversations with every clip of one stem coloured at random and kept
    as loud as recorded (:func:`loudness_neutral_uri`), so the answers stay true.
    ``loudness_change`` says how many dB louder a clip part's EQ makes it."""
    if not timbre:
        return list(conversations)
    rng = random.Random(seed)
    coloured = []
    for raw in conversations:
        messages = json.loads(raw)
        for item in audio_items(messages):
            item["audio_url"] = loudness_neutral_uri(
                item["audio_url"], timbre.draw(rng), loudness_change
            )
        coloured.append(json.dumps(messages))
    return coloured
