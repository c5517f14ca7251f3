"""The engineers' rating study: a blind sample of scenarios as one self-contained HTML page.

- :func:`sample_scenarios` (:mod:`.sampling`) draws examples with subtle offsets (at most
  6 dB by default, balanced ones included) spread over genres, stem pairs and labels
  (round robin, seeded), takes every system's advice on each, gives each scenario an
  opaque id and shuffles their order. The result is the study *key*: it maps scenario ids
  back to the example and system and is kept apart from the page, which never names a
  system.
- :func:`render_clips` (:mod:`.audio`) makes each scenario's audio from the source-rate
  excerpts (44.1 kHz stereo for MUSDB18) as compressed ``data:`` URIs: the anchor, the
  target at its perturbed gain, the mix with the target perturbed, and the mix as the
  advice would leave it; the clips of an example share one scale factor, so their relative
  levels are those of the scenario.
- :func:`render_page` (:mod:`.page`) writes the page: rater details with consent, looped
  exclusive players with an A/B switch, the advice, 7-point Likert scales, the proposal's
  written feedback and workflow questions, progress, "next unrated", and a button that
  downloads the ratings as CSV (read back by :mod:`anchormix_kedro.study.ratings`).
  Every text is escaped with :func:`html.escape`; the script is plain JavaScript; nothing
  is fetched from anywhere (a Content-Security-Policy forbids it), so the page works
  offline from a file. Its skeleton, style and script are ``resources/page.html``,
  ``resources/page.css`` and ``resources/page.js``.
- :func:`build_study_page` (:mod:`.build`) makes the whole page from the key and the
  ``study_kit`` parameters, and keeps it within ``max_page_mb``.
"""

from __future__ import annotations

from anchormix_kedro.study.kit.audio import (
    AUDIO_FORMATS,
    DEFAULT_COMPRESSION,
    ScenarioClips,
    advised_move,
    encode_clip,
    render_clips,
    scenario_audio,
)
from anchormix_kedro.study.kit.build import (
    PageSettings,
    PageTooLargeError,
    build_study_page,
    page_partition,
)
from anchormix_kedro.study.kit.page import (
    DEFAULT_AUDIO_NOTICE,
    DEFAULT_CONSENT,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_TITLE,
    FEEDBACK_QUESTIONS,
    HUMAN_QUESTIONS,
    PAGE_CSV_COLUMNS,
    WORKFLOW_QUESTIONS,
    empty_page,
    page_size_mb,
    render_page,
)
from anchormix_kedro.study.kit.sampling import (
    DEFAULT_MAX_OFFSET_DB,
    KEY_COLUMNS,
    sample_scenarios,
    scenario_id,
)

__all__ = [
    "AUDIO_FORMATS",
    "DEFAULT_AUDIO_NOTICE",
    "DEFAULT_COMPRESSION",
    "DEFAULT_CONSENT",
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_MAX_OFFSET_DB",
    "DEFAULT_TITLE",
    "FEEDBACK_QUESTIONS",
    "HUMAN_QUESTIONS",
    "KEY_COLUMNS",
    "PAGE_CSV_COLUMNS",
    "PageSettings",
    "PageTooLargeError",
    "WORKFLOW_QUESTIONS",
    "ScenarioClips",
    "advised_move",
    "build_study_page",
    "empty_page",
    "encode_clip",
    "page_partition",
    "page_size_mb",
    "render_clips",
    "render_page",
    "sample_scenarios",
    "scenario_audio",
    "scenario_id",
]
