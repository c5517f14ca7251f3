"""The study server and its database: invitations, consent, answers with revisions,
access, hostile input, and nothing lost across a restart."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from anchormix_kedro.study.answers import (
    export_tables,
    progress,
    ratings_for_analysis,
    ratings_long,
)
from anchormix_kedro.study.schema import answer_revisions
from anchormix_kedro.study.server import create_app, redact
from anchormix_kedro.study.storage import StudyStore, token_hash
from study_helpers import make_server, study_params

BACKGROUND = {"role": "Mixing engineer", "experience_years": "5-10 years",
              "listening_setup": "Headphones", "genres": "Rock, Pop"}  # fmt: skip
FULL = {"effectiveness": 5, "musicality": 6, "actionability": 4, "helpfulness": 5}


def enrol(client, token: str) -> None:
    assert client.post(f"/r/{token}/consent", data={"agree": "yes"}).status_code == 200
    assert client.post(f"/r/{token}/background", data=BACKGROUND).status_code == 200
    picked = {"trial1": "1", "trial2": "2", "trial3": "3"}
    assert client.post(f"/r/{token}/check", data=picked).url.path.endswith("/rate")


def put(client, token, item, revision, ratings=None, texts=None, save_id="s1"):
    body = {"revision": revision, "ratings": ratings or {}, "texts": texts or {},
            "save_id": save_id}  # fmt: skip
    return client.put(f"/api/r/{token}/answers/{item}", json=body)


@pytest.fixture
def served(tmp_path, database_url):
    """The server over a fresh database, SQLite and PostgreSQL in turn."""
    client, store, study, tokens = make_server(tmp_path, database_url=database_url)
    yield client, store, study, tokens
    store.close()


def test_a_link_leads_through_consent_and_background_to_the_rating_page(served):
    client, store, study, (token, _other) = served
    first = client.get(f"/r/{token}/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "consent"
    page = client.get(f"/r/{token}/")
    assert page.status_code == 200 and "About this study" in page.text
    assert "research study on automatic mixing advice" in page.text  # from the parameters
    assert client.post(f"/r/{token}/consent", data={}).status_code == 400  # no tick, no consent
    assert client.get(f"/api/r/{token}/state").status_code == 403
    after = client.post(f"/r/{token}/consent", data={"agree": "yes"})
    assert after.url.path.endswith("/background") and "Years of mixing experience" in after.text
    refused = client.post(f"/r/{token}/background", data={**BACKGROUND, "role": "Astronaut"})
    assert refused.status_code == 400
    check = client.post(f"/r/{token}/background", data=BACKGROUND)
    assert check.url.path.endswith("/check") and "which one is the quietest" in check.text
    assert client.get(f"/r/{token}/rate", follow_redirects=False).headers["location"] == "check"
    tone = client.get(f"/r/{token}/check/tone/2/3")
    assert tone.status_code == 200 and tone.headers["content-type"] == "audio/wav"
    assert client.get(f"/r/{token}/check/tone/4/1").status_code == 404
    # Every set needs an answer; then the rater goes on to the scenarios.
    assert client.post(f"/r/{token}/check", data={"trial1": "1"}).url.path.endswith("/check")
    from anchormix_kedro.study.checks import trial_order

    rater_id = store.rater_by_token(token).id
    right = {f"trial{t}": str(trial_order(rater_id, t).index("quiet") + 1) for t in (1, 2, 3)}
    rate = client.post(f"/r/{token}/check", data=right)
    assert rate.url.path.endswith("/rate") and rate.status_code == 200
    for sid in study.scenario_ids:
        assert f'data-scenario="{sid}"' in rate.text
    assert "advisor" not in rate.text and "dsp_baseline" not in rate.text
    rater = store.rater_by_token(token)
    assert rater.consented and rater.background["listening_setup"] == "Headphones"
    from anchormix_kedro.study.quality import quality_inputs, rater_quality

    quality = rater_quality(quality_inputs(store, study.version), study.version)
    assert quality.set_index("rater").loc["rater-001", "headphone_correct"] == 3
    # The link goes straight to the rating page from now on, on any device.
    assert client.get(f"/r/{token}/", follow_redirects=False).headers["location"] == "rate"


def test_answers_keep_revisions_refuse_older_saves_and_accept_a_repeated_one(served):
    client, store, study, (token, _other) = served
    enrol(client, token)
    sid = study.scenario_ids[0]
    saved = put(client, token, sid, 0, {"effectiveness": 5}, {"strengths": "clear"}, "a")
    assert saved.status_code == 200 and saved.json()["answer"]["revision"] == 1
    # A second tab still at revision 0: refused, and told what is stored.
    stale = put(client, token, sid, 0, {"effectiveness": 2}, save_id="b")
    assert stale.status_code == 409
    assert stale.json()["answer"]["ratings"]["effectiveness"] == 5
    # The first save again (its reply was lost): acknowledged, not applied twice.
    again = put(client, token, sid, 0, {"effectiveness": 5}, {"strengths": "clear"}, "a")
    assert again.status_code == 200 and again.json()["status"] == "replayed"
    newer = put(client, token, sid, 1, FULL, {"strengths": "clear", "weaknesses": "vague"}, "c")
    assert newer.json()["answer"]["revision"] == 2
    # An old save replayed after a newer one: refused, the newer one stays.
    assert put(client, token, sid, 0, {"effectiveness": 1}, save_id="a2").status_code == 409
    state = client.get(f"/api/r/{token}/state").json()
    (answer,) = state["answers"]
    assert answer["revision"] == 2 and answer["ratings"] == FULL
    assert answer["texts"]["weaknesses"] == "vague"
    with store.engine.connect() as conn:
        history = conn.execute(sa.select(answer_revisions.c.revision, answer_revisions.c.answer)
                               .order_by(answer_revisions.c.id)).fetchall()  # fmt: skip
    assert [r.revision for r in history] == [1, 2]
    assert json.loads(history[0].answer)["ratings"]["effectiveness"] == 5
    workflow = put(client, token, "workflow", 0, texts={"workflow_fit": "as a second ear"})
    assert workflow.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"revision": 0, "ratings": {"effectiveness": 8}, "save_id": "x"},
            "less than or equal to 7",
        ),
        ({"revision": 0, "ratings": {"effectiveness": 0}, "save_id": "x"}, "greater than or equal"),
        ({"revision": 0, "ratings": {"effectiveness": 4.5}, "save_id": "x"}, "valid integer"),
        ({"revision": 0, "ratings": {"effectiveness": "5"}, "save_id": "x"}, "valid integer"),
        ({"revision": 0, "ratings": {"effectiveness": True}, "save_id": "x"}, "valid integer"),
        ({"revision": 0, "ratings": {"loudness": 3}, "save_id": "x"}, "unknown fields"),
        ({"revision": 0, "texts": {"strengths": "x" * 5001}, "save_id": "x"}, "at most 5000"),
        ({"revision": 0, "texts": {"notes": "x"}, "save_id": "x"}, "unknown fields"),
        ({"revision": -1, "save_id": "x"}, "greater than or equal to 0"),
        ({"revision": 0, "save_id": "<script>"}, "save_id"),
        ({"revision": 0, "ratings": {}, "save_id": "x", "admin": True}, "Extra inputs"),
        ({"ratings": {}, "save_id": "x"}, "revision"),
    ],
)
def test_hostile_answers_are_refused_with_a_reason(served, body, message):
    client, store, study, (token, _other) = served
    enrol(client, token)
    response = client.put(f"/api/r/{token}/answers/{study.scenario_ids[0]}", json=body)
    assert response.status_code == 422 and message in response.json()["detail"]
    assert store.answers_of(store.rater_by_token(token).id) == {}


def test_malformed_bodies_and_oversize_requests_are_refused(served):
    client, store, study, (token, _other) = served
    enrol(client, token)
    url = f"/api/r/{token}/answers/{study.scenario_ids[0]}"
    headers = {"content-type": "application/json"}
    assert client.put(url, content=b'{"revision": 0,', headers=headers).status_code == 422
    assert client.put(url, content=b"[1, 2]", headers=headers).status_code == 422
    huge = json.dumps({"revision": 0, "texts": {"strengths": "x" * 300_000}, "save_id": "x"})
    assert client.put(url, content=huge, headers=headers).status_code == 413
    assert client.put(f"/api/r/{token}/answers/s-unknown", json={"revision": 0, "save_id": "x"}
                      ).status_code == 404  # fmt: skip


def test_html_in_answers_is_kept_as_text_and_shown_escaped(served):
    client, store, study, (token, _other) = served
    enrol(client, token)
    script = '</textarea><script>alert("x")</script>'
    put(client, token, study.scenario_ids[0], 0, texts={"strengths": script})
    assert client.get(f"/api/r/{token}/state").json()["answers"][0]["texts"]["strengths"] == script
    # The page itself never embeds answers; the script fills them in as values.
    assert "alert(" not in client.get(f"/r/{token}/rate").text


def test_a_rater_reaches_only_their_own_answers_and_audio(served):
    client, store, study, (ann, bob) = served
    enrol(client, ann)
    sid = study.scenario_ids[0]
    put(client, ann, sid, 0, FULL)
    clip = study.manifest["scenarios"][0]["clips"]["mix"]
    assert client.get(f"/r/{ann}/clips/{clip}").status_code == 200
    # Bob has not consented: no answers, no audio.
    assert client.get(f"/r/{bob}/clips/{clip}").status_code == 403
    assert client.get(f"/api/r/{bob}/state").status_code == 403
    enrol(client, bob)
    assert client.get(f"/api/r/{bob}/state").json()["answers"] == []
    put(client, bob, sid, 0, {"effectiveness": 1}, save_id="bob")
    assert store.answers_of(store.rater_by_token(ann).id)[sid].ratings == FULL
    altered = ann[:-1] + ("A" if ann[-1] != "A" else "B")
    for path in (f"/r/{altered}/", f"/api/r/{altered}/state", f"/r/{altered}/clips/{clip}",
                 "/r//", f"/r/{'x' * 5000}/"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    assert client.get(f"/r/{ann}/clips/../../study.json").status_code == 404
    assert client.get(f"/r/{ann}/clips/c999").status_code == 404


def test_withdrawal_keeps_the_record_and_leaves_the_answers_out(served, tmp_path):
    client, store, study, (ann, bob) = served
    for token in (ann, bob):
        enrol(client, token)
        put(client, token, study.scenario_ids[0], 0, FULL, {"strengths": token[:4]})
    withdrawn = client.post(f"/r/{bob}/withdraw")
    assert withdrawn.status_code == 200 and "withdrawn" in withdrawn.text
    assert client.get(f"/api/r/{bob}/state").status_code == 403
    assert client.get(f"/r/{bob}/", follow_redirects=False).headers["location"] == "consent"
    assert set(ratings_long(store, study.version)["rater"]) == {"rater-001"}
    analysed = ratings_for_analysis(store, study.version)
    assert list(analysed["rater"]) == ["rater-001"] and analysed["consent"].tolist() == ["yes"]
    table = progress(store, study.version, len(study.scenario_ids))
    assert table.set_index("rater")["state"].to_dict() == {"rater-001": "rating",
                                                           "rater-002": "withdrawn"}  # fmt: skip
    assert store.answers_of(store.rater_by_token(bob).id)  # kept in the database


def test_export_is_tidy_with_its_header_before_any_answer_and_never_overwrites(served, tmp_path):
    client, store, study, (ann, _bob) = served
    empty = export_tables(store, study, tmp_path / "out" / "ratings.csv")
    header = empty[0].read_text().replace('"', "").splitlines()
    assert header == ["study_version,study_id,rater,scenario_id,criterion,rating,revision,saved_at"]
    with pytest.raises(FileExistsError, match="choose another --output"):
        export_tables(store, study, tmp_path / "out" / "ratings.csv")
    enrol(client, ann)
    put(client, ann, study.scenario_ids[0], 0, FULL, {"weaknesses": "=1+1 too vague"})
    put(client, ann, study.scenario_ids[1], 0, {"musicality": 3}, save_id="s2")
    paths = export_tables(store, study, tmp_path / "again.csv")
    import pandas as pd

    long = pd.read_csv(paths[0])
    assert len(long) == 5 and set(long["criterion"]) == set(FULL)
    assert long[long["scenario_id"] == study.scenario_ids[1]]["rating"].tolist() == [3]
    comments = pd.read_csv(paths[1], keep_default_na=False)
    assert comments["text"].tolist() == ["'=1+1 too vague"]  # safe in a spreadsheet
    raters = pd.read_csv(paths[2], keep_default_na=False)
    assert raters.set_index("rater").loc["rater-001", "listening_setup"] == "Headphones"
    events = pd.read_csv(paths[3])
    assert {"consent", "background"} <= set(events["kind"])


def test_nothing_acknowledged_is_lost_when_the_server_is_killed(tmp_path):
    client, store, study, (token, _other) = make_server(tmp_path)
    enrol(client, token)
    acknowledged = {}
    for number, sid in enumerate(study.scenario_ids):
        reply = put(client, token, sid, 0, {**FULL, "effectiveness": 1 + number % 7},
                    save_id=f"k{number}")  # fmt: skip
        assert reply.status_code == 200
        acknowledged[sid] = reply.json()["answer"]
    # No clean shutdown: the engine is dropped, as a killed process drops it.
    del client
    reopened = StudyStore.open(f"sqlite:///{tmp_path / 'study.db'}")
    app = create_app(reopened, study, study_params())
    from fastapi.testclient import TestClient

    state = TestClient(app).get(f"/api/r/{token}/state").json()
    assert {a["item"]: a for a in state["answers"]} == acknowledged
    with reopened.engine.connect() as conn:
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"


def test_tokens_are_stored_hashed_and_never_logged(served, caplog):
    client, store, study, (token, _other) = served
    with caplog.at_level(logging.INFO, logger="anchormix_kedro.study.access"):
        enrol(client, token)
        client.get(f"/r/{token}/rate")
    assert caplog.records and token not in caplog.text and "/r/<token>/rate" in caplog.text
    assert redact(f"/api/r/{token}/state") == "/api/r/<token>/state"
    with store.engine.connect() as conn:
        stored = [row[0] for row in conn.exec_driver_sql("SELECT token_hash FROM raters")]
    assert token not in stored and token_hash(token) in stored


def test_every_reply_carries_a_strict_content_security_policy(served):
    client, _store, _study, (token, _other) = served
    for path in ("/", f"/r/{token}/", "/static/online.js", "/r/nope/"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy and "unsafe-inline" not in policy
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"


def test_organiser_status_needs_an_organiser_token(served):
    client, store, study, (token, _other) = served
    assert client.get("/organiser/status").status_code == 401
    assert client.get("/organiser/status", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 401  # a rater's token is no organiser's  # fmt: skip
    organiser = store.new_organiser_token()
    reply = client.get("/organiser/status", headers={"Authorization": f"Bearer {organiser}"})
    assert reply.status_code == 200
    assert [r["rater"] for r in reply.json()["raters"]] == ["rater-001", "rater-002"]


def test_a_link_keeps_its_study_after_a_newer_one_is_built(tmp_path):
    from fastapi.testclient import TestClient

    from anchormix_kedro.study.material import StudyShelf
    from study_helpers import make_study

    root = tmp_path / "studies"
    older = make_study(root, "2026-01-01T00.00.00.000Z", n_examples=2)
    store = StudyStore.open(f"sqlite:///{tmp_path / 'study.db'}")
    store.register_study(older.version, older.study_id, len(older.scenario_ids))
    ((_label, token),) = store.invite(older.version, 1)
    newer = make_study(root, "2026-02-01T00.00.00.000Z", n_examples=4)
    client = TestClient(create_app(store, newer, study_params(), StudyShelf(root)))
    enrol(client, token)
    page = client.get(f"/r/{token}/rate").text
    assert all(f'data-scenario="{sid}"' in page for sid in older.scenario_ids)
    only_newer = set(newer.scenario_ids) - set(older.scenario_ids)
    assert only_newer and not any(f'data-scenario="{sid}"' in page for sid in only_newer)
    assert put(client, token, older.scenario_ids[0], 0, FULL).status_code == 200
    assert put(client, token, sorted(only_newer)[0], 0, FULL, save_id="n").status_code == 404
    assert store.versions_with_raters() == [older.version]
    store.close()


def test_listening_reports_are_stored_for_the_raters_own_items_only(served):
    client, store, study, (token, _other) = served
    enrol(client, token)
    sid = study.scenario_ids[0]
    url = f"/api/r/{token}/events"
    ok = client.post(url, json={"events": [{"kind": "listened", "item": sid, "seconds": 4.5}]})
    assert ok.status_code == 200 and ok.json() == {"stored": 1}
    for body, status in (
        ({"events": [{"kind": "listened", "item": "s-nope", "seconds": 1}]}, 422),
        ({"events": [{"kind": "listened", "item": sid, "seconds": -1}]}, 422),
        ({"events": [{"kind": "rated", "item": sid, "seconds": 1}]}, 422),
        ({"events": [{"kind": "listened", "item": sid, "seconds": 1}] * 101}, 422),
    ):
        assert client.post(url, json=body).status_code == status
    from anchormix_kedro.study.quality import quality_inputs

    listened = quality_inputs(store, study.version)["listened"]
    assert listened["seconds"].tolist() == [4.5]
