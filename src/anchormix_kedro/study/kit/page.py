"""The rating study's page: one self-contained HTML document and its helpers.

:func:`render_page` fills ``resources/page.html`` with: the rater's details (name, role,
experience, consent), the scenarios (four looped, exclusive players whose position carries
over from one to the next, an A/B switch between the mix and the mix as the advice would
leave it, the advice, 7-point Likert scales for the four criteria, the proposal's written
feedback: strengths, weaknesses, suggestions), the proposal's questions about the rater's
workflow, progress with marks for partly rated scenarios, "next unrated", and a button
that downloads the ratings as CSV (:data:`PAGE_CSV_COLUMNS`, read back by
:mod:`anchormix_kedro.study.ratings`; cells a spreadsheet would run as formulas are
written with a leading apostrophe, which the loader takes off: :mod:`.page_csv`). The
page's style and script are ``resources/page.css`` and ``resources/page.js``. Every
text is escaped with :func:`html.escape`; nothing is fetched from anywhere (a
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

from anchormix_kedro.advice_language.wording import STEM_WORDS
from anchormix_kedro.study.kit.audio import (
    ADVISED_UNCHANGED,
    ADVISED_UNREADABLE,
    EncodedClip,
    ScenarioClips,
)
from anchormix_kedro.study.kit.page_csv import (
    CONSENT_GIVEN,
    FEEDBACK_COLUMNS,
    FILE_COLUMNS,
    FORMULA_STARTS,
    RATER_COLUMNS,
    WORKFLOW_COLUMNS,
)
from anchormix_kedro.vocabulary import (
    CRITERIA,
    LIKERT_LABELS,
    LIKERT_MAX,
    LIKERT_MIN,
    MAX_TEXT_CHARS,
)

#: The questions engineers answer, from the proposal (section 5.1).
HUMAN_QUESTIONS: dict[str, str] = {
    "effectiveness": "How well would this advice solve the given mixing problem?",
    "musicality": "Is the advice musically sensible and appropriate for the genre?",
    "actionability": "Is the advice clear, specific, and easy to implement in a DAW?",
    "helpfulness": "How helpful would this advice be in a real-world mixing session?",
}
#: The proposal's written feedback on each scenario (section 5.1, qualitative feedback).
FEEDBACK_QUESTIONS: dict[str, str] = {
    "strengths": "Strengths of this advice",
    "weaknesses": "Weaknesses of this advice",
    "suggestions": "How would you improve it?",
}
#: Asked once: the advice's potential impact on the rater's workflow.
WORKFLOW_QUESTIONS: dict[str, str] = {
    "workflow_fit": "How would advice like this fit into your mixing workflow? When would you "
    "use it, and for what?",
    "workflow_change": "What would have to change for you to use it in a real session?",
}
ROLES: tuple[str, ...] = (
    "Mixing engineer",
    "Mastering engineer",
    "Producer",
    "Recording engineer",
    "Musician",
    "Student of audio engineering",
    "Researcher",
    "Other",
)
EXPERIENCE: tuple[str, ...] = (
    "Less than 1 year",
    "1-3 years",
    "3-5 years",
    "5-10 years",
    "More than 10 years",
)
#: Columns of the CSV the page downloads, in order.
PAGE_CSV_COLUMNS: tuple[str, ...] = (
    "study_id",
    "rater",
    *FILE_COLUMNS,
    *RATER_COLUMNS,
    "scenario_id",
    *CRITERIA,
    *(c for c in FEEDBACK_COLUMNS if c in FEEDBACK_QUESTIONS),
    *WORKFLOW_COLUMNS,
)
DEFAULT_TITLE = "AnchorMix: rate gain-balancing advice"
DEFAULT_INSTRUCTIONS = (
    "Each scenario is a multitrack mix in which one stem (the target) sits at a level that "
    "may be off relative to another stem (the anchor). Listen to the anchor, the target, the "
    "mix and the mix as the advice would leave it (the A/B button switches between the last "
    "two at the same position), read the advice, and rate it on the four criteria from "
    "1 (very poor) to 7 (excellent); the written feedback is optional. Scenarios appear in "
    "random order and do not say who or what wrote the advice. Your ratings stay in this "
    "browser until you download them: when you are done (or want to stop), fill in the "
    "details about you, press the download button and send us the CSV file."
)
DEFAULT_AUDIO_NOTICE = (
    "The audio comes from the MUSDB18 dataset, whose licence allows non-commercial research "
    "use only: listen to it for this study, and do not copy or pass on the page or its audio."
)
DEFAULT_CONSENT = (
    "I agree that my ratings, my written answers and the details above are used for this "
    "research study and published in anonymised form (without my name)."
)
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "media-src data: blob:; img-src data:"
)


@functools.lru_cache(maxsize=4)
def _resource(name: str) -> str:
    """The text of ``resources/<name>`` (``page.html``, ``page.css`` or ``page.js``)."""
    package = importlib.resources.files("anchormix_kedro.study.kit")
    return package.joinpath(f"resources/{name}").read_text(encoding="utf-8")


def script_json(value: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` can close it."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def stem_noun(stem: str) -> str:
    return STEM_WORDS[stem].noun if stem in STEM_WORDS else stem


def _options(values: tuple[str, ...]) -> str:
    e = html.escape
    return '<option value="">choose</option>' + "".join(
        f'<option value="{e(v)}">{e(v)}</option>' for v in values
    )


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


def _advised_note(clip: ScenarioClips) -> str:
    if clip.advised_state == ADVISED_UNCHANGED:
        return "The advice leaves the level as it is: this is the mix unchanged."
    if clip.advised_state == ADVISED_UNREADABLE:
        return "No fader move can be read from this advice: this is the mix unchanged."
    return "The advice's fader move applied to the target."


def _players(sid: str, anchor: str, target: str, clip: ScenarioClips) -> str:
    e = html.escape
    figures = "".join(
        f'<figure class="player" data-role="{role}"><figcaption>{e(caption)}</figcaption>'
        f'<audio controls loop preload="none" data-clip="{e(clip_id)}" data-role="{role}">'
        f"</audio>{note}</figure>"
        for role, caption, clip_id, note in (
            ("anchor", f"Anchor: {anchor}", clip.anchor, ""),
            ("target", f"Target: {target}", clip.target, ""),
            ("mix", "A: the mix (all stems)", clip.mix, ""),
            (
                "advised",
                "B: the mix with this advice applied",
                clip.advised,
                f'<small class="advised-note" data-state="{e(clip.advised_state)}">'
                f"{e(_advised_note(clip))}</small>",
            ),
        )
    )
    return (
        f'<div class="players">{figures}</div><p class="ab"><button type="button" '
        f'class="ab-switch" data-scenario="{e(sid)}" aria-pressed="false">A/B: switch between '
        'the mix and the advised mix</button> <span class="now-playing" '
        'aria-live="polite"></span></p>'
    )


def scenario_section(row, total: int, clip: ScenarioClips, listen_first: float = 0.0) -> str:
    """One scenario; with ``listen_first`` seconds, its scales stay closed until the mix
    (or the advised mix) has played that long (the study server's page opens them)."""
    e = html.escape
    sid = str(row.scenario_id)
    anchor, target = stem_noun(row.anchor), stem_noun(row.target)
    criteria = "".join(_likert(sid, criterion) for criterion in CRITERIA)
    if listen_first > 0:
        criteria = (
            f'<fieldset class="scales" disabled data-listen-first="{listen_first:g}">'
            f'<p class="listen-first">The scales open once you have listened to the mix (A or '
            f"B) for {listen_first:g} seconds.</p>{criteria}</fieldset>"
        )
    feedback = "".join(
        f'<label>{e(question)} (optional)<textarea name="{e(sid)}:{column}" rows="2" '
        f'maxlength="{MAX_TEXT_CHARS}" data-feedback="{column}"></textarea></label>'
        for column, question in FEEDBACK_QUESTIONS.items()
    )
    return (
        f'<section class="scenario" id="{e(sid)}" data-scenario="{e(sid)}" tabindex="-1">'
        f"<h2>Scenario {int(row.position)} of {total}"
        '<span class="done-mark"> &#10003; rated</span>'
        '<span class="partial-mark"> &#9680; partly rated</span></h2>'
        f'<p class="facts">Genre: <b>{e(str(row.genre))}</b>. Anchor: <b>{e(anchor)}</b>. '
        f"Target: <b>{e(target)}</b>.</p>"
        f"{_players(sid, anchor, target, clip)}"
        f'<p class="advice-label">Advice:</p><blockquote class="advice">{e(str(row.advice))}'
        f'</blockquote>{criteria}<div class="feedback">{feedback}</div></section>'
    )


def _rater_form(consent: str) -> str:
    e = html.escape
    return (
        '<section id="about-you"><h2>About you</h2><div class="about">'
        '<label>Your name or initials <input id="rater" type="text" autocomplete="name" '
        'maxlength="80"></label>'
        f'<label>Your role <select id="rater_role">{_options(ROLES)}</select></label>'
        f'<label>Mixing experience <select id="rater_experience">{_options(EXPERIENCE)}'
        "</select></label></div>"
        f'<label class="consent"><input id="consent" type="checkbox" value="{CONSENT_GIVEN}"> '
        f"{e(consent)}</label></section>"
    )


def workflow_form() -> str:
    e = html.escape
    questions = "".join(
        f'<label>{e(question)} (optional)<textarea id="{column}" rows="3" '
        f'maxlength="{MAX_TEXT_CHARS}" data-workflow="{column}"></textarea></label>'
        for column, question in WORKFLOW_QUESTIONS.items()
    )
    return f'<section id="workflow"><h2>Your workflow</h2>{questions}</section>'


def _uri(clip: EncodedClip | str) -> str:
    return clip.data_uri() if isinstance(clip, EncodedClip) else clip


def render_page(
    key: pd.DataFrame,
    clips: Mapping[str, EncodedClip | str],
    clips_by_scenario: Mapping[str, ScenarioClips],
    title: str = DEFAULT_TITLE,
    instructions: str = DEFAULT_INSTRUCTIONS,
    audio_notice: str = DEFAULT_AUDIO_NOTICE,
    consent: str = DEFAULT_CONSENT,
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
        scenario_section(row, len(ordered), clips_by_scenario[row.scenario_id])
        for row in ordered.itertuples(index=False)
    )
    config = {
        "study_id": str(studies[0]),
        "criteria": list(CRITERIA),
        "feedback": list(FEEDBACK_QUESTIONS),
        "rater_fields": list(RATER_COLUMNS),
        "workflow": list(WORKFLOW_QUESTIONS),
        "columns": list(PAGE_CSV_COLUMNS),
        "formula_starts": list(FORMULA_STARTS),
    }
    scale = ", ".join(f"{value} = {word}" for value, word in LIKERT_LABELS.items())
    return string.Template(_resource("page.html")).substitute(
        csp=e(_CSP),
        title=e(title),
        style=_resource("page.css"),
        total=len(ordered),
        instructions=e(instructions),
        notice=f'<p class="notice">{e(audio_notice)}</p>' if audio_notice else "",
        study_id=e(str(studies[0])),
        scale=e(scale),
        about_you=_rater_form(consent),
        sections=sections,
        workflow=workflow_form(),
        config=script_json(config),
        clips=script_json({k: _uri(v) for k, v in clips.items()}),
        script=_resource("study.js") + _resource("page.js"),
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
