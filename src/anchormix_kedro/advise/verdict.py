"""The engineers' verdict of ``anchormix advise`` in words, and how a model's verdict compares.

The statistics (percentiles, usual range, grades) are in
:mod:`anchormix_kedro.evaluation.professional_range`; this module words a
:class:`~anchormix_kedro.evaluation.professional_range.Placement` for the report and
marks where a fine-tuned model's advice disagrees with the measurement.
"""

from __future__ import annotations

from anchormix_kedro.advice_language.wording import STEM_WORDS
from anchormix_kedro.evaluation.professional_range import (
    LOUD_SIDE,
    QUIET_SIDE,
    WITHIN_USUAL_RANGE,
    Placement,
)
from anchormix_kedro.instruction_data.conventions import ALL_GENRES
from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT

#: How each grade reads in the table.
GRADE_WORDS: dict[str, str] = {
    TOO_SOFT: "too soft",
    QUIET_SIDE: "on the quiet side",
    WITHIN_USUAL_RANGE: "within the usual range",
    LOUD_SIDE: "on the loud side",
    TOO_LOUD: "too loud",
}


def ordinal(number: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``11th``, ``22nd``, ..."""
    if 10 <= number % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def percentile_words(percentile: float) -> str:
    """``the 83rd percentile``, or below/above every professional mix measured."""
    if percentile <= 0.0:
        return "below every professional mix measured"
    if percentile >= 100.0:
        return "above every professional mix measured"
    return f"the {ordinal(max(1, min(99, round(percentile))))} percentile"


def format_range(low: float, high: float) -> str:
    """``-3.5 to +4.0 dB``."""
    return f"{low:+.1f} to {high:+.1f} dB"


def _mixes(placement: Placement) -> str:
    if placement.genre == ALL_GENRES:
        return "professional mixes of every genre"
    return f"professional {placement.genre} mixes"


def _amount(move_db: float) -> str:
    """A fader amount an engineer can set: to the nearest half dB, at least 0.5 dB."""
    return f"{max(0.5, round(abs(move_db) * 2) / 2):g} dB"


def graded_advice(anchor: str, target: str, placement: Placement) -> str:
    """The measurement's advice for one target, e.g. for a too loud vocal::

    The vocal is louder against the drums than 90% of professional mixes of every genre
    (above every professional mix measured; usual range +1.3 to +5.9 dB): pull the vocal
    fader down about 3.5 dB to bring it into the usual range.
    """
    words = STEM_WORDS.get(target)
    noun = words.noun if words else target
    fader = words.fader if words else f"{target} fader"
    pronoun = "them" if words and words.plural else "it"
    verb = "are" if words and words.plural else "is"
    anchor_noun = STEM_WORDS[anchor].noun if anchor in STEM_WORDS else anchor
    subject = noun[0].upper() + noun[1:]
    where = (
        f"{percentile_words(placement.percentile)} of {_mixes(placement)}; usual range "
        f"{format_range(*placement.usual_range_db)} against {anchor_noun}"
    )
    move = placement.to_usual_range_db
    if placement.grade == WITHIN_USUAL_RANGE:
        return f"{subject} {verb} within the usual range ({where}): leave the {fader} where it is."
    if placement.grade in (LOUD_SIDE, QUIET_SIDE):
        side = "loud" if placement.grade == LOUD_SIDE else "quiet"
        action = "pulling the {fader} down" if move < 0 else "pushing the {fader} up"
        return (
            f"{subject} {verb} on the {side} side but within what professional mixes do "
            f"({where}). Fine if you want {pronoun} there; {action.format(fader=fader)} about "
            f"{_amount(move)} would bring {pronoun} into the usual range."
        )
    outer_low, outer_high = placement.bands.outer
    if placement.grade == TOO_LOUD:
        share, comparison, action = outer_high, "louder", "pull the {fader} down"
    else:
        share, comparison, action = 100.0 - outer_low, "quieter", "push the {fader} up"
    return (
        f"{subject} {verb} {comparison} against {anchor_noun} than {share:g}% of "
        f"{_mixes(placement)} ({where}): {action.format(fader=fader)} about "
        f"{_amount(move)} to bring {pronoun} into the usual range."
    )


def _direction(label: str | None) -> int:
    return {TOO_LOUD: 1, LOUD_SIDE: 1, TOO_SOFT: -1, QUIET_SIDE: -1}.get(label or "", 0)


def compare_with_model(placement: Placement, model_verdict: str | None) -> tuple[bool, str | None]:
    """Whether the model's verdict agrees with the measurement, and if not, why.

    They disagree when they point in opposite directions, when the model asks for a move
    the measurement finds within the usual range, or when the measurement finds the level
    beyond the outer percentiles and the model calls it balanced. "On the loud side" agrees
    with both "too loud" and "balanced". A model answer without a verdict cannot disagree.
    """
    if model_verdict not in (TOO_LOUD, TOO_SOFT, BALANCED):
        return True, None
    measured = placement.grade
    said = GRADE_WORDS.get(model_verdict, model_verdict.replace("_", " "))
    found = f"{GRADE_WORDS[measured]} ({percentile_words(placement.percentile)})"
    if _direction(model_verdict) * _direction(measured) < 0:
        return False, f"the model says {said}; the measurement finds it {found}"
    if model_verdict != BALANCED and measured == WITHIN_USUAL_RANGE:
        return False, f"the model says {said}; the measurement finds it {found}"
    if model_verdict == BALANCED and measured in (TOO_LOUD, TOO_SOFT):
        return False, f"the model says balanced; the measurement finds it {found}"
    return True, None
