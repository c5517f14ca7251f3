"""The DSP baseline: judge a stem's level against the genre's mixing convention.

It measures what a meter can: the target's BS.1770 loudness minus the anchor's. The
professional mixes of MUSDB18 give each (anchor, target) pair a conventional relative
level (:func:`shipped_conventions`); the baseline calls the target too loud or too soft by
how far it sits from that convention, with the same tolerance and the same advice
templates as the instruction dataset, so its advice compares with any model's word for word.
It quotes the convention it used in an optional sentence, which the text metrics set aside
for every system alike (the wording policy,
:func:`anchormix_kedro.advice_language.wording.core_advice`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pandas as pd

from anchormix_kedro.advice_language.wording import advice_text, convention_sentence
from anchormix_kedro.instruction_data.conventions import ALL_GENRES, CONVENTION_COLUMNS
from anchormix_kedro.vocabulary import BALANCED, BALANCED_TOLERANCE_DB, label_for_gain

#: How the baseline is named wherever systems are compared.
# Salts the wording draws; fixed, so that the same example is always worded the same.
WORDING_SALT = "dsp-baseline"
#: |deviation from the convention| at or below this is "balanced" (the dataset's tolerance).
CONVENTIONS_RESOURCE = "resources/genre_conventions.csv"


@lru_cache(maxsize=1)
def _read_shipped_conventions() -> pd.DataFrame:
    with resources.files("anchormix_kedro").joinpath(CONVENTIONS_RESOURCE).open("r") as handle:
        return pd.read_csv(handle)[CONVENTION_COLUMNS]


def shipped_conventions() -> pd.DataFrame:
    """Genre conventions shipped with the project, measured on MUSDB18's training songs.

    Columns as :data:`anchormix_kedro.instruction_data.conventions.CONVENTION_COLUMNS`, one row per genre and
    ordered (anchor, target) pair of the four stems, plus genre ``all`` for every pair.
    """
    return _read_shipped_conventions().copy()


def judge_balance(
    anchor_lufs: float,
    target_lufs: float,
    convention_median_db: float,
    tolerance_db: float = BALANCED_TOLERANCE_DB,
) -> tuple[str, float]:
    """Label a target's level and say how far it is from the convention.

    The deviation is the measured relative level (``target_lufs - anchor_lufs``) minus the
    conventional one; ``|deviation| <= tolerance_db`` is balanced, above it too loud,
    below it too soft. The fader move that undoes the imbalance is ``-deviation``.
    Returns ``(label, deviation_db)``.
    """
    deviation_db = (target_lufs - anchor_lufs) - convention_median_db
    return label_for_gain(deviation_db, tolerance_db), deviation_db


def fader_move_db(label: str, deviation_db: float) -> float:
    """The fader move for a judgement: none when balanced, else ``-deviation_db``."""
    return 0.0 if label == BALANCED else -deviation_db


def dsp_advice(
    label: str,
    anchor: str,
    target: str,
    deviation_db: float,
    seed: str,
    convention: Mapping | None = None,
) -> str:
    """Word a judgement with the dataset's advice templates.

    ``seed`` (e.g. the song and pair) picks the phrasing, so the same input always gets the
    same words. ``convention`` is a conventions row (``genre``, ``median_db``); when given,
    the sentence quoting it is appended ("Across genres, the vocal usually sits ...").
    """
    rng = random.Random(f"{WORDING_SALT}:{seed}")
    sentence = None
    if convention is not None:
        sentence = convention_sentence(
            str(convention["genre"]),
            anchor,
            target,
            float(convention["median_db"]),
            pooled=convention["genre"] == ALL_GENRES,
        )
    return advice_text(label, target, anchor, abs(deviation_db), rng, convention=sentence)


@dataclass(frozen=True)
class DspJudgement:
    """The baseline's verdict on one (anchor, target) pair."""

    anchor: str
    target: str
    relative_db: float  # measured target minus anchor loudness
    convention_genre: str  # the genre whose convention was used ("all" when pooled)
    convention_db: float
    label: str
    deviation_db: float  # relative_db - convention_db
    fader_move_db: float
    advice: str


def judge_pair(
    anchor: str,
    target: str,
    relative_db: float,
    convention: Mapping,
    seed: str,
    tolerance_db: float = BALANCED_TOLERANCE_DB,
    mention_convention: bool = True,
) -> DspJudgement:
    """Judge one pair's measured level (target minus anchor loudness) against a conventions row.

    Look the row up with :func:`anchormix_kedro.instruction_data.conventions.lookup_convention`; ``seed``
    picks the advice's phrasing (see :func:`dsp_advice`).
    """
    median_db = float(convention["median_db"])
    label, deviation_db = judge_balance(0.0, relative_db, median_db, tolerance_db)
    return DspJudgement(
        anchor=anchor,
        target=target,
        relative_db=relative_db,
        convention_genre=str(convention["genre"]),
        convention_db=median_db,
        label=label,
        deviation_db=deviation_db,
        fader_move_db=fader_move_db(label, deviation_db),
        advice=dsp_advice(
            label,
            anchor,
            target,
            deviation_db,
            seed,
            convention if mention_convention else None,
        ),
    )
