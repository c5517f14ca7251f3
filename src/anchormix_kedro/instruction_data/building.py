"""The instruction dataset: one chat conversation per example and input formulation."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pandas as pd

from anchormix_kedro.advice_language.wording import (
    advice_text,
    convention_sentence,
    conversation,
    example_rng,
    formulation_clips,
    instruction_text,
)
from anchormix_kedro.instruction_data.conventions import (
    ALL_GENRES,
    convention_index,
    lookup_convention,
)
from anchormix_kedro.instruction_data.musdb import SPLITS, UNKNOWN_GENRE
from anchormix_kedro.vocabulary import FORMULATIONS, TARGET_ONLY, messages_column

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplatingSettings:
    """The ``templating`` parameters block."""

    seed: int
    system_prompt: str
    mention_genre_in_prompt: bool
    convention_sentence_probability: float
    convention_min_songs: int
    #: Splits whose clips play at a common random gain on anchor and target (a session
    #: recorded at another level), so absolute level carries no answer; empty: none.
    gain_staged_splits: tuple[str, ...] = ()
    gain_stage_range_db: tuple[float, float] = (-12.0, 6.0)

    @classmethod
    def from_params(cls, params: dict) -> TemplatingSettings:
        staging = dict(params.get("gain_staging") or {})
        splits = tuple(str(s) for s in (staging.get("splits") or ()))
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown:
            raise ValueError(
                f"templating.gain_staging.splits names unknown splits {unknown}; "
                f"expected some of {', '.join(SPLITS)}"
            )
        low, high = float(staging.get("min_db", -12.0)), float(staging.get("max_db", 6.0))
        if low > high:
            raise ValueError(f"templating.gain_staging: min_db ({low}) is above max_db ({high})")
        return cls(
            seed=int(params["seed"]),
            system_prompt=str(params["system_prompt"]),
            mention_genre_in_prompt=bool(params["mention_genre_in_prompt"]),
            convention_sentence_probability=float(params["convention_sentence_probability"]),
            convention_min_songs=int(params["convention_min_songs"]),
            gain_staged_splits=splits,
            gain_stage_range_db=(low, high),
        )

    def stage_db(self, example_id: str, split: str) -> float:
        """The common gain an example's clips play at (0 outside the gain-staged splits)."""
        if split not in self.gain_staged_splits:
            return 0.0
        low, high = self.gain_stage_range_db
        return round(example_rng(self.seed, example_id, "gain-stage").uniform(low, high), 1)


def check_song_splits(examples: pd.DataFrame) -> None:
    """Raise if any song appears in more than one split (that would leak test audio into training)."""
    per_song = examples.groupby("song")["split"].nunique()
    leaking = per_song[per_song > 1].index.tolist()
    if leaking:
        raise ValueError(
            f"songs in more than one split: {leaking}; splits must be assigned per song"
        )
    unknown = sorted(set(examples["split"]) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split names {unknown}; expected {', '.join(SPLITS)}")


def build_instruction_dataset(
    examples: pd.DataFrame, conventions: pd.DataFrame, settings: TemplatingSettings
) -> pd.DataFrame:
    """One chat conversation per example and input formulation (``messages_<formulation>``).

    ``anchor_target`` (the method: anchor clip, target clip), ``target_only`` (the no-anchor
    ablation, advice phrased against the mix) and ``single_clip`` (the anchor, a pause and
    the target in one clip).

    The assistant turn is the reference advice: relation, direction, amount in dB and the
    fader move; with probability ``convention_sentence_probability`` it adds the genre's
    convention measured on the training split. Examples of the gain-staged splits play
    anchor and target at a common gain (``stage_db``): the same balance, the same answer.
    """
    check_song_splits(examples)
    seed = settings.seed
    index = convention_index(conventions)
    rows = []
    for ex in examples.itertuples(index=False):
        rng_advice = example_rng(seed, ex.example_id, "advice")
        convention = None
        if (
            example_rng(seed, ex.example_id, "convention").random()
            < settings.convention_sentence_probability
        ):
            found = lookup_convention(
                index, ex.genre, ex.anchor, ex.target, settings.convention_min_songs
            )
            if found is not None:
                convention = convention_sentence(
                    ex.genre,
                    ex.anchor,
                    ex.target,
                    float(found["median_db"]),
                    pooled=found["genre"] == ALL_GENRES,
                )
        genre = ex.genre if settings.mention_genre_in_prompt and ex.genre != UNKNOWN_GENRE else None
        # The amount the advice names undoes the perturbation: a fader move of -gain_db.
        advice = advice_text(ex.label, ex.target, ex.anchor, ex.gain_db, rng_advice, convention)
        advice_target_only = advice_text(ex.label, ex.target, None, ex.gain_db, rng_advice)
        stage = settings.stage_db(ex.example_id, ex.split)
        row = {**ex._asdict(), "advice": advice, "stage_db": stage}
        for formulation in FORMULATIONS:
            # The same draw for every formulation: they differ only in what they must convey.
            rng_prompt = example_rng(seed, ex.example_id, "instruction")
            instruction = instruction_text(formulation, ex.anchor, ex.target, rng_prompt, genre)
            answer = advice_target_only if formulation == TARGET_ONLY else advice
            clips = formulation_clips(
                formulation, ex.excerpt_id, ex.anchor, ex.target, ex.gain_db, stage
            )
            row[messages_column(formulation)] = json.dumps(
                conversation(settings.system_prompt, clips, instruction, answer)
            )
        rows.append(row)
    dataset = pd.DataFrame(rows)
    logger.info(
        "Instruction dataset: %d conversations (%s)",
        len(dataset),
        ", ".join(f"{k} {v}" for k, v in dataset["split"].value_counts().sort_index().items()),
    )
    return dataset
