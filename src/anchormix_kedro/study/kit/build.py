"""The whole page from the study key and its settings (the ``study_kit`` parameters)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd
from kedro.io.core import generate_timestamp

from anchormix_kedro.study.kit.audio import DEFAULT_COMPRESSION, render_clips
from anchormix_kedro.study.kit.page import (
    DEFAULT_AUDIO_NOTICE,
    DEFAULT_CONSENT,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_TITLE,
    empty_page,
    page_size_mb,
    render_page,
)

logger = logging.getLogger(__package__)


class PageTooLargeError(ValueError):
    """The page would exceed ``study_kit.max_page_mb``; the message says what to change."""


@dataclass(frozen=True)
class PageSettings:
    """How the page is made (``study_kit`` parameters; ``None`` texts: the kit's defaults)."""

    audio_format: str = "ogg"
    audio_compression: float = DEFAULT_COMPRESSION
    clip_seconds: float | None = 10.0
    max_page_mb: float | None = 40.0
    title: str = DEFAULT_TITLE
    instructions: str = DEFAULT_INSTRUCTIONS
    audio_notice: str = DEFAULT_AUDIO_NOTICE
    consent: str = DEFAULT_CONSENT

    @classmethod
    def from_params(cls, params: Mapping) -> PageSettings:
        compression = params.get("audio_compression")
        return cls(
            audio_format=str(params.get("audio_format") or "ogg"),
            audio_compression=DEFAULT_COMPRESSION if compression is None else float(compression),
            clip_seconds=params.get("clip_seconds"),
            max_page_mb=params.get("max_page_mb"),
            title=params.get("title") or DEFAULT_TITLE,
            instructions=params.get("instructions") or DEFAULT_INSTRUCTIONS,
            audio_notice=params.get("audio_notice") or DEFAULT_AUDIO_NOTICE,
            consent=params.get("consent") or DEFAULT_CONSENT,
        )


def build_study_page(
    key: pd.DataFrame, load_excerpt: Callable[[str], Mapping], settings: PageSettings
) -> str:
    """The page for the key's scenarios, audio from ``load_excerpt`` (source-rate records).

    Raises :class:`PageTooLargeError` when it exceeds ``settings.max_page_mb``.
    """
    if key.empty:
        return empty_page(settings.title)
    clips, by_scenario = render_clips(
        key,
        load_excerpt,
        audio_format=settings.audio_format,
        max_seconds=settings.clip_seconds,
        compression=settings.audio_compression,
    )
    page = render_page(
        key,
        clips,
        by_scenario,
        title=settings.title,
        instructions=settings.instructions,
        audio_notice=settings.audio_notice,
        consent=settings.consent,
    )
    size_mb = page_size_mb(page)
    if settings.max_page_mb is not None and size_mb > float(settings.max_page_mb):
        raise PageTooLargeError(
            f"the rating page would be {size_mb:.1f} MB, over study_kit.max_page_mb = "
            f"{settings.max_page_mb} MB ({len(key)} scenarios, {len(clips)} clips): lower "
            "study_kit.n_examples or clip_seconds, raise audio_compression, or raise the limit"
        )
    logger.info(
        "Rating study page: %d scenarios, %d clips, %.1f MB (limit %s MB)",
        len(key),
        len(clips),
        size_mb,
        settings.max_page_mb,
    )
    return page


def page_partition(page: str) -> dict[str, str]:
    """``{"<timestamp>/index": page}``: a folder per page under the catalog's
    ``rating_study`` folder (``<timestamp>/index.html``), named like Kedro's versions."""
    return {f"{generate_timestamp()}/index": page}
