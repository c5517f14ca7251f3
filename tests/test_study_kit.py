"""The rating study kit: sampling, blinding, source-rate audio and the advised mix, escaping,
the page's size, and the page in a real browser (players, A/B, rater details, download)."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import soundfile

from anchormix_kedro.study import kit as study_kit
from anchormix_kedro.study.ratings import read_ratings_csv, scenario_scores, validate_ratings
from anchormix_kedro.vocabulary import CRITERIA
from conftest import BROWSER_FLAGS, playwright_and_chromium

SYSTEMS = ("advisor", "dsp_baseline", "generic_base")
GENRES = ("Jazz", "Pop", "Rap", "Rock")
RATE = 44100
HOSTILE = '</blockquote><script>alert("x")</script> & "quoted" <b>bold</b>'
#: Each system's advice in the browser test: a move of -4 dB, none, and none that can be read.
ADVICE = {
    "advisor": "The vocal is too loud: pull the vocal fader down by about 4 dB.",
    "dsp_baseline": "The vocal sits right against the drums; no gain change is needed.",
    "generic_base": "Interesting song, nice groove.",
}
FREQUENCIES = {"drums": 110.0, "bass": 55.0, "other": 440.0, "vocals": 330.0}


def candidates(per_stratum: int = 2, gains=(6.0, -6.0, 0.0)) -> pd.DataFrame:
    """One row per (example, system): 4 genres x 2 targets x 3 labels x ``per_stratum``."""
    labels = {6.0: "too_loud", -6.0: "too_soft", 0.0: "balanced", 9.0: "too_loud", 3.0: "too_loud"}
    rows = []
    for genre in GENRES:
        for target in ("vocals", "bass"):
            for gain in gains:
                for k in range(per_stratum):
                    example_id = f"{genre}_{k}|drums>{target}|{gain:+.1f}"
                    for system in SYSTEMS:
                        rows.append(
                            {
                                "example_id": example_id,
                                "system": system,
                                "excerpt_id": f"{genre}_{k}",
                                "genre": genre,
                                "anchor": "drums",
                                "target": target,
                                "label": labels[gain],
                                "gain_db": gain,
                                "advice": f"Version {SYSTEMS.index(system)}: {labels[gain]} by {gain:g} dB",
                            }  # fmt: skip
                        )
    return pd.DataFrame(rows)


def stems(seconds: float = 1.0, channels: int = 2) -> dict[str, np.ndarray]:
    """Four stereo stems of distinct tones at the source rate (slightly different per side)."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = {}
    for name, amplitude in (("drums", 0.5), ("bass", 0.3), ("other", 0.1), ("vocals", 0.25)):
        wave = amplitude * np.sin(2 * np.pi * FREQUENCIES[name] * t)
        out[name] = np.stack([wave * (1.0 - 0.1 * c) for c in range(channels)], axis=1)
    return {name: clip.astype(np.float32) for name, clip in out.items()}


def load_excerpt(excerpt_id: str) -> dict:
    return {"meta": {"excerpt_id": excerpt_id, "sample_rate": RATE}, "audio": stems()}


def tone_level_db(samples: np.ndarray, freq: float, rate: int) -> float:
    """The level of one tone in a clip (its amplitude, projected, in dB), away from the fades."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    middle = mono[len(mono) // 4 : 3 * len(mono) // 4]
    window = np.hanning(len(middle))  # keeps the other tones out of this one
    t = np.arange(len(middle)) / rate
    sine, cosine = np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)
    amplitude = 2 * np.hypot((middle * window) @ sine, (middle * window) @ cosine) / window.sum()
    return 20 * np.log10(amplitude)


def decode(uri: str) -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])), always_2d=True)
    return data, rate


# --------------------------------------------------------------------------- sampling


def test_sample_spreads_over_genres_pairs_and_labels_with_every_system():
    key = study_kit.sample_scenarios(candidates(), n_examples=8, study_id="s1", seed=5)
    assert list(key.columns) == list(study_kit.KEY_COLUMNS)
    assert len(key) == 8 * 3 and list(key["position"]) == list(range(1, 25))
    examples = key.drop_duplicates("example_id")
    assert examples["genre"].value_counts().to_dict() == dict.fromkeys(GENRES, 2)
    # Within each genre, the two examples are one per pair.
    assert (examples.groupby("genre")["target"].nunique() == 2).all()
    assert key.groupby("example_id")["system"].nunique().eq(3).all()
    assert key["scenario_id"].is_unique


def test_only_subtle_offsets_and_balanced_examples_by_default():
    frame = candidates(per_stratum=1, gains=(9.0, 3.0, 0.0))
    key = study_kit.sample_scenarios(frame, n_examples=16, study_id="s1", seed=1)
    assert set(key["gain_db"]) == {3.0, 0.0}  # 9 dB is no subtle imbalance
    assert set(key["label"]) == {"too_loud", "balanced"}
    anything = study_kit.sample_scenarios(frame, 24, "s1", seed=1, max_offset_db=None)
    assert 9.0 in set(anything["gain_db"])
    wider = study_kit.sample_scenarios(frame, 24, "s1", seed=1, max_offset_db=12)
    assert set(wider["gain_db"]) == {9.0, 3.0, 0.0}
    with pytest.raises(ValueError, match=r"max_offset_db = 0.5: no example .*offsets: \[9.0\]"):
        study_kit.sample_scenarios(candidates(1, gains=(9.0,)), 2, "s1", max_offset_db=0.5)


def test_sample_is_seeded_and_ids_are_opaque_and_stable():
    frame = candidates()
    first = study_kit.sample_scenarios(frame, 6, "s1", seed=5)
    assert first.equals(study_kit.sample_scenarios(frame, 6, "s1", seed=5))
    other = study_kit.sample_scenarios(frame, 6, "s1", seed=6)
    assert list(other["scenario_id"]) != list(first["scenario_id"])
    # The id depends on the study, example, system and advice only, not on the draw.
    row = first.iloc[0]
    assert row["scenario_id"] == study_kit.scenario_id("s1", row.example_id, row.system, row.advice)
    assert study_kit.scenario_id("s2", row.example_id, row.system, row.advice) != row["scenario_id"]
    changed = study_kit.scenario_id("s1", row.example_id, row.system, row.advice + "!")
    assert changed != row["scenario_id"]
    assert not any(s in sid for sid in first["scenario_id"] for s in (*SYSTEMS, "Jazz", "drums"))


def test_sample_leaves_out_empty_advice_and_names_bad_choices(caplog):
    frame = candidates(per_stratum=1)
    frame.loc[frame["system"] == "generic_base", "advice"] = ""
    key = study_kit.sample_scenarios(frame, 3, "s1", systems=["advisor", "dsp_baseline"])
    assert set(key["system"]) == {"advisor", "dsp_baseline"} and len(key) == 6
    # A system that never answered: the others are still compared, and the log says so.
    assert study_kit.sample_scenarios(frame, 3, "s1").equals(key)
    assert "no example has advice from every system" in caplog.text
    with pytest.raises(ValueError, match=r"study systems \['nope'\] have no advice"):
        study_kit.sample_scenarios(frame, 3, "s1", systems=["nope"])
    frame["advice"] = None
    assert study_kit.sample_scenarios(frame, 3, "s1").empty
    assert "nothing to rate" in study_kit.empty_page()


# --------------------------------------------------------------------------- audio


def test_advised_moves_are_read_from_the_advice():
    assert study_kit.advised_move(ADVICE["advisor"]) == (-4.0, "moved")
    assert study_kit.advised_move("Push the bass up around 2.5 dB.") == (2.5, "moved")
    assert study_kit.advised_move(ADVICE["dsp_baseline"]) == (0.0, "unchanged")
    assert study_kit.advised_move(ADVICE["generic_base"]) == (0.0, "unreadable")
    assert study_kit.advised_move("The vocal is too loud.") == (0.0, "unreadable")  # no amount


def test_scenario_audio_keeps_the_imbalance_applies_the_advice_and_never_clips():
    clips = study_kit.scenario_audio(
        stems(), "drums", "vocals", 6.0, RATE, advised_moves_db=[-4.0, 0.0]
    )
    assert set(clips) == {"anchor", "target", "mix", "advised -4.0", "advised +0.0"}
    assert all(clip.shape == (RATE, 2) for clip in clips.values())  # stereo kept
    # vocals 0.25 raised by 6 dB against drums 0.5.
    vocals_vs_drums = tone_level_db(clips["target"], 330, RATE) - tone_level_db(
        clips["anchor"], 110, RATE
    )
    assert vocals_vs_drums == pytest.approx(20 * np.log10(0.5) + 6.0, abs=0.01)
    # The advised mix: the target moved by the advice, the rest as in the mix.
    assert tone_level_db(clips["advised -4.0"], 330, RATE) - tone_level_db(
        clips["mix"], 330, RATE
    ) == pytest.approx(-4.0, abs=0.01)
    assert tone_level_db(clips["advised -4.0"], 110, RATE) == pytest.approx(
        tone_level_db(clips["mix"], 110, RATE), abs=0.01
    )
    np.testing.assert_allclose(clips["advised +0.0"], clips["mix"], atol=1e-6)
    assert max(float(np.max(np.abs(c))) for c in clips.values()) <= 0.89 + 1e-6
    assert clips["mix"][0, 0] == 0.0  # faded in
    short = study_kit.scenario_audio(stems(), "drums", "bass", 0, RATE, max_seconds=0.5)
    assert len(short["mix"]) == RATE // 2
    with pytest.raises(ValueError, match="no 'piano' stem"):
        study_kit.scenario_audio(stems(), "drums", "piano", 0.0, RATE)


@pytest.mark.parametrize(("audio_format", "mime"), [("wav", "audio/wav"), ("ogg", "audio/ogg")])
def test_clips_encode_as_stereo_data_uris_at_the_source_rate(audio_format, mime):
    samples = stems()["vocals"]
    uri = study_kit.encode_clip(samples, RATE, audio_format)
    assert uri.startswith(f"data:{mime};base64,")
    decoded, rate = decode(uri)
    assert rate == RATE and decoded.shape[1] == 2 and abs(len(decoded) - len(samples)) <= 1024
    if audio_format == "wav":
        assert np.max(np.abs(decoded - samples)) < 1e-4
    # A high Vorbis quality by default: under 1% error on the tone, and larger files than q=1.
    assert tone_level_db(decoded, 330, RATE) == pytest.approx(
        tone_level_db(samples, 330, RATE), abs=0.1
    )
    if audio_format == "ogg":
        assert len(uri) > len(study_kit.encode_clip(samples, RATE, "ogg", compression=1.0))
    with pytest.raises(ValueError, match="unknown audio_format 'mp3'"):
        study_kit.encode_clip(samples, RATE, "mp3")


def _advice_key(n_examples: int = 2) -> pd.DataFrame:
    frame = candidates(1)
    frame["advice"] = frame["system"].map(ADVICE)
    frame = frame[frame["target"] == "vocals"]
    return study_kit.sample_scenarios(frame, n_examples, "s1", seed=3)


def test_clips_are_made_once_per_example_and_a_missing_excerpt_is_named():
    key = _advice_key(2)
    clips, by_scenario = study_kit.render_clips(key, load_excerpt, audio_format="wav")
    # Per example: anchor, target, mix and one advised mix (-4 dB); "unchanged" and
    # "unreadable" advice play the mix itself.
    assert len(clips) == 2 * 4
    for row in key.itertuples(index=False):
        clip = by_scenario[row.scenario_id]
        expected = {"advisor": "moved", "dsp_baseline": "unchanged", "generic_base": "unreadable"}
        assert clip.advised_state == expected[row.system]
        assert (clip.advised == clip.mix) is (row.system != "advisor")
    assert key.set_index("system")["advised_move_db"].to_dict() == pytest.approx(
        {"advisor": -4.0, "dsp_baseline": 0.0, "generic_base": np.nan}, nan_ok=True
    )

    def missing(excerpt_id):
        raise KeyError(excerpt_id)

    with pytest.raises(ValueError, match="not among the source-rate excerpts.*source_rate.splits"):
        study_kit.render_clips(key, missing)

    def unreadable(excerpt_id):
        return {"meta": {"error": "corrupt file"}, "audio": {}}

    with pytest.raises(ValueError, match="could not be read at its source rate \\(corrupt file\\)"):
        study_kit.render_clips(key, unreadable)


# --------------------------------------------------------------------------- the page


def hostile_key() -> pd.DataFrame:
    frame = candidates(1)
    frame.loc[frame["system"] == "generic_base", "advice"] = HOSTILE
    frame.loc[frame["genre"] == "Rap", "genre"] = "R&B <i>"
    # Four examples: one per genre, so the hostile genre is among them.
    return study_kit.sample_scenarios(frame, 4, "study <1>", seed=2)


def test_page_escapes_every_text_names_no_system_and_fetches_nothing():
    key = hostile_key()
    clips, by_scenario = study_kit.render_clips(key, load_excerpt, audio_format="wav")
    page = study_kit.render_page(
        key, clips, by_scenario, title="Rate <this>", instructions='Say "hi" & <go>',
        audio_notice="Research <only>", consent="I agree & <sign>",
    )  # fmt: skip
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page
    assert "<b>bold" not in page and "R&amp;B &lt;i&gt;" in page
    assert (
        "<title>Rate &lt;this&gt;</title>" in page and "Say &quot;hi&quot; &amp; &lt;go&gt;" in page
    )
    assert "Research &lt;only&gt;" in page and "I agree &amp; &lt;sign&gt;" in page
    assert page.count("<script") == 3  # two JSON blocks and the page's own script
    assert "http://" not in page and "https://" not in page
    for hidden in (*SYSTEMS, *key["example_id"]):
        assert hidden not in page
    assert all(f'data-scenario="{sid}"' in page for sid in key["scenario_id"])
    for question in (
        *study_kit.FEEDBACK_QUESTIONS.values(),
        *study_kit.WORKFLOW_QUESTIONS.values(),
    ):
        assert question.replace("'", "&#x27;") in page
    with pytest.raises(ValueError, match="holds no scenario"):
        study_kit.render_page(key.iloc[:0], clips, by_scenario)


def test_the_default_page_names_musdb18s_licence_and_keeps_its_size_bounded():
    key = _advice_key(2)
    page = study_kit.build_study_page(key, load_excerpt, study_kit.PageSettings())
    assert "MUSDB18" in page and "non-commercial research use only" in page
    # 6 scenarios of 1 s: 8 clips of 1 s at about 180 kbps.
    assert 0.1 < study_kit.page_size_mb(page) < 0.6
    with pytest.raises(study_kit.PageTooLargeError, match="over study_kit.max_page_mb = 0.05 MB"):
        study_kit.build_study_page(key, load_excerpt, study_kit.PageSettings(max_page_mb=0.05))
    settings = study_kit.PageSettings.from_params(
        {"audio_compression": None, "max_page_mb": 40, "title": None, "clip_seconds": 10.0}
    )
    assert settings.audio_compression == study_kit.DEFAULT_COMPRESSION
    assert settings.title == study_kit.DEFAULT_TITLE
    ((name, text),) = study_kit.page_partition("<html></html>").items()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d\.\d\d\.\d\d\.\d{3}Z/index", name) and text


# --------------------------------------------------------------------------- in a browser


def _launch_browser():
    """Playwright driving Debian's chromium, or a skip that says what is missing."""
    return playwright_and_chromium()


def page_clips(page_html: str) -> dict[str, str]:
    """The clips embedded in the page, as the browser gets them."""
    found = re.search(r'<script type="application/json" id="study-clips">(.*?)</script>', page_html)
    return json.loads(found.group(1))


PLAYERS = """section => Array.from(section.querySelectorAll("audio")).map(a => ({
    role: a.dataset.role, paused: a.paused, time: a.currentTime, loop: a.loop}))"""


def test_study_page_in_a_headless_browser(tmp_path):
    key = _advice_key(4)
    clips, by_scenario = study_kit.render_clips(key, load_excerpt)
    html_text = study_kit.render_page(key, clips, by_scenario)
    page_file = tmp_path / "index.html"
    page_file.write_text(html_text, encoding="utf-8")

    # The page's own audio, decoded here (a browser would resample it): source rate, stereo,
    # and the advised mix differs from the mix by the advised move, on the target alone.
    embedded = page_clips(html_text)
    for row in key.itertuples(index=False):
        clip = by_scenario[row.scenario_id]
        mix, rate = decode(embedded[clip.mix])
        advised, advised_rate = decode(embedded[clip.advised])
        assert (rate, mix.shape[1], advised_rate, advised.shape[1]) == (RATE, 2, RATE, 2)
        change = tone_level_db(advised, 330, RATE) - tone_level_db(mix, 330, RATE)
        assert change == pytest.approx(
            row.advised_move_db if row.system == "advisor" else 0.0, abs=0.1
        )
        assert tone_level_db(advised, 110, RATE) == pytest.approx(
            tone_level_db(mix, 110, RATE), abs=0.1
        )

    manager, executable = _launch_browser()
    total = len(key)
    chosen: dict[str, dict[str, int]] = {}
    hostile_text = {"strengths": "=HYPERLINK(\"x\")", "weaknesses": "-3 dB would be better",
                    "suggestions": "'+quoted"}  # fmt: skip
    with manager as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_FLAGS)
        try:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            requests, errors = [], []
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_file.as_uri())
            assert page.inner_text("#progress-text") == f"0 of {total} scenarios rated"
            assert "MUSDB18" in page.inner_text("main")
            sections = page.locator("section.scenario")
            first = sections.nth(0)

            # Players loop; the A/B switch plays the mix, then the advised mix from the same
            # position, and only one player sounds at a time.
            first.locator(".ab-switch").click()
            page.wait_for_timeout(600)
            state = first.evaluate(PLAYERS)
            assert all(p["loop"] for p in state)
            playing = [p["role"] for p in state if not p["paused"]]
            assert playing == ["mix"], state
            first.locator(".ab-switch").click()
            page.wait_for_timeout(50)
            state = {p["role"]: p for p in first.evaluate(PLAYERS)}
            assert [r for r, p in state.items() if not p["paused"]] == ["advised"]
            assert state["advised"]["time"] == pytest.approx(state["mix"]["time"], abs=0.15)
            assert (
                state["mix"]["time"] > 0.3
                and first.locator(".ab-switch").get_attribute("aria-pressed") == "true"
            )
            # Another scenario's player stops this one.
            sections.nth(1).locator('audio[data-role="target"]').evaluate("a => a.play()")
            page.wait_for_timeout(100)
            assert all(p["paused"] for p in first.evaluate(PLAYERS))
            # Looping: after more than its length (1 s) a clip still plays.
            page.wait_for_timeout(1300)
            target_player = sections.nth(1).locator('audio[data-role="target"]')
            assert target_player.evaluate("a => !a.paused && !a.ended")
            target_player.evaluate("a => a.pause()")
            notes = first.locator(".advised-note").inner_text()
            assert "mix unchanged" in notes or "fader move applied" in notes

            # Rate: the first scenario fully, the third partly.
            def rate(i: int, criteria=CRITERIA):
                section = sections.nth(i)
                sid = section.get_attribute("data-scenario")
                chosen[sid] = {c: 1 + (i + j) % 7 for j, c in enumerate(CRITERIA)}
                for criterion in criteria:
                    section.locator(
                        f'label[for="{sid}-{criterion}-{chosen[sid][criterion]}"]'
                    ).click()
                return sid

            first_id = rate(0)
            partial_id = rate(2, CRITERIA[:2])
            assert page.inner_text("#progress-text") == (
                f"1 of {total} scenarios rated; 1 scenario partly rated"
            )
            assert "partial" in sections.nth(2).get_attribute("class")
            assert sections.nth(2).locator(".partial-mark").is_visible()
            assert sections.nth(0).locator(".done-mark").is_visible()

            # "Next unrated" goes to the next scenario not fully rated after the one in hand.
            def next_unrated() -> str:
                page.click("#next-unrated")
                return page.evaluate("document.activeElement.dataset.scenario")

            ids = [sections.nth(i).get_attribute("data-scenario") for i in range(total)]
            assert next_unrated() == ids[3]  # after the third (partly rated): the fourth
            first.locator("h2").click()  # back at the first one
            assert next_unrated() == ids[1]
            assert next_unrated() == ids[2]

            # No download without the rater's details and consent; the page says what is missing.
            page.click("#download")
            message = page.inner_text("#status")
            assert "your name or initials" in message and "your consent" in message
            page.fill("#rater", "=Ann O'Neil")
            page.select_option("#rater_role", "Mixing engineer")
            page.select_option("#rater_experience", "5-10 years")
            page.click("#download")
            assert "your consent" in page.inner_text("#status")
            page.check("#consent")
            for field, text in hostile_text.items():
                sections.nth(0).locator(f'textarea[data-feedback="{field}"]').fill(text)
            page.fill("#workflow_fit", "Early in a mix, for a first balance.")
            with page.expect_download() as download:
                page.click("#download")
            assert page.inner_text("#status") == (
                "Downloaded 1 rated scenario; 1 partly rated scenario was left out."
            )
            one_file = tmp_path / "one.csv"
            download.value.save_as(one_file)

            for i in range(1, total):
                rate(i)
            with page.expect_download() as download:
                page.click("#download")
            assert page.inner_text("#status") == f"Downloaded {total} rated scenarios."
            csv_file = tmp_path / download.value.suggested_filename
            download.value.save_as(csv_file)

            # Everything survives a reload (kept in the browser until downloaded).
            page.reload()
            assert page.inner_text("#progress-text") == f"{total} of {total} scenarios rated"
            assert page.input_value("#rater") == "=Ann O'Neil" and page.is_checked("#consent")
            assert page.input_value("#rater_experience") == "5-10 years"
            assert page.input_value("#workflow_fit") == "Early in a mix, for a first balance."
            assert not errors
            assert all(url.startswith(("file://", "data:")) for url in requests)
        finally:
            browser.close()

    assert csv_file.name == "ratings_s1__Ann_O_Neil.csv"
    raw = csv_file.read_text(encoding="utf-8")
    # Spreadsheet-safe: no cell starts with a formula character.
    assert "\"'=Ann O'Neil\"" in raw and '"\'=HYPERLINK(""x"")"' in raw
    assert '"\'-3 dB would be better"' in raw and "\"''+quoted\"" in raw
    assert not re.search(r'(^|,)"[=+\-@]', raw, re.MULTILINE)
    assert raw.splitlines()[0] == ",".join(f'"{c}"' for c in study_kit.PAGE_CSV_COLUMNS)
    ratings = validate_ratings(
        read_ratings_csv(csv_file), csv_file.name, set(key["scenario_id"]), "s1"
    )
    assert len(ratings) == total and set(ratings["rater"]) == {"=Ann O'Neil"}
    assert set(ratings["rater_role"]) == {"Mixing engineer"} and set(ratings["consent"]) == {"yes"}
    assert set(ratings["rater_experience"]) == {"5-10 years"}
    assert set(ratings["workflow_fit"]) == {"Early in a mix, for a first balance."}
    for row in ratings.itertuples(index=False):
        assert {c: getattr(row, c) for c in CRITERIA} == chosen[row.scenario_id]
    mine = ratings.set_index("scenario_id").loc[first_id]
    # The loader gives back exactly what was typed.
    assert {f: mine[f] for f in hostile_text} == hostile_text
    assert partial_id in set(ratings["scenario_id"])
    scores = scenario_scores(ratings).set_index("scenario_id")
    assert scores.loc[first_id, "n_comments"] == 1 and scores["n_comments"].sum() == 1
    assert (
        len(validate_ratings(read_ratings_csv(one_file), "one.csv", set(key["scenario_id"]))) == 1
    )
