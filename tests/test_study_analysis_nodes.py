"""The correlation pipeline's study nodes: the LLM's first pass at coding comes from the
configured judge and is only compared with the human coders; themes and validity tables
stay empty, and the report says so, before anyone rated or coded."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import test_judge
from anchormix_kedro.pipelines.correlation import study_nodes
from anchormix_kedro.study import themes
from conftest import PROJECT_ROOT

server = test_judge.server  # the scripted OpenAI-compatible server

CODEBOOK = yaml.safe_load(
    (PROJECT_ROOT / "conf" / "base" / "parameters" / "study_codebook.yml").read_text()
)["study_codebook"]


class Study:
    """What the nodes read of a built study: its key."""

    def __init__(self, key: pd.DataFrame):
        self.key = key


def rated_study(n_examples: int = 6):
    systems = ("advisor", "dsp_baseline")
    key = pd.DataFrame([{"scenario_id": f"s{e}-{s}", "example_id": f"e{e}", "system": s,
                         "genre": "Jazz", "advice": f"Advice {e} of {s}"}
                        for e in range(n_examples) for s in systems])  # fmt: skip
    rows = []
    for rater in ("r1", "r2"):
        for scenario in key["scenario_id"]:
            vague = scenario.endswith("dsp_baseline")
            rows.append({"rater": rater, "scenario_id": scenario, "effectiveness": 4,
                         "musicality": 4, "actionability": 4, "helpfulness": 4,
                         "strengths": "", "suggestions": "", "comment": "",
                         "weaknesses": "Too general to act on." if vague else "Wrong way round."})  # fmt: skip
    return pd.DataFrame(rows), Study(key)


def judge_config(url: str) -> dict:
    return {"backend": "openai", "base_url": url, "model": "coder", "max_retries": 0,
            "timeout_s": 5.0}  # fmt: skip


def test_the_llm_first_pass_is_off_by_default_and_compared_with_humans_when_on(server):
    ratings, study = rated_study()
    comments, codebook = study_nodes.export_comments_for_coding(ratings, study, CODEBOOK)
    assert len(comments) == 24 and set(codebook["code"]) >= {"vague", "wrong_direction"}
    off = study_nodes.propose_comment_codes(comments, CODEBOOK, {"llm_first_pass": False},
                                            judge_config(server.url), {})  # fmt: skip
    assert off.empty and not server.requests
    for text in comments["text"]:
        server.reply(200, '{"codes": ["vague"]}' if "general" in text else
                     '{"codes": ["wrong_direction"]}')  # fmt: skip
    proposed = study_nodes.propose_comment_codes(comments, CODEBOOK, {"llm_first_pass": True},
                                                 judge_config(server.url), {})  # fmt: skip
    assert len(server.requests) == len(comments) and len(proposed) == len(comments)
    # Two human coders: one agrees with the texts, one calls every comment vague.
    truth = comments.assign(codes=["vague" if "general" in t else "wrong_direction"
                                   for t in comments["text"]])[["comment_id", "codes"]]  # fmt: skip
    lazy = truth.assign(codes="vague")
    agreement, frequencies, llm = study_nodes.analyse_themes(
        ratings, study, {"ann": lambda: truth, "bo": lambda: lazy}, {}, proposed, CODEBOOK,
        {"ratings": "real"}, {"bootstrap": {"n_resamples": 100}},
    )  # fmt: skip
    shares = frequencies.set_index(["system", "code"])["share"]
    assert shares[("dsp_baseline", "vague")] == 1.0 and shares[("advisor", "vague")] == 1.0
    assert "llm" not in set(agreement["coders"].astype(str).str.split(", ").explode())
    by_coder = llm[llm["code"] == "wrong_direction"].set_index("human_coder")["kappa"]
    assert by_coder["ann"] == pytest.approx(1.0)  # the LLM coded as ann did
    assert not by_coder["bo"] > 0.5  # and unlike bo


def test_the_simulated_coders_are_read_only_for_a_simulated_study():
    ratings, study = rated_study()
    comments, _codebook = study_nodes.export_comments_for_coding(ratings, study, CODEBOOK)
    coded = comments[["comment_id"]].assign(codes="vague")
    real = study_nodes.analyse_themes(ratings, study, {}, {"sim": lambda: coded},
                                      pd.DataFrame(columns=["comment_id", "codes"]), CODEBOOK,
                                      {"ratings": "real"}, {})  # fmt: skip
    assert all(table.empty for table in real)
    simulated = study_nodes.analyse_themes(ratings, study, {}, {"sim": lambda: coded},
                                           pd.DataFrame(columns=["comment_id", "codes"]),
                                           CODEBOOK, {"ratings": "simulated"}, {})  # fmt: skip
    assert simulated[1]["n_with_code"].sum() == len(comments)


def test_before_any_rating_the_report_says_what_to_do_and_invents_nothing():
    empty, study = rated_study()
    empty = empty.iloc[0:0]
    genres = study_nodes.summarise_study_genres(empty, study, pd.DataFrame(
        columns=["example_id", "system", "condition"]), {})  # fmt: skip
    comments, _codebook = study_nodes.export_comments_for_coding(empty, study, CODEBOOK)
    validity, ceiling, judge = study_nodes.assess_metric_validity(
        empty, study, pd.DataFrame(columns=["example_id", "system", "condition"]),
        pd.DataFrame(columns=["example_id", "system", "condition", "listwise_rank"]), {})  # fmt: skip
    assert genres.empty and comments.empty and validity.empty and ceiling.empty and judge.empty
    frame = pd.DataFrame
    report, metrics = study_nodes.write_study_report(
        empty.assign(rater=pd.Series(dtype=str)), frame(columns=["rater", "excluded", "reason"]),
        frame(columns=["system", "criterion", "estimate", "ci_low", "ci_high", "p_adjusted"]),
        frame(columns=["system", "criterion", "estimate", "ci_low", "ci_high", "p_adjusted"]),
        frame(), frame(), frame(), genres, frame(), frame(columns=list(themes.FREQUENCY_COLUMNS)),
        frame(), comments, validity, ceiling, judge, {"ratings": "real"},
    )  # fmt: skip
    assert report.startswith("# The listening study") and "No ratings yet" in report
    assert "anchormix study invite" in report and "SIMULATED" not in report
    assert metrics["raters_kept"]["value"] == 0


def test_codes_of_comments_no_longer_analysed_are_left_out_with_a_warning(caplog):
    ratings, study = rated_study()
    comments, _codebook = study_nodes.export_comments_for_coding(ratings, study, CODEBOOK)
    coded = comments[["comment_id"]].assign(codes="vague")
    kept = ratings[ratings["rater"] == "r1"]  # r2 excluded since the export
    _agreement, frequencies, _llm = study_nodes.analyse_themes(
        kept, study, {"ann": lambda: coded}, {}, pd.DataFrame(columns=["comment_id", "codes"]),
        CODEBOOK, {"ratings": "real"}, {},
    )  # fmt: skip
    assert frequencies["n_comments"].sum() // len(CODEBOOK) == len(comments) // 2
    assert "Coder file ann: 12 coded comments are no longer analysed" in caplog.text
