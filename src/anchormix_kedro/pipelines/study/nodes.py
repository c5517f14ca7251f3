"""Nodes of the study pipeline: the evaluated advice -> the listening study's scenarios,
audio and key, built as one folder that ``anchormix study serve`` serves."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pandas as pd
from kedro.io.core import generate_timestamp

from anchormix_kedro.evaluation.conditions import as_mixed_rows
from anchormix_kedro.study import kit as study_kit
from anchormix_kedro.study.design import CATCH_SYSTEM
from anchormix_kedro.study.kit.blinding import (
    common_wording,
    distinctive_phrases,
    strip_convention,
)
from anchormix_kedro.study.kit.catch import catch_scenarios
from anchormix_kedro.study.material import BuiltStudy, build_study

logger = logging.getLogger(__name__)


def sample_rating_study(evaluation_examples: pd.DataFrame, study_kit_params: dict) -> pd.DataFrame:
    """The study key: a blind sample of scenarios over systems, genres and pairs, with
    subtle offsets (at most ``max_offset_db``; null: any) and balanced examples, at least
    ``min_examples_per_genre`` of each genre, the convention sentence taken out of every
    system's advice (``convention_sentences: remove``), every judgement in common words
    (``wording: common``; ``as_written`` shows each system's own), and ``catch_scenarios``
    catch scenarios (advice in the wrong direction, system ``catch``)."""
    candidates = as_mixed_rows(evaluation_examples)
    candidates = candidates.assign(advice_evaluated=candidates["advice"])
    seed = int(study_kit_params.get("seed", 0))
    if study_kit_params.get("convention_sentences", "remove") == "remove":
        candidates = candidates.assign(advice=candidates["advice"].map(strip_convention))
    wording = study_kit_params.get("wording", "common")
    if wording not in ("common", "as_written"):
        raise ValueError(f"study_kit.wording must be common or as_written, got {wording!r}")
    if wording == "common":
        has_text = candidates["advice"].map(lambda a: isinstance(a, str) and bool(a.strip()))
        candidates = pd.concat([common_wording(candidates[has_text], seed), candidates[~has_text]])
    key = study_kit.sample_scenarios(
        candidates,
        n_examples=int(study_kit_params["n_examples"]),
        study_id=str(study_kit_params["study_id"]),
        seed=seed,
        systems=study_kit_params.get("systems"),
        max_offset_db=study_kit_params.get("max_offset_db", study_kit.DEFAULT_MAX_OFFSET_DB),
        min_per_genre=int(study_kit_params.get("min_examples_per_genre") or 0),
    )
    catches = catch_scenarios(key, int(study_kit_params.get("catch_scenarios") or 0), seed)
    return pd.concat([key, catches], ignore_index=True) if len(catches) else key


def check_blinding(rating_study_key: pd.DataFrame) -> pd.DataFrame:
    """Per system, the phrases only its advice uses (empty: the study is blind); catch
    scenarios are worded like the others and not checked."""
    shown = rating_study_key[rating_study_key["system"] != CATCH_SYSTEM]
    phrases = distinctive_phrases(shown)
    if phrases.empty:
        logger.info("Blinding check: no system uses a phrase of its own")
    else:
        logger.warning(
            "Blinding check: %d phrases belong to one system (e.g. %s: %r); see "
            "rating_study_blinding", len(phrases), phrases.iloc[0]["system"],
            phrases.iloc[0]["phrase"],
        )  # fmt: skip
    return phrases


def render_rating_study(
    rating_study_key: pd.DataFrame,
    source_rate_excerpts: dict[str, Callable[[], dict]],
    tracks: pd.DataFrame,
    study_kit_params: dict,
) -> BuiltStudy:
    """The study the server serves (clips at the source rate, the blind manifest, the key),
    saved as ``rating_study/<version>/``; with ``offline_page``, the self-contained page too.
    The MUSDB18 notice appears only when the audio comes from MUSDB18."""
    return build_study(
        rating_study_key,
        lambda excerpt_id: source_rate_excerpts[excerpt_id](),
        tracks,
        study_kit.PageSettings.from_params(study_kit_params),
        version=generate_timestamp(),
        offline_page=bool(study_kit_params.get("offline_page", False)),
    )
