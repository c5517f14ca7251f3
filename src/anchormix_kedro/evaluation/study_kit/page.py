"""The rating study's page: one self-contained HTML document and its helpers.

:func:`render_page` fills ``resources/page.html`` with the scenarios (audio players, the
advice, 7-point Likert scales for the four criteria, an optional comment), progress, and
a button that downloads the ratings as CSV (:data:`PAGE_CSV_COLUMNS`, read back by
:mod:`anchormix_kedro.evaluation.ratings`). The page's style and script are
``resources/page.css`` and ``resources/page.js``, written into the page. Every text is
escaped with :func:`html.escape`; nothing is fetched from anywhere (a
Content-Security-Policy forbids it), so the page works offline from a file.
"""

from __future__ import annotations

import functools
import html
import importlib.resources
import json
import string
from collections.abc import Mapping

import pandas as pd

from anchormix_kedro.instruction_data.advice import STEM_WORDS
from anchormix_kedro.vocabulary import CRITERIA, LIKERT_LABELS, LIKERT_MAX, LIKERT_MIN

#: The questions engineers answer, from the proposal (section 5.1).
HUMAN_QUESTIONS: dict[str, str] = {
    "effectiveness": "How well would this advice solve the given mixing problem?",
    "musicality": "Is the advice musically sensible and appropriate for the genre?",
    "actionability": "Is the advice clear, specific, and easy to implement in a DAW?",
    "helpfulness": "How helpful would this advice be in a real-world mixing session?",
}
#: Columns of the CSV the page downloads, in order.
PAGE_CSV_COLUMNS: tuple[str, ...] = ("study_id", "rater", "scenario_id", *CRITERIA, "comment")
DEFAULT_TITLE = "AnchorMix: rate gain-balancing advice"
DEFAULT_INSTRUCTIONS = (
    "Each scenario is a multitrack mix in which one stem (the target) sits at a level that "
    "may be off relative to another stem (the anchor). Listen to the anchor, the target and "
    "the mix, read the advice, and rate it on the four criteria from 1 (very poor) to "
    "7 (excellent). Scenarios appear in random order and do not say who or what wrote the "
    "advice. Your ratings stay in this browser until you download them: when you are done "
    "(or want to stop), enter your name and press the download button, then send us the "
    "CSV file."
)
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "media-src data: blob:; img-src data:"
)


@functools.lru_cache(maxsize=4)
def _resource(name: str) -> str:
    """The text of ``resources/<name>`` (``page.html``, ``page.css`` or ``page.js``)."""
    package = importlib.resources.files("anchormix_kedro.evaluation.study_kit")
    return package.joinpath(f"resources/{name}").read_text(encoding="utf-8")


def _script_json(value: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` can close it."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _stem_noun(stem: str) -> str:
    return STEM_WORDS[stem].noun if stem in STEM_WORDS else stem


def _likert(scenario: str, criterion: str) -> str:
    e = html.escape
    options = []
    for value in range(LIKERT_MIN, LIKERT_MAX + 1):
        input_id = f"{scenario}-{criterion}-{value}"
        options.append(
            f'<label for="{e(input_id)}"><input type="radio" id="{e(input_id)}" '
            f'name="{e(scenario)}:{e(criterion)}" value="{value}" '
            f'data-criterion="{e(criterion)}"><span class="n">{value}</span>'
            f'<span class="word">{e(LIKERT_LABELS[value])}</span></label>'
        )
    return (
        f'<fieldset class="likert" data-criterion="{e(criterion)}"><legend><b>'
        f"{e(criterion.capitalize())}</b>: {e(HUMAN_QUESTIONS[criterion])}</legend>"
        f'<div class="scale">{"".join(options)}</div></fieldset>'
    )


def _scenario_section(row, total: int, clip_ids: Mapping[str, str]) -> str:
    e = html.escape
    sid = str(row.scenario_id)
    anchor, target = _stem_noun(row.anchor), _stem_noun(row.target)
    players = "".join(
        f'<figure><figcaption>{e(caption)}</figcaption><audio controls preload="none" '
        f'data-clip="{e(clip_ids[name])}"></audio></figure>'
        for name, caption in (
            ("anchor", f"Anchor: {anchor}"),
            ("target", f"Target: {target}"),
            ("mix", "The mix (all stems)"),
        )
    )
    criteria = "".join(_likert(sid, criterion) for criterion in CRITERIA)
    return (
        f'<section class="scenario" id="{e(sid)}" data-scenario="{e(sid)}">'
        f'<h2>Scenario {int(row.position)} of {total}<span class="done-mark" aria-hidden="true">'
        f" &#10003;</span></h2>"
        f'<p class="facts">Genre: <b>{e(str(row.genre))}</b>. Anchor: <b>{e(anchor)}</b>. '
        f"Target: <b>{e(target)}</b>.</p>"
        f'<div class="players">{players}</div>'
        f'<p class="advice-label">Advice:</p><blockquote class="advice">{e(str(row.advice))}'
        f"</blockquote>{criteria}"
        f'<label class="comment">Comment (optional): <textarea name="{e(sid)}:comment" '
        f'rows="2" data-comment="1"></textarea></label></section>'
    )


def render_page(
    key: pd.DataFrame,
    clips: Mapping[str, str],
    clips_by_scenario: Mapping[str, Mapping[str, str]],
    title: str = DEFAULT_TITLE,
    instructions: str = DEFAULT_INSTRUCTIONS,
) -> str:
    """The study page: one self-contained HTML document, scenarios in the key's order.

    Shows no system name, example id or true gain; every text from the data or the
    configuration is escaped. The download button writes :data:`PAGE_CSV_COLUMNS`.
    """
    if key.empty:
        raise ValueError("the study key holds no scenario")
    studies = key["study_id"].unique()
    if len(studies) != 1:
        raise ValueError(f"a page shows one study; the key holds {sorted(studies)}")
    missing = sorted(set(key["scenario_id"]) - set(clips_by_scenario))
    if missing:
        raise ValueError(f"no audio for scenarios {missing[:5]}")
    e = html.escape
    ordered = key.sort_values("position")
    sections = "\n".join(
        _scenario_section(row, len(ordered), clips_by_scenario[row.scenario_id])
        for row in ordered.itertuples(index=False)
    )
    config = {
        "study_id": str(studies[0]),
        "criteria": list(CRITERIA),
        "columns": list(PAGE_CSV_COLUMNS),
    }
    scale = ", ".join(f"{value} = {word}" for value, word in LIKERT_LABELS.items())
    return string.Template(_resource("page.html")).substitute(
        csp=e(_CSP),
        title=e(title),
        style=_resource("page.css"),
        total=len(ordered),
        instructions=e(instructions),
        study_id=e(str(studies[0])),
        scale=e(scale),
        sections=sections,
        config=_script_json(config),
        clips=_script_json(dict(clips)),
        script=_resource("page.js"),
    )


def empty_page(title: str = DEFAULT_TITLE) -> str:
    """A page saying there is nothing to rate (no system gave any advice)."""
    e = html.escape
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"</head><body><h1>{e(title)}</h1><p>There is nothing to rate: no system gave any "
        "advice.</p></body></html>\n"
    )


def page_size_mb(page: str) -> float:
    """The page's size in MB (UTF-8)."""
    return len(page.encode("utf-8")) / 1e6
