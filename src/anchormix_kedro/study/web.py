"""The study server's pages: consent, background, the rating page, and plain notices.

Each page is server-rendered HTML with every text escaped; style and script are files
the server serves itself (``/static/...``), so the Content-Security-Policy allows no
inline script or style. Scenario sections are the offline page's
(:func:`~anchormix_kedro.study.kit.page.scenario_section`), with players whose audio the
server serves to the rater alone.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from types import SimpleNamespace

from anchormix_kedro.study.kit.audio import ScenarioClips
from anchormix_kedro.study.kit.page import (
    FEEDBACK_QUESTIONS,
    WORKFLOW_QUESTIONS,
    scenario_section,
    script_json,
    workflow_form,
)
from anchormix_kedro.vocabulary import CRITERIA, LIKERT_LABELS, MAX_TEXT_CHARS

e = html.escape


def document(title: str, body: str, scripts: Sequence[str] = ()) -> str:
    tags = "".join(f'<script src="/static/{e(name)}"></script>' for name in scripts)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="no-referrer"><title>{e(title)}</title>'
        '<link rel="stylesheet" href="/static/page.css">'
        f'<link rel="stylesheet" href="/static/server.css"></head><body>{body}{tags}'
        "</body></html>\n"
    )


def notice_page(title: str, message: str) -> str:
    return document(title, f"<main><h1>{e(title)}</h1><p>{e(message)}</p></main>")


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{e(part.strip())}</p>" for part in str(text).split("\n\n") if part.strip())


def consent_page(study: Mapping, texts: Mapping, consented: bool) -> str:
    """The information sheet, the consent form, and the way to withdraw."""
    if consented:
        action = '<p class="ok">You have consented. <a href="./">Go on to the study</a>.</p>'
    else:
        action = (
            '<form method="post" action="consent" class="consent-form"><label class="consent">'
            '<input type="checkbox" name="agree" value="yes" required> '
            f'{e(study["consent"])}</label><p><button type="submit">I agree: start</button>'
            "</p></form>"
        )
    withdraw = (
        f'<section id="withdraw"><h2>Withdrawing</h2>{_paragraphs(texts["withdraw_text"])}'
        '<form method="post" action="withdraw"><button type="submit" class="withdraw">'
        "Withdraw from the study</button></form></section>"
    )
    notice = f'<p class="notice">{e(study["audio_notice"])}</p>' if study["audio_notice"] else ""
    body = (
        f'<main><h1>{e(study["title"])}</h1><section id="information"><h2>About this study</h2>'
        f"{_paragraphs(texts['information_sheet'])}{notice}</section>{action}{withdraw}</main>"
    )
    return document(study["title"], body)


def _choice(name: str, label: str, options: Sequence[str], value: str) -> str:
    choices = "".join(
        f'<option value="{e(o)}"{" selected" if o == value else ""}>{e(o)}</option>'
        for o in options
    )
    return (
        f'<label>{e(label)} <select name="{e(name)}" required><option value="">choose</option>'
        f"{choices}</select></label>"
    )


def background_page(study: Mapping, texts: Mapping, saved: Mapping | None) -> str:
    """Role, years of experience, listening set-up and the genres the rater mixes."""
    saved = saved or {}
    genres = e(str(saved.get("genres", "")))
    body = (
        f"<main><h1>{e(study['title'])}</h1><h2>About you</h2>"
        '<form method="post" action="background" class="about background">'
        f"{_choice('role', 'Your role', texts['roles'], saved.get('role', ''))}"
        f"{_choice('experience_years', 'Years of mixing experience', texts['experience'], saved.get('experience_years', ''))}"  # noqa: E501
        f"{_choice('listening_setup', 'You will listen on', texts['listening_setups'], saved.get('listening_setup', ''))}"  # noqa: E501
        '<label>Genres you mix (optional) <input type="text" name="genres" maxlength="300" '
        f'value="{genres}"></label><p><button type="submit">Save and go on</button></p>'
        '</form><p><a href="consent">The information sheet, and withdrawing</a></p></main>'
    )
    return document(study["title"], body)


def rating_page(study: Mapping, texts: Mapping, items: Sequence[tuple[str, str]] = ()) -> str:
    """The rater's scenarios, in their order, with players, scales and feedback;
    ``online.js`` loads and saves the rater's answers through the API. ``items`` are the
    rater's ``(item, scenario_id)`` pairs (a repeat shows its scenario under its own item);
    empty: every scenario of the study. The instructions are the server's own
    (``study.instructions``): the offline page's speak of downloading a file."""
    scenarios = {s["scenario_id"]: s for s in study["scenarios"]}
    items = list(items) or [(sid, sid) for sid in scenarios]
    total = len(items)
    sections = "\n".join(
        scenario_section(
            SimpleNamespace(scenario_id=item, position=place, genre=scenarios[sid]["genre"],
                            advice=scenarios[sid]["advice"], anchor=scenarios[sid]["anchor"],
                            target=scenarios[sid]["target"]),
            total,
            ScenarioClips(**scenarios[sid]["clips"]),
            listen_first=float(texts.get("listen_first_seconds") or 0),
        )
        for place, (item, sid) in enumerate(items, start=1)
    )  # fmt: skip
    config = {
        "study_id": study["study_id"],
        "criteria": list(CRITERIA),
        "feedback": list(FEEDBACK_QUESTIONS),
        "workflow": list(WORKFLOW_QUESTIONS),
        "max_text_chars": MAX_TEXT_CHARS,
    }
    scale = ", ".join(f"{value} = {word}" for value, word in LIKERT_LABELS.items())
    notice = f'<p class="notice">{e(study["audio_notice"])}</p>' if study["audio_notice"] else ""
    body = (
        f'<header><h1>{e(study["title"])}</h1><div class="controls">'
        '<button id="next-unrated" type="button">Next unrated scenario</button>'
        '<span id="save-state" class="save-state" role="status" aria-live="polite">'
        "Loading your answers…</span></div>"
        f'<progress id="progress" max="{total}" value="0"></progress>'
        f'<div id="progress-text">0 of {total} scenarios rated</div>'
        '<div id="status" role="status" aria-live="polite"></div></header>'
        # Inert until the stored answers are loaded, so no click can race them.
        "<main inert>"
        f'<p class="instructions">{e(texts["instructions"])}</p>{notice}'
        f"<p>Scale: {e(scale)}. Every answer is saved on the study's server as you give it: "
        "you can close this page and come back to your link, on any device.</p>"
        f"{sections}{workflow_form()}"
        '<p class="done-note">When every scenario is rated you are done: thank you. '
        '<a href="consent">The information sheet, and withdrawing</a></p></main>'
        f'<script type="application/json" id="study-config">{script_json(config)}</script>'
    )
    return document(study["title"], body, scripts=("study.js", "online.js"))


def check_page(study: Mapping, level_clip: str, trials: int, tones: int) -> str:
    """The level and headphone check before the first scenario (no script needed)."""
    sets = "".join(
        f'<fieldset class="trial"><legend>Set {trial}</legend>'
        + "".join(
            f'<label class="tone"><audio controls preload="none" '
            f'src="check/tone/{trial}/{k}"></audio><input type="radio" name="trial{trial}" '
            f'value="{k}" required> Tone {k}</label>'
            for k in range(1, tones + 1)
        )
        + "</fieldset>"
        for trial in range(1, trials + 1)
    )
    body = (
        f"<main><h1>{e(study['title'])}</h1><h2>Before you start: your level and your "
        "headphones</h2><section><h3>1. Your level</h3><p>Play this excerpt and set your "
        "volume to a comfortable level, the level you would mix at. Leave it there for the "
        f'whole study.</p><audio controls src="clips/{e(level_clip)}"></audio></section>'
        '<form method="post" action="check"><section><h3>2. Headphones</h3><p>Please wear '
        "headphones. Each set has three tones: which one is the quietest?</p>"
        f'{sets}</section><p><button type="submit">Save and start</button></p></form></main>'
    )
    return document(study["title"], body)
