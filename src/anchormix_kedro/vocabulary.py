"""The project's shared words: labels, stems, formulations, rating scale and system names.

A leaf module: everything may import it and it imports nothing but the standard library,
so text parsing, ratings and the CLI's argument parser never pull in audio, torch or HTTP
code just to know what "balanced" is called.
"""

from __future__ import annotations

from collections.abc import Mapping

# --------------------------------------------------------------------------- labels

TOO_SOFT, BALANCED, TOO_LOUD = "too_soft", "balanced", "too_loud"
LABELS: tuple[str, ...] = (TOO_SOFT, BALANCED, TOO_LOUD)


def label_for_gain(gain_db: float, tolerance_db: float) -> str:
    """``balanced`` within ``±tolerance_db`` (inclusive), else ``too_loud`` / ``too_soft``."""
    if tolerance_db < 0:
        raise ValueError(f"perturbation.balanced_tolerance_db must be >= 0, got {tolerance_db}")
    if abs(gain_db) <= tolerance_db:
        return BALANCED
    return TOO_LOUD if gain_db > 0 else TOO_SOFT


# --------------------------------------------------------------------------- stems

STEM_NAMES: tuple[str, ...] = ("drums", "bass", "other", "vocals")  # MUSDB18's, in stream order

# --------------------------------------------------------------------------- formulations

# How the stems reach the model: anchor and target as two clips (the method), the target
# alone (the no-anchor ablation), or one clip playing the anchor, a pause, then the target.
ANCHOR_TARGET, TARGET_ONLY, SINGLE_CLIP = "anchor_target", "target_only", "single_clip"
FORMULATIONS: tuple[str, ...] = (ANCHOR_TARGET, TARGET_ONLY, SINGLE_CLIP)


def check_formulation(formulation: str) -> str:
    """``formulation`` itself, or a ValueError that lists the known ones."""
    if formulation not in FORMULATIONS:
        raise ValueError(
            f"formulation {formulation!r} is unknown; expected one of {', '.join(FORMULATIONS)}"
        )
    return formulation


def messages_column(formulation: str) -> str:
    """The instruction dataset's column holding the conversations of ``formulation``."""
    return f"messages_{check_formulation(formulation)}"


# --------------------------------------------------------------------------- rating scale

CRITERIA: tuple[str, ...] = ("effectiveness", "musicality", "actionability", "helpfulness")
LIKERT_MIN, LIKERT_MAX = 1, 7
#: The longest text a rater can write in one field (the study page, server and loader).
MAX_TEXT_CHARS = 5000
LIKERT_LABELS: dict[int, str] = {
    1: "very poor",
    2: "poor",
    3: "fair",
    4: "acceptable",
    5: "good",
    6: "very good",
    7: "excellent",
}

# --------------------------------------------------------------------------- systems

# Trained variants are named in conf/base/parameters/systems.yml (e.g. `advisor`,
# `no_anchor`); these baselines are systems the code runs without training of their own:
# the variants' base without an adapter, the first variant's package hearing silence (the
# floor the prompt's words alone reach), and the loudness rule.
GENERIC_BASE, TEXT_ONLY, DSP_BASELINE = "generic_base", "text_only", "dsp_baseline"
BASELINES: tuple[str, ...] = (GENERIC_BASE, TEXT_ONLY, DSP_BASELINE)


def system_order(systems: Mapping) -> list[str]:
    """The compared systems as the ``systems`` parameters declare them: variants, then
    baselines. Raises a ValueError naming what is wrong with the declaration."""
    variants = list(systems.get("variants") or {})
    baselines = list(systems.get("baselines") or [])
    unknown = [name for name in baselines if name not in BASELINES]
    if unknown:
        raise ValueError(
            f"systems.baselines: unknown baseline(s) {unknown}; the known ones are "
            f"{', '.join(BASELINES)} (trained systems go under systems.variants)"
        )
    clashes = sorted(set(variants) & set(BASELINES))
    if clashes:
        raise ValueError(f"systems.variants: {clashes} is a baseline's name; rename the variant")
    for needs_package in (GENERIC_BASE, TEXT_ONLY):
        if not variants and needs_package in baselines:
            raise ValueError(
                f"systems.baselines: {needs_package} needs at least one variant's package"
            )
    return variants + baselines


# --------------------------------------------------------------------------- defaults outside Kedro

# What `anchormix advise` uses when no trained package says otherwise. The pipelines take
# theirs from conf/base/globals.yml; a test keeps the two equal.
BALANCED_TOLERANCE_DB = 1.5  # |offset| <= this is "balanced"
CONVENTION_MIN_SONGS = 3  # fewer songs in a genre: use the all-genre convention
