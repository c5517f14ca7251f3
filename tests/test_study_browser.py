"""The study server end to end in headless Chromium: a rater's whole path (invitation,
consent, background, rating on two devices), two tabs in conflict, the server stopped and
restarted mid-rating with nothing lost, and one rater's link kept apart from another's."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from anchormix_kedro.study.storage import WORKFLOW_ITEM, StudyStore
from anchormix_kedro.vocabulary import CRITERIA
from conftest import BROWSER_FLAGS, playwright_and_chromium
from study_helpers import make_study, study_params

WAIT_MS = 30_000  # the machine may be busy: generous waits, which cost nothing when all is well
SAVED = """() => window.AnchorMixOnline !== undefined && window.AnchorMixOnline.unsaved() === 0
    && document.getElementById("save-state").textContent === "All answers saved" """
SHOWN = """section => {
    const out = {ratings: {}, texts: {}};
    section.querySelectorAll("input[data-criterion]:checked").forEach(
        input => { out.ratings[input.dataset.criterion] = Number(input.value); });
    section.querySelectorAll("textarea[data-feedback]").forEach(
        area => { out.texts[area.dataset.feedback] = area.value; });
    return out;
}"""
BACKGROUND = {"role": "Producer", "experience_years": "3-5 years",
              "listening_setup": "Headphones", "genres": ""}  # fmt: skip
NO_TEXTS = {"strengths": "", "weaknesses": "", "suggestions": ""}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The study server for real (uvicorn in a thread) over one SQLite file; ``stop`` and
    ``start`` again serve a new application over the same file on the same port."""

    def __init__(self, tmp_path: Path, listen_first_seconds: float = 0, catch: int = 0):
        self.params = {**study_params(), "listen_first_seconds": listen_first_seconds}
        self.study = make_study(tmp_path / "studies", catch=catch)
        self.db_url = f"sqlite:///{tmp_path / 'study.db'}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = self.thread = None
        self.store = StudyStore.open(self.db_url)

    def start(self) -> None:
        import uvicorn

        from anchormix_kedro.study.server import create_app

        if self.store is None:
            self.store = StudyStore.open(self.db_url)
        app = create_app(self.store, self.study, self.params)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=5)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + 60
        while True:
            try:
                with opener.open(self.base + "/healthz", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            assert self.thread.is_alive(), "the study server did not start"
            assert time.monotonic() < deadline, "the study server did not answer /healthz"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.thread is None:
            return
        self.server.should_exit = True
        self.thread.join(60)
        assert not self.thread.is_alive(), "the study server did not stop"
        self.thread = None
        self.store.close()
        self.store = None

    def rater(self, token: str):
        return self.store.rater_by_token(token)

    def ready_rater(self, design=None) -> str:
        """A new rater who consented, answered the background questions and took the
        headphone check: the token (``design``: their list drawn by it)."""
        ((_label, token),) = self.store.invite(self.study.version, 1, design)
        rater = self.rater(token)
        self.store.consent(rater.id)
        self.store.set_background(rater.id, BACKGROUND)
        self.store.log_event(rater.id, "headphone_check", detail={"correct": 3, "of": 3})
        return token

    def answers(self, token: str) -> dict:
        saved = self.store.answers_of(self.rater(token).id)
        return {item: (a.ratings, a.texts) for item, a in saved.items()}


@pytest.fixture(scope="module")
def browser():
    manager, executable = playwright_and_chromium()
    with manager as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=BROWSER_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def site(tmp_path):
    live = LiveServer(tmp_path)
    live.start()
    yield live
    live.stop()


def open_page(browser, url: str):
    """A page in a new context (another device: nothing shared) at ``url``, its answers
    loaded; script errors are collected in ``page.errors``."""
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(url)
    return page


def wait_saved(page, timeout: int = WAIT_MS) -> None:
    page.wait_for_function(SAVED, timeout=timeout)


def section(page, sid: str):
    return page.locator(f'section.scenario[data-scenario="{sid}"]')


def rate(page, sid: str, ratings: dict[str, int]) -> None:
    """Click each rating's label, as a rater does."""
    for criterion, value in ratings.items():
        section(page, sid).locator(f'label[for="{sid}-{criterion}-{value}"]').click()


def shown(page, sid: str) -> dict:
    return section(page, sid).evaluate(SHOWN)


def choices(index: int) -> dict[str, int]:
    """A different full rating for each scenario."""
    return {c: 1 + (3 * index + j) % 7 for j, c in enumerate(CRITERIA)}


def test_a_rater_consents_rates_and_finds_the_answers_on_another_device(browser, site):
    ((label, token),) = site.store.invite(site.study.version, 1)
    sids = site.study.scenario_ids
    total = len(sids)
    page = open_page(browser, f"{site.base}/r/{token}/")
    csp_errors = []
    page.on("console", lambda m: "Content Security Policy" in m.text and csp_errors.append(m.text))

    # The link leads to the information sheet and consent, then the background questions.
    assert page.url.endswith(f"/r/{token}/consent")
    assert "About this study" in page.inner_text("main")
    page.check('input[name="agree"][value="yes"]')
    page.get_by_role("button", name="I agree: start").click()
    page.wait_for_url(f"**/r/{token}/background")
    for name in ("role", "experience_years", "listening_setup"):
        page.select_option(f'select[name="{name}"]', BACKGROUND[name])
    page.fill('input[name="genres"]', "Jazz, Pop")
    page.get_by_role("button", name="Save and go on").click()
    # The level and headphone check: a study clip and three sets of tones, then the scenarios.
    page.wait_for_url(f"**/r/{token}/check")
    level = page.locator('audio[src^="clips/"]')
    level.evaluate("a => a.play()")
    page.wait_for_function("a => a.currentTime > 0.1 && !a.error", arg=level.element_handle())
    tone = page.locator('audio[src="check/tone/1/1"]')
    tone.evaluate("a => a.play()")
    page.wait_for_function("a => a.currentTime > 0.1 && !a.error", arg=tone.element_handle())
    from anchormix_kedro.study.checks import trial_order

    rater_id = site.rater(token).id
    for trial in (1, 2, 3):
        quiet = trial_order(rater_id, trial).index("quiet") + 1
        page.check(f'input[name="trial{trial}"][value="{quiet}"]')
    page.get_by_role("button", name="Save and start").click()
    page.wait_for_url(f"**/r/{token}/rate")
    wait_saved(page)
    rater = site.rater(token)
    assert rater.consented and rater.background == {**BACKGROUND, "genres": "Jazz, Pop"}
    assert page.inner_text("#progress-text") == f"0 of {total} scenarios rated"
    # The clips come from the server, to this rater, under the page's CSP: A/B plays the mix.
    first_section = page.locator("section.scenario").first
    first_section.locator(".ab-switch").click()
    mix = first_section.locator('audio[data-role="mix"]')
    page.wait_for_function(
        "a => !a.paused && !a.error && a.currentTime > 0.1", arg=mix.element_handle()
    )
    mix.evaluate("a => a.pause()")

    # Two scenarios rated in full, and a comment (escaping, non-ASCII) on the first.
    chosen = {sid: choices(i) for i, sid in enumerate(sids)}
    comment = 'Vocal \u22124 dB felt right <b>ok</b> & "quoted" \u00e9'
    for sid in sids[:2]:
        rate(page, sid, chosen[sid])
    section(page, sids[0]).locator('textarea[data-feedback="strengths"]').fill(comment)
    assert page.evaluate("window.AnchorMixOnline.unsaved()") > 0
    wait_saved(page)
    assert page.inner_text("#progress-text") == f"2 of {total} scenarios rated"
    if os.environ.get("STUDY_SCREENSHOT"):
        page.set_viewport_size({"width": 1280, "height": 1600})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=os.environ["STUDY_SCREENSHOT"])

    # Reloaded: the answers are shown again.
    page.reload()
    wait_saved(page)
    expected = {sids[0]: {"ratings": chosen[sids[0]], "texts": {**NO_TEXTS, "strengths": comment}},
                sids[1]: {"ratings": chosen[sids[1]], "texts": NO_TEXTS}}  # fmt: skip
    assert {sid: shown(page, sid) for sid in sids[:2]} == expected
    assert shown(page, sids[2]) == {"ratings": {}, "texts": NO_TEXTS}
    assert page.inner_text("#progress-text") == f"2 of {total} scenarios rated"

    # Another device (no shared storage): the link goes straight to the same answers.
    other = open_page(browser, f"{site.base}/r/{token}/")
    assert other.url.endswith(f"/r/{token}/rate")
    wait_saved(other)
    assert {sid: shown(other, sid) for sid in sids[:2]} == expected
    for sid in sids[2:]:
        rate(other, sid, chosen[sid])
    other.fill("#workflow_fit", "It would save me a pass on vocals.")
    wait_saved(other)
    assert other.inner_text("#progress-text") == f"{total} of {total} scenarios rated"
    other.click("#next-unrated")
    assert "Every scenario is rated" in other.inner_text("#status")

    # The first device, refreshed, shows the whole set too.
    page.evaluate("window.AnchorMixOnline.reload()")
    assert page.inner_text("#progress-text") == f"{total} of {total} scenarios rated"
    assert page.input_value("#workflow_fit") == "It would save me a pass on vocals."

    # The database holds exactly what was clicked and written.
    stored = site.answers(token)
    assert set(stored) == set(sids) | {WORKFLOW_ITEM}
    for sid in sids:
        texts = {**NO_TEXTS, "strengths": comment} if sid == sids[0] else NO_TEXTS
        assert stored[sid] == (chosen[sid], texts), sid
    assert stored[WORKFLOW_ITEM] == (
        {},
        {"workflow_fit": "It would save me a pass on vocals.", "workflow_change": ""},
    )
    assert page.errors == [] and other.errors == [] and csp_errors == []
    assert label == rater.label


def test_an_older_tab_never_overwrites_a_newer_answer(browser, site):
    token = site.ready_rater()
    sid = site.study.scenario_ids[0]
    tab_a = open_page(browser, f"{site.base}/r/{token}/rate")
    tab_b = open_page(browser, f"{site.base}/r/{token}/rate")
    wait_saved(tab_a)
    wait_saved(tab_b)

    rate(tab_b, sid, {"effectiveness": 6})
    wait_saved(tab_b)
    assert site.answers(token)[sid][0]["effectiveness"] == 6

    # Tab A still holds the older revision: its save is refused, and it shows the newer one.
    with tab_a.expect_response(lambda r: r.request.method == "PUT") as refused:
        rate(tab_a, sid, {"effectiveness": 2})
    assert refused.value.status == 409
    assert refused.value.json()["answer"]["ratings"]["effectiveness"] == 6
    tab_a.wait_for_function(
        """() => document.getElementById("status").textContent.includes(
            "changed in another tab or on another device")"""
    )
    wait_saved(tab_a)
    assert shown(tab_a, sid)["ratings"] == {"effectiveness": 6}
    assert site.answers(token)[sid][0]["effectiveness"] == 6

    # Made again, now on the latest revision, the change is saved.
    with tab_a.expect_response(lambda r: r.request.method == "PUT") as accepted:
        rate(tab_a, sid, {"effectiveness": 2})
    assert accepted.value.status == 200
    wait_saved(tab_a)
    assert site.answers(token)[sid][0] == {**dict.fromkeys(CRITERIA), "effectiveness": 2}
    assert tab_a.errors == [] and tab_b.errors == []


def test_a_server_restarted_mid_rating_loses_nothing(browser, site):
    token = site.ready_rater()
    first, second, third = site.study.scenario_ids[:3]
    page = open_page(browser, f"{site.base}/r/{token}/rate")
    wait_saved(page)
    rate(page, first, choices(0))
    wait_saved(page)  # acknowledged before the server goes away

    site.stop()
    rate(page, second, {"effectiveness": 3})
    section(page, third).locator('textarea[data-feedback="weaknesses"]').fill("Too quiet.")
    page.wait_for_function(
        """() => window.AnchorMixOnline.unsaved() === 2 && document.getElementById("save-state")
            .textContent.startsWith("Not saved yet (2 changes)")"""
    )
    assert "no connection" in page.inner_text("#save-state")
    assert "offline" in page.get_attribute("#save-state", "class")
    page.wait_for_timeout(2500)  # a few retries fail, and the delay between them grows
    assert page.evaluate("window.AnchorMixOnline.unsaved()") == 2

    site.start()  # a new application over the same database, on the same port
    wait_saved(page, timeout=60_000)
    stored = site.answers(token)
    assert stored[first] == (choices(0), NO_TEXTS)
    assert stored[second] == ({**dict.fromkeys(CRITERIA), "effectiveness": 3}, NO_TEXTS)
    assert stored[third] == (dict.fromkeys(CRITERIA), {**NO_TEXTS, "weaknesses": "Too quiet."})

    page.reload()
    wait_saved(page)
    assert shown(page, first)["ratings"] == choices(0)
    assert shown(page, second)["ratings"] == {"effectiveness": 3}
    assert shown(page, third)["texts"]["weaknesses"] == "Too quiet."
    assert page.errors == []


def test_a_link_reaches_its_own_answers_and_nothing_else(browser, site):
    one, two = site.ready_rater(), site.ready_rater()
    ((_label, not_consented),) = site.store.invite(site.study.version, 1)
    sid, other_sid = site.study.scenario_ids[:2]
    page_one = open_page(browser, f"{site.base}/r/{one}/rate")
    wait_saved(page_one)
    rate(page_one, sid, {"effectiveness": 5, "musicality": 5})
    wait_saved(page_one)

    # Rater 2's page shows none of rater 1's answers, and its saves are its own.
    page_two = open_page(browser, f"{site.base}/r/{two}/rate")
    wait_saved(page_two)
    assert page_two.inner_text("#progress-text").startswith("0 of ")
    assert shown(page_two, sid) == {"ratings": {}, "texts": NO_TEXTS}
    rate(page_two, sid, {"effectiveness": 1})
    wait_saved(page_two)
    api = page_two.context.request
    state = api.get(f"{site.base}/api/r/{two}/state").json()
    assert [(a["item"], a["ratings"]["effectiveness"]) for a in state["answers"]] == [(sid, 1)]
    put = api.put(f"{site.base}/api/r/{two}/answers/{other_sid}",
                  data={"revision": 0, "ratings": {"helpfulness": 7}, "save_id": "two-1"})  # fmt: skip
    assert put.status == 200
    assert set(site.answers(one)) == {sid}
    assert site.answers(one)[sid][0] == {**dict.fromkeys(CRITERIA), "effectiveness": 5,
                                         "musicality": 5}  # fmt: skip
    assert site.answers(two)[sid][0]["effectiveness"] == 1
    assert site.answers(two)[other_sid][0]["helpfulness"] == 7
    page_one.reload()
    wait_saved(page_one)
    assert shown(page_one, sid)["ratings"] == {"effectiveness": 5, "musicality": 5}
    assert shown(page_one, other_sid)["ratings"] == {}

    # An unknown token: 404 for the page, the API and a clip.
    clip = next(iter(site.study.manifest["clip_files"]))
    unknown = "x" * 32
    reply = page_two.goto(f"{site.base}/r/{unknown}/")
    assert reply.status == 404 and "unknown link" in page_two.inner_text("main")
    for path in (f"/r/{unknown}/rate", f"/api/r/{unknown}/state", f"/r/{unknown}/clips/{clip}"):
        assert api.get(site.base + path).status == 404, path
    refused = api.put(f"{site.base}/api/r/{unknown}/answers/{sid}",
                      data={"revision": 0, "ratings": {}, "save_id": "x-1"})  # fmt: skip
    assert refused.status == 404

    # Audio goes to consented raters only; a rater who has not consented is asked first.
    served = api.get(f"{site.base}/r/{one}/clips/{clip}")
    assert served.status == 200 and len(served.body()) > 1000
    assert api.get(f"{site.base}/r/{not_consented}/clips/{clip}").status == 403
    assert api.get(f"{site.base}/api/r/{not_consented}/state").status == 403
    page_two.goto(f"{site.base}/r/{not_consented}/")
    assert page_two.url.endswith(f"/r/{not_consented}/consent")
    assert site.answers(not_consented) == {}
    assert page_one.errors == [] and page_two.errors == []


def test_the_page_takes_no_answer_before_the_stored_ones_are_loaded(browser, site):
    token = site.ready_rater()
    sid = site.study.scenario_ids[0]
    rater = site.rater(token)
    site.store.save_answer(rater.id, sid, 0, {"effectiveness": 5}, {}, "earlier")
    held = []
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.route("**/state", lambda route: held.append(route))
    page.goto(f"{site.base}/r/{token}/rate")
    page.wait_for_function("() => document.querySelector('main') !== null")
    assert page.evaluate("() => document.querySelector('main').inert") is True
    assert "Loading your answers" in page.locator("#save-state").inner_text()
    page.wait_for_timeout(200)
    (route,) = held
    route.continue_()
    wait_saved(page)
    assert page.evaluate("() => document.querySelector('main').inert") is False
    assert shown(page, sid)["ratings"] == {"effectiveness": 5}
    rate(page, sid, {"musicality": 3})
    wait_saved(page)
    assert site.answers(token)[sid][0] == {**dict.fromkeys(CRITERIA), "effectiveness": 5,
                                           "musicality": 3}  # fmt: skip
    context.close()


def test_the_scales_open_once_the_mix_has_played_and_the_listening_is_stored(browser, tmp_path):
    site = LiveServer(tmp_path, listen_first_seconds=2)
    site.start()
    try:
        token = site.ready_rater()
        sid = site.study.scenario_ids[0]
        page = open_page(browser, f"{site.base}/r/{token}/rate")
        wait_saved(page)
        scales = section(page, sid).locator("fieldset.scales")
        assert scales.evaluate("f => f.disabled") is True
        assert "listened to the mix" in section(page, sid).inner_text()
        # The anchor alone does not open them; the mix does, after 2 s of playing.
        section(page, sid).locator('audio[data-role="anchor"]').evaluate("a => a.play()")
        page.wait_for_timeout(2500)
        assert scales.evaluate("f => f.disabled") is True
        section(page, sid).locator('audio[data-role="mix"]').evaluate("a => a.play()")
        page.wait_for_function(
            f"""() => !document.querySelector('section[data-scenario="{sid}"] fieldset.scales')
                .disabled""",
            timeout=WAIT_MS,
        )
        assert page.evaluate(f"() => window.AnchorMixOnline.listened('{sid}')") >= 2
        rate(page, sid, choices(0))
        wait_saved(page)
        page.evaluate("() => window.AnchorMixOnline.reportListening()")
        deadline = time.monotonic() + 20
        while True:
            with site.store.engine.connect() as conn:
                stored = conn.exec_driver_sql(
                    "SELECT item, detail FROM events WHERE kind = 'listened'"
                ).fetchall()
            if stored or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert stored and {row[0] for row in stored} == {sid}
        assert sum(json.loads(row[1])["seconds"] for row in stored) >= 4
        # Answered once, a scenario opens at once on another device.
        other = open_page(browser, f"{site.base}/r/{token}/rate")
        wait_saved(other)
        assert section(other, sid).locator("fieldset.scales").evaluate("f => f.disabled") is False
        assert page.errors == [] and other.errors == []
    finally:
        site.stop()


def test_a_catch_trial_rated_in_the_browser_is_stored_and_scored(browser, tmp_path):
    from anchormix_kedro.study.cli import study_design
    from anchormix_kedro.study.quality import quality_inputs, rater_quality

    site = LiveServer(tmp_path, catch=2)
    site.start()
    try:
        params = {"design": {"per_rater": 6, "catch_trials": True, "seed": 5}}
        token = site.ready_rater(study_design(site.study, params))
        slots = site.store.assignment_of(site.rater(token).id)
        catch = next(s for s in slots if s.kind == "catch")
        page = open_page(browser, f"{site.base}/r/{token}/rate")
        wait_saved(page)
        assert page.locator("section.scenario").count() == len(slots) == 8
        advice = section(page, catch.item).locator("blockquote.advice").inner_text()
        # The examples are too loud: the catch says the opposite.
        assert any(w in advice.lower() for w in ("too soft", "too low", "too quiet", "buried"))
        rate(page, catch.item, {"effectiveness": 6, "musicality": 5, "actionability": 6,
                                "helpfulness": 5})  # fmt: skip
        wait_saved(page)
        quality = rater_quality(quality_inputs(site.store, site.study.version),
                                site.study.version, {"catch_max_effectiveness": 3})  # fmt: skip
        row = quality.set_index("rater").iloc[0]
        assert row["catch_effectiveness"] == 6 and row["excluded"]
        assert "wrong-direction catch 6" in row["reason"]
        assert page.errors == []
    finally:
        site.stop()
