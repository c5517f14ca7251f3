"""The design on the server (each rater's own list), catch trials and repeats, the
exclusion rule in the analysis, and the design in the export."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from anchormix_kedro.datasets.study_datasets import _no_quality_inputs
from anchormix_kedro.pipelines.correlation.nodes import load_ratings
from anchormix_kedro.study.answers import export_tables, ratings_for_analysis
from anchormix_kedro.study.cli import study_design
from anchormix_kedro.study.design import REPEAT_SUFFIX
from anchormix_kedro.study.quality import quality_inputs, rater_quality
from anchormix_kedro.study.server import create_app
from anchormix_kedro.study.storage import StudyStore
from study_helpers import make_study, study_params

RULES = {"catch_max_effectiveness": 3, "repeat_max_mean_abs_diff": 2.0}
GOOD = {"effectiveness": 5, "musicality": 5, "actionability": 5, "helpfulness": 5}


@pytest.fixture
def designed(tmp_path, database_url):
    study = make_study(tmp_path / "studies", n_examples=6, catch=2)
    store = StudyStore.open(database_url)
    params = {**study_params(), "design": {"per_rater": 6, "catch_trials": True, "seed": 3}}
    client = TestClient(create_app(store, study, params))
    tokens = [t for _label, t in store.invite(study.version, 3, study_design(study, params))]
    for token in tokens:
        client.post(f"/r/{token}/consent", data={"agree": "yes"})
        client.post(f"/r/{token}/background", data={"role": "Producer",
                    "experience_years": "1-3 years", "listening_setup": "Headphones"})  # fmt: skip
        client.post(f"/r/{token}/check", data={"trial1": "1", "trial2": "1", "trial3": "1"})
    yield client, store, study, tokens
    store.close()


def items(store, token):
    return store.assignment_of(store.rater_by_token(token).id)


def test_each_rater_sees_their_own_list_in_its_order_and_nothing_else(designed):
    client, store, study, tokens = designed
    catch = set(study.key.loc[study.key["system"] == "catch", "scenario_id"])
    for token in tokens:
        slots = items(store, token)
        assert [s.kind for s in slots].count("scenario") == 6
        assert [s.kind for s in slots].count("catch") == 1 and slots[-1].position == 8
        assert {s.scenario_id for s in slots if s.kind == "catch"} <= catch
        page = client.get(f"/r/{token}/rate").text
        shown = [page.index(f'data-scenario="{s.item}"') for s in slots]
        assert shown == sorted(shown)  # in the rater's order
        others = set(study.scenario_ids) - {s.scenario_id for s in slots}
        assert not any(f'data-scenario="{sid}"' in page for sid in others)
        assert "Scenario 8 of 8" in page
        repeat = next(s for s in slots if s.kind == "repeat")
        assert repeat.item == repeat.scenario_id + REPEAT_SUFFIX
        assert client.put(f"/api/r/{token}/answers/{repeat.item}",
                          json={"revision": 0, "ratings": GOOD, "save_id": "r"}).status_code == 200  # fmt: skip
        if others:
            other = sorted(others)[0]
            refused = client.put(f"/api/r/{token}/answers/{other}",
                                 json={"revision": 0, "save_id": "x"})  # fmt: skip
            assert refused.status_code == 404
            clip = next(s["clips"]["mix"] for s in study.manifest["scenarios"]
                        if s["scenario_id"] == other)  # fmt: skip
            own = {c for s in study.manifest["scenarios"] for c in s["clips"].values()
                   if s["scenario_id"] in {x.scenario_id for x in slots}}  # fmt: skip
            if clip not in own:
                assert client.get(f"/r/{token}/clips/{clip}").status_code == 404


def answer_all(client, store, token, catch_effectiveness: int, repeat_shift: int) -> None:
    for number, slot in enumerate(items(store, token)):
        ratings = dict(GOOD)
        if slot.kind == "catch":
            ratings["effectiveness"] = catch_effectiveness
        if slot.kind == "repeat":
            ratings = {c: max(1, v - repeat_shift) for c, v in ratings.items()}
        reply = client.put(f"/api/r/{token}/answers/{slot.item}",
                           json={"revision": 0, "ratings": ratings, "save_id": f"s{number}"})  # fmt: skip
        assert reply.status_code == 200


def test_catch_and_repeat_results_exclude_raters_from_the_analysis_without_deleting(designed):
    client, store, study, (careful, careless, unsteady) = designed
    answer_all(client, store, careful, catch_effectiveness=2, repeat_shift=0)
    answer_all(client, store, careless, catch_effectiveness=6, repeat_shift=0)
    answer_all(client, store, unsteady, catch_effectiveness=1, repeat_shift=3)
    inputs = quality_inputs(store, study.version)
    quality = rater_quality(inputs, study.version, RULES).set_index("rater")
    assert quality["catch_effectiveness"].tolist() == [2.0, 6.0, 1.0]
    assert quality["repeat_mean_abs_diff"].tolist() == [0.0, 0.0, 3.0]
    assert quality["excluded"].tolist() == [False, True, True]
    assert "wrong-direction catch 6" in quality.loc["rater-002", "reason"]
    assert "3.00 points apart" in quality.loc["rater-003", "reason"]
    assert not rater_quality(inputs, study.version, {"catch_max_effectiveness": None,
                             "repeat_max_mean_abs_diff": None})["excluded"].any()  # fmt: skip
    answers = {"ratings": ratings_for_analysis(store), **quality_inputs(store)}
    merged, table, everyone = load_ratings({}, answers, answers, study, {"exclusion": RULES})
    assert set(merged["rater"]) == {"rater-001"}
    assert set(everyone["rater"]) == {"rater-001", "rater-002", "rater-003"}  # before exclusion
    assert len(merged) == 6  # its six scenarios; the catch trial and the repeat are not ratings
    assert not merged["scenario_id"].str.endswith(REPEAT_SUFFIX).any()
    assert table["excluded"].sum() == 2
    assert len(store.answers_of(store.rater_by_token(careless).id)) == 8  # nothing deleted


def test_the_export_writes_the_design_beside_the_ratings(designed, tmp_path):
    client, store, study, tokens = designed
    paths = export_tables(store, study, tmp_path / "out" / "ratings.csv")
    design = pd.read_csv(paths[-1])
    assert paths[-1].name == "ratings_design.csv"
    assert {"rater", "scenario_id", "system", "position", "kind"} <= set(design.columns)
    assert len(design) == 3 * 8 and set(design["rater"]) == {"rater-001", "rater-002", "rater-003"}
    assert (design.loc[design["kind"] == "catch", "system"] == "catch").all()
    shown = design[design["kind"] == "scenario"]
    assert set(shown["system"]) == {"advisor", "dsp_baseline", "generic_base"}
    assert shown.groupby("rater")["system"].value_counts().max() == 2


def test_without_answers_the_quality_table_is_empty_and_excludes_no_one():
    empty = _no_quality_inputs()
    assert rater_quality(empty, "v").empty
