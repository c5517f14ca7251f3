"""The engineers' rating study: a blind sample of scenarios as one self-contained HTML page.

- :func:`sample_scenarios` (:mod:`.sampling`) draws examples spread over genres, stem pairs
  and labels (round robin, seeded), takes every system's advice on each, gives each
  scenario an opaque id and shuffles their order. The result is the study *key*: it maps
  scenario ids back to the example and system and is kept apart from the page, which
  never names a system.
- :func:`render_clips` (:mod:`.audio`) makes each scenario's audio (the anchor, the target
  at its perturbed gain, and the mix of all stems with the target perturbed) as base64
  data URIs; the three clips of a scenario share one scale factor, so their relative
  levels are those of the scenario.
- :func:`render_page` (:mod:`.page`) writes the page: audio players, the advice, 7-point
  Likert scales for the four criteria, an optional comment, progress, and a button that
  downloads the ratings as CSV (read back by :mod:`anchormix_kedro.evaluation.ratings`).
  Every text is escaped with :func:`html.escape`; the script is plain JavaScript; nothing
  is fetched from anywhere (a Content-Security-Policy forbids it), so the page works
  offline from a file. Its skeleton, style and script are ``resources/page.html``,
  ``resources/page.css`` and ``resources/page.js``.
"""

from __future__ import annotations

from anchormix_kedro.evaluation.study_kit.audio import (
    AUDIO_FORMATS,
    encode_clip,
    render_clips,
    scenario_audio,
)
from anchormix_kedro.evaluation.study_kit.page import (
    DEFAULT_INSTRUCTIONS,
    DEFAULT_TITLE,
    HUMAN_QUESTIONS,
    PAGE_CSV_COLUMNS,
    empty_page,
    page_size_mb,
    render_page,
)
from anchormix_kedro.evaluation.study_kit.sampling import (
    KEY_COLUMNS,
    sample_scenarios,
    scenario_id,
)

__all__ = [
    "AUDIO_FORMATS",
    "DEFAULT_INSTRUCTIONS",
    "DEFAULT_TITLE",
    "HUMAN_QUESTIONS",
    "KEY_COLUMNS",
    "PAGE_CSV_COLUMNS",
    "empty_page",
    "encode_clip",
    "page_size_mb",
    "render_clips",
    "render_page",
    "sample_scenarios",
    "scenario_audio",
    "scenario_id",
]
