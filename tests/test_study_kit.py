"""The rating study kit: sampling, blinding, audio, escaping, and the page in a real browser."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from anchormix_kedro.evaluation import study_kit
from anchormix_kedro.evaluation.ratings import read_ratings_csv, scenario_scores, validate_ratings
from anchormix_kedro.vocabulary import CRITERIA

SYSTEMS = ("advisor", "dsp_baseline", "generic_base")
GENRES = ("Jazz", "Pop", "Rap", "Rock")
RATE = 16000
HOSTILE = '</blockquote><script>alert("x")</script> & "quoted" <b>bold</b>'
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def candidates(per_stratum: int = 2) -> pd.DataFrame:
    """One row per (example, system): 4 genres x 2 targets x 3 labels x ``per_stratum``."""
    rows = []
    for genre in GENRES:
        for target in ("vocals", "bass"):
            for label, gain in (("too_loud", 6.0), ("too_soft", -6.0), ("balanced", 0.0)):
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
                                "label": label,
                                "gain_db": gain,
                                "advice": f"Version {SYSTEMS.index(system)}: {label} by {gain:g} dB",
                            }  # fmt: skip
                        )
    return pd.DataFrame(rows)


def stems(seconds: float = 1.0) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * RATE)) / RATE
    return {
        name: (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        for name, freq, amplitude in (
            ("drums", 110, 0.5),
            ("bass", 55, 0.3),
            ("other", 440, 0.1),
            ("vocals", 330, 0.25),
        )
    }


def load_excerpt(excerpt_id: str) -> dict:
    return {"meta": {"excerpt_id": excerpt_id, "sample_rate": RATE}, "audio": stems()}


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


def test_scenario_audio_keeps_the_imbalance_and_never_clips():
    clips = study_kit.scenario_audio(stems(), "drums", "vocals", 6.0, RATE)
    middle = slice(RATE // 4, 3 * RATE // 4)  # away from the fades

    def rms(x):
        return float(np.sqrt(np.mean(x[middle].astype(float) ** 2)))

    # vocals 0.25 raised by 6 dB against drums 0.5: the ratio is 0.5 * 10**(6/20).
    assert rms(clips["target"]) / rms(clips["anchor"]) == pytest.approx(0.5 * 10**0.3, rel=1e-3)
    assert max(float(np.max(np.abs(c))) for c in clips.values()) <= 0.89 + 1e-6
    assert clips["mix"][0] == 0.0 and len(clips["mix"]) == RATE
    assert (
        len(study_kit.scenario_audio(stems(), "drums", "bass", 0, RATE, max_seconds=0.5)["mix"])
        == RATE // 2
    )
    with pytest.raises(ValueError, match="no 'piano' stem"):
        study_kit.scenario_audio(stems(), "drums", "piano", 0.0, RATE)


@pytest.mark.parametrize(("audio_format", "mime"), [("wav", "audio/wav"), ("ogg", "audio/ogg")])
def test_clips_encode_as_data_uris_that_decode(audio_format, mime):
    samples = stems()["vocals"]
    uri = study_kit.encode_clip(samples, RATE, audio_format)
    assert uri.startswith(f"data:{mime};base64,")
    decoded, rate = soundfile.read(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert rate == RATE and abs(len(decoded) - len(samples)) <= 1024
    if audio_format == "wav":
        assert np.max(np.abs(decoded - samples)) < 1e-4
    with pytest.raises(ValueError, match="unknown audio_format 'mp3'"):
        study_kit.encode_clip(samples, RATE, "mp3")


def test_clips_are_made_once_per_example_and_a_missing_excerpt_is_named():
    key = study_kit.sample_scenarios(candidates(1), 2, "s1")
    clips, by_scenario = study_kit.render_clips(key, load_excerpt, audio_format="wav")
    assert len(clips) == 2 * 3
    per_example = key.groupby("example_id")["scenario_id"].apply(
        lambda ids: {tuple(by_scenario[i].values()) for i in ids}
    )
    assert all(len(ids) == 1 for ids in per_example)

    def missing(excerpt_id):
        raise KeyError(excerpt_id)

    with pytest.raises(ValueError, match="excerpt '.*' of example .* is not among the excerpts"):
        study_kit.render_clips(key, missing)


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
        key, clips, by_scenario, title="Rate <this>", instructions='Say "hi" & <go>'
    )
    assert "<script>alert" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page
    assert "<b>bold" not in page and "R&amp;B &lt;i&gt;" in page
    assert (
        "<title>Rate &lt;this&gt;</title>" in page and "Say &quot;hi&quot; &amp; &lt;go&gt;" in page
    )
    assert page.count("<script") == 3  # two JSON blocks and the page's own script
    assert "http://" not in page and "https://" not in page
    for hidden in (*SYSTEMS, *key["example_id"]):
        assert hidden not in page
    assert all(f'data-scenario="{sid}"' in page for sid in key["scenario_id"])
    with pytest.raises(ValueError, match="holds no scenario"):
        study_kit.render_page(key.iloc[:0], clips, by_scenario)


def _launch_browser():
    """Playwright driving Debian's chromium, or a skip that says what is missing."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Python Playwright is not installed (pip install playwright)"
    )
    executable = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if not executable:
        pytest.skip(
            "no chromium: apt-get install -y --no-install-recommends chromium chromium-driver"
        )
    return sync_api.sync_playwright(), str(executable)


def test_study_page_in_a_headless_browser_rate_download_and_load_back(tmp_path):
    key = hostile_key()
    clips, by_scenario = study_kit.render_clips(key, load_excerpt, audio_format="ogg")
    page_file = tmp_path / "study.html"
    page_file.write_text(study_kit.render_page(key, clips, by_scenario), encoding="utf-8")
    manager, executable = _launch_browser()

    chosen: dict[str, dict[str, int]] = {}
    comments = {key["scenario_id"].iloc[0]: 'Good, but "4 dB" is a lot,\nsecond line'}
    with manager as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_FLAGS)
        try:
            context = browser.new_context(accept_downloads=True)
            page = context.new_page()
            requests, errors, dialogs = [], [], []
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(page_file.as_uri())
            assert page.inner_text("#progress-text") == f"0 of {len(key)} scenarios rated"

            # The advice shows as text, exactly as written, and runs nothing.
            shown = page.locator("blockquote.advice").all_inner_texts()
            assert HOSTILE in shown and not dialogs
            # The audio decodes: the first clip plays for its full second.
            duration = page.evaluate(
                """() => new Promise(resolve => {
                    const audio = document.querySelector("audio");
                    audio.addEventListener("loadedmetadata", () => resolve(audio.duration));
                    audio.addEventListener("error", () => resolve(-1));
                    audio.preload = "auto";
                    audio.load();
                })"""
            )
            assert duration == pytest.approx(1.0, abs=0.05)

            sections = page.locator("section.scenario")
            for i in range(sections.count()):
                section = sections.nth(i)
                sid = section.get_attribute("data-scenario")
                chosen[sid] = {c: 1 + (i + j) % 7 for j, c in enumerate(CRITERIA)}
                for criterion, value in chosen[sid].items():
                    section.locator(f'label[for="{sid}-{criterion}-{value}"]').click()
                if sid in comments:
                    section.locator("textarea").fill(comments[sid])
            assert page.inner_text("#progress-text") == f"{len(key)} of {len(key)} scenarios rated"

            page.click("#download")  # no name yet: nothing downloads, the page says why
            assert "enter your name" in page.inner_text("#status")
            page.fill("#rater", "Ann O'Neil")
            with page.expect_download() as download:
                page.click("#download")
            csv_file = tmp_path / download.value.suggested_filename
            download.value.save_as(csv_file)
            assert f"Downloaded {len(key)} rated scenarios" in page.inner_text("#status")

            # Ratings survive a reload (kept in the browser until downloaded).
            page.reload()
            assert page.inner_text("#progress-text") == f"{len(key)} of {len(key)} scenarios rated"
            assert page.input_value("#rater") == "Ann O'Neil"
            assert not errors
            assert all(url.startswith(("file://", "data:")) for url in requests)
        finally:
            browser.close()

    assert csv_file.name == "ratings_study_1__Ann_O_Neil.csv"
    study = key["study_id"].iloc[0]
    ratings = validate_ratings(
        read_ratings_csv(csv_file), csv_file.name, set(key["scenario_id"]), study_id=study
    )
    assert len(ratings) == len(key) and set(ratings["rater"]) == {"Ann O'Neil"}
    for row in ratings.itertuples(index=False):
        assert {c: getattr(row, c) for c in CRITERIA} == chosen[row.scenario_id]
        assert row.comment == comments.get(row.scenario_id, "")
    assert len(scenario_scores(ratings)) == len(key)
