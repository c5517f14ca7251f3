"""Nodes of the study pipeline: the evaluated advice -> the listening study's scenarios,
audio and key, built as one folder that ``anchormix study serve`` serves."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from kedro.io.core import generate_timestamp

from anchormix_kedro.evaluation.conditions import as_mixed_rows
from anchormix_kedro.study import kit as study_kit
from anchormix_kedro.study.material import BuiltStudy, build_study


def sample_rating_study(evaluation_examples: pd.DataFrame, study_kit_params: dict) -> pd.DataFrame:
    """The study key: a blind, shuffled sample of scenarios over systems, genres and pairs,
    with subtle offsets (at most ``max_offset_db``; null: any) and balanced examples."""
    return study_kit.sample_scenarios(
        as_mixed_rows(evaluation_examples),
        n_examples=int(study_kit_params["n_examples"]),
        study_id=str(study_kit_params["study_id"]),
        seed=int(study_kit_params.get("seed", 0)),
        systems=study_kit_params.get("systems"),
        max_offset_db=study_kit_params.get("max_offset_db", study_kit.DEFAULT_MAX_OFFSET_DB),
    )


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
