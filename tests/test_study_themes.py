"""Thematic analysis of the raters' written feedback: a blind export, codebook and coder
files checked, kappa per code, shares per system by majority, and an LLM's first pass that
is only compared with the human coders."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

import test_judge
from anchormix_kedro.evaluation.judge import Answer, LLMJudge, OpenAICompatibleBackend
from anchormix_kedro.study.themes import (
    AGREEMENT_COLUMNS,
    COMMENT_COLUMNS,
    FREQUENCY_COLUMNS,
    LLM_AGREEMENT_COLUMNS,
    MEAN_ROW,
    code_agreement,
    codebook_table,
    comment_systems,
    comments_for_coding,
    llm_agreement,
    no_codes_markdown,
    propose_codes,
    read_coder_files,
    theme_frequencies,
    themes_markdown,
)
from conftest import PROJECT_ROOT

server = test_judge.server  # the scripted OpenAI-compatible server

SYSTEMS = ("advisor", "dsp_baseline", "generic_base")
CODES = ("vague", "wrong_amount", "wrong_direction")


def codebook() -> pd.DataFrame:
    return codebook_table([{"code": c, "definition": f"the comment is about {c}",
                            "example": f"an example of {c}"} for c in CODES])  # fmt: skip


def study(n_per_system: int = 2):
    """A key with blinded advice and ratings by two raters with feedback in every form."""
    key = pd.DataFrame([{"scenario_id": f"s{i:02d}", "example_id": f"ex{i // 3}", "system": system,
                         "advice": f"Advice number {i}: pull the vocal down {i} dB.", "genre": "Rock"}
                        for i, system in enumerate(SYSTEMS * n_per_system)])  # fmt: skip
    rows = []
    for rater in ("ann", "ben"):
        for scenario in key["scenario_id"]:
            rows.append({"rater": rater, "scenario_id": scenario, "effectiveness": 5,
                         "strengths": f"clear fader move ({scenario})", "weaknesses": "   \n ",
                         "suggestions": None if rater == "ann" else f"try EQ on {scenario}",
                         "comment": float("nan")})  # fmt: skip
    return pd.DataFrame(rows), key


# --------------------------------------------------------------------------- export


def test_export_is_blind_stable_and_drops_blank_fields():
    ratings, key = study()
    export = comments_for_coding(ratings, key)
    assert tuple(export.columns) == COMMENT_COLUMNS
    # ann: strengths only; ben: strengths and suggestions; whitespace and NaN are no comment.
    assert len(export) == len(key) * 3
    assert set(export["field"]) == {"strengths", "suggestions"}
    assert (export["codes"] == "").all()
    assert list(export["comment_id"]) == sorted(export["comment_id"])
    assert export["comment_id"].is_unique
    for name in (*SYSTEMS, "ann", "ben"):
        blind = export.drop(columns="advice").astype(str)
        assert not blind.apply(lambda column, n=name: column.str.contains(n)).any().any(), name
    advice = key.set_index("scenario_id")["advice"]
    assert (export["advice"] == export["scenario_id"].map(advice)).all()
    again = comments_for_coding(ratings.sample(frac=1, random_state=3), key)
    pd.testing.assert_frame_equal(export, again)

    systems = comment_systems(ratings, key)
    assert list(systems["comment_id"]) == list(export["comment_id"])
    by_scenario = key.set_index("scenario_id")["system"]
    assert (systems["system"] == export["scenario_id"].map(by_scenario)).all()
    assert set(systems["rater"]) == {"ann", "ben"} and set(systems["genre"]) == {"Rock"}


def test_export_names_a_scenario_the_key_lacks():
    ratings, key = study()
    with pytest.raises(ValueError, match="scenario 's05' is not in the study key"):
        comments_for_coding(ratings, key[key["scenario_id"] != "s05"])
    with pytest.raises(ValueError, match="study key lack"):
        comments_for_coding(ratings, key.drop(columns="advice"))


# --------------------------------------------------------------------------- codebook


def test_shipped_codebook_is_valid():
    conf = PROJECT_ROOT / "conf" / "base" / "parameters" / "study_codebook.yml"
    table = codebook_table(yaml.safe_load(conf.read_text())["study_codebook"])
    assert 8 <= len(table) <= 10 and {"wrong_direction", "vague", "other"} <= set(table["code"])
    assert (table["definition"] != "").all() and (table["example"] != "").all()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"code": "vague", "definition": "x", "example": ""}] * 2, r"entry 1 \(code 'vague'\).*unique"),
        ([{"code": "Vague", "definition": "x", "example": ""}], r"entry 0 \(code 'Vague'\).*lower-case"),
        ([{"code": "vague", "example": ""}], r"entry 0 \(code 'vague'\): lacks definition"),
        ([{"code": "ok", "definition": "d", "example": ""}, {"code": "vague", "definition": " ", "example": ""}],
         r"entry 1 \(code 'vague'\): the definition is empty"),
        ([], "non-empty list"),
    ],
)  # fmt: skip
def test_codebook_errors_name_the_entry(entries, message):
    with pytest.raises(ValueError, match=message):
        codebook_table(entries)


# --------------------------------------------------------------------------- coder files


def test_coder_files_are_read_with_empty_cells_as_coded():
    files = {
        "alice.csv": lambda: pd.DataFrame({"comment_id": ["c1", "c2", "c3"], "text": ["a", "b", "c"],
                                           "codes": [" Vague ; wrong_amount,", "", np.nan]}),
        "bob": pd.DataFrame({"comment_id": ["c1", ""], "codes": ["vague", ""]}),
    }  # fmt: skip
    coded, coverage = read_coder_files(files, codebook(), ["c1", "c2", "c3"])
    assert sorted(map(tuple, coded.to_numpy())) == [
        ("alice", "c1", "vague"), ("alice", "c1", "wrong_amount"), ("bob", "c1", "vague")
    ]  # fmt: skip
    assert sorted(map(tuple, coverage.to_numpy())) == [
        ("alice", "c1"), ("alice", "c2"), ("alice", "c3"), ("bob", "c1")
    ]  # fmt: skip


def test_coder_file_problems_are_all_listed_with_file_row_and_value():
    files = {
        "alice": pd.DataFrame({"comment_id": ["c1", "c2", "c1"], "codes": ["vague", "nonsense", ""]}),
        "bob": pd.DataFrame({"comment_id": ["c9"], "codes": ["vague"]}),
        "carol": pd.DataFrame({"comment_id": ["c1"]}),
    }  # fmt: skip
    with pytest.raises(ValueError) as raised:
        read_coder_files(files, codebook(), ["c1", "c2"])
    message = str(raised.value)
    assert "4 problem(s)" in message
    assert "'alice' row 2: unknown code 'nonsense'" in message
    assert "vague, wrong_amount, wrong_direction" in message  # the codebook's codes
    assert "'bob' row 1: comment_id 'c9' is not in the current export; re-export" in message
    assert "'alice' rows 1, 3: comment c1 is listed 2 times" in message
    assert "'carol' lacks codes" in message


# --------------------------------------------------------------------------- agreement


def coding(coders: dict[str, list[set[str]]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coded and coverage frames from each coder's codes per comment (comment k is ``k{k}``)."""
    coded = [(coder, f"k{k:02d}", code) for coder, sets in coders.items()
             for k, codes in enumerate(sets) for code in sorted(codes)]  # fmt: skip
    coverage = [(coder, f"k{k:02d}") for coder, sets in coders.items() for k in range(len(sets))]
    return (pd.DataFrame(coded, columns=["coder", "comment_id", "code"]),
            pd.DataFrame(coverage, columns=["coder", "comment_id"]))  # fmt: skip


def cohen_by_hand(first: np.ndarray, second: np.ndarray) -> float:
    n = len(first)
    both, only_first = np.sum(first & second), np.sum(first & ~second)
    only_second, neither = np.sum(~first & second), np.sum(~first & ~second)
    observed = (both + neither) / n
    expected = ((both + only_first) * (both + only_second)
                + (neither + only_second) * (neither + only_first)) / n**2  # fmt: skip
    return (observed - expected) / (1 - expected)


def test_identical_coders_agree_perfectly():
    sets = [{"vague"} if k % 3 == 0 else set() for k in range(12)]
    table = code_agreement(*coding({"alice": sets, "bob": sets}), CODES, n_resamples=50)
    assert tuple(table.columns) == AGREEMENT_COLUMNS
    vague = table.set_index("code").loc["vague"]
    assert vague["kappa"] == pytest.approx(1.0) and vague["statistic"] == "cohen"
    assert vague["percent_agreement"] == 1.0 and vague["n_comments"] == 12
    assert vague["ci_low"] == pytest.approx(1.0) and vague["ci_high"] == pytest.approx(1.0)


def test_planted_disagreement_gives_the_hand_computed_kappa():
    alice = np.array([k < 8 for k in range(20)])
    bob = np.array([k < 5 or k in (9, 10) for k in range(20)])  # 3 misses and 2 extras
    sets = {"alice": [{"vague"} if a else set() for a in alice],
            "bob": [{"vague"} if b else set() for b in bob]}  # fmt: skip
    table = code_agreement(*coding(sets), CODES, n_resamples=400, seed=1).set_index("code")
    expected = cohen_by_hand(alice, bob)
    assert 0 < expected < 1
    assert table.at["vague", "kappa"] == pytest.approx(expected)
    assert table.at["vague", "percent_agreement"] == pytest.approx(15 / 20)
    assert table.at["vague", "prevalence"] == pytest.approx((8 + 7) / 40)
    assert table.at["vague", "ci_low"] < expected < table.at["vague", "ci_high"]
    again = code_agreement(*coding(sets), CODES, n_resamples=400, seed=1).set_index("code")
    assert again.at["vague", "ci_low"] == table.at["vague", "ci_low"]  # seeded
    # Never used: kappa undefined, said plainly; the mean row averages the defined ones.
    assert math.isnan(table.at["wrong_direction", "kappa"])
    assert "given to no comment" in table.at["wrong_direction", "note"]
    assert table.at[MEAN_ROW, "kappa"] == pytest.approx(expected)


def test_three_coders_use_fleiss_kappa():
    rng = np.random.default_rng(4)
    truth = rng.random(30) < 0.4
    marks = [truth ^ (rng.random(30) < 0.15) for _ in range(3)]
    sets = {name: [{"vague"} if m else set() for m in mark]
            for name, mark in zip(("alice", "bob", "carol"), marks, strict=True)}  # fmt: skip
    table = code_agreement(*coding(sets), ["vague"], n_resamples=100).set_index("code")
    counts = np.sum(marks, axis=0)  # coders giving the code, per comment (of 3)
    per_comment = (counts**2 + (3 - counts) ** 2 - 3) / (3 * 2)
    share = counts.sum() / (30 * 3)
    chance = share**2 + (1 - share) ** 2
    assert table.at["vague", "statistic"] == "fleiss"
    assert table.at["vague", "kappa"] == pytest.approx((per_comment.mean() - chance) / (1 - chance))


def test_degenerate_agreement_is_a_note_not_an_error():
    one = code_agreement(*coding({"alice": [{"vague"}, set()] * 5}), CODES, n_resamples=10)
    assert one["kappa"].isna().all() and "two coders" in one.at[0, "note"]
    few = code_agreement(*coding({"a": [{"vague"}, set()], "b": [{"vague"}, set()]}), CODES)
    assert few["kappa"].isna().all() and "kappa needs 5" in few.at[0, "note"]
    empty = code_agreement(*coding({}), CODES, n_resamples=10)
    assert empty["kappa"].isna().all()


# --------------------------------------------------------------------------- shares and quotes


def planted(n: int = 10):
    """Three systems' comments; a planted share of each carries ``vague``."""
    shares = {"advisor": 0.2, "dsp_baseline": 0.5, "generic_base": 0.8}
    systems, truth, texts = [], [], []
    for system, share in shares.items():
        for k in range(n):
            systems.append(system)
            truth.append(k < round(share * n))
            texts.append(f"{system} {'vague' if truth[-1] else 'fine'} #{k} " + "words " * k)
    ids = [f"k{k:02d}" for k in range(len(systems))]
    systems_map = pd.DataFrame({"comment_id": ids, "system": systems})
    comments = pd.DataFrame({"comment_id": ids, "text": texts})
    return shares, np.array(truth), systems_map, comments


def test_frequencies_recover_planted_shares_by_majority():
    shares, truth, systems_map, comments = planted()
    bob = truth.copy()
    bob[10], bob[5] = False, True  # drops a dsp_baseline one, adds an advisor one
    llm = ~truth  # must not count
    sets = {name: [{"vague"} if m else set() for m in marks]
            for name, marks in (("alice", truth), ("bob", bob), ("llm", llm))}  # fmt: skip
    coded, coverage = coding(sets)
    table = theme_frequencies(coded, coverage, systems_map, CODES, human_coders=["alice", "bob"],
                              comments=comments)  # fmt: skip
    assert tuple(table.columns) == FREQUENCY_COLUMNS
    assert len(table) == 3 * len(CODES)  # every system x code, zeros too
    vague = table[table["code"] == "vague"].set_index("system")
    for system, share in shares.items():
        assert abs(vague.at[system, "share"] - share) <= 0.1 + 1e-9
        assert vague.at[system, "n_comments"] == 10
    # One of two coders is half: the comment carries the code either way.
    assert vague.at["advisor", "n_with_code"] == 3 and vague.at["dsp_baseline", "n_with_code"] == 5
    assert (table.loc[table["code"] == "wrong_direction", "n_with_code"] == 0).all()

    carol = truth.copy()
    carol[10] = False  # with three coders, 1 of 3 on comment 10 and 5 is under half
    sets = {"alice": sets["alice"], "bob": sets["bob"], "carol": [{"vague"} if m else set() for m in carol]}  # fmt: skip
    three = theme_frequencies(*coding(sets), systems_map, CODES).set_index(["system", "code"])
    assert three.at[("advisor", "vague"), "n_with_code"] == 2
    assert three.at[("dsp_baseline", "vague"), "n_with_code"] == 4


def test_quotes_come_from_the_system_and_code_agreed_on_first():
    _, truth, systems_map, comments = planted()
    texts = comments.set_index("comment_id")["text"]
    texts["k05"] = "short"  # bob alone: the shortest advisor text, yet not unanimous
    texts["k00"] = "advisor vague long " + "x" * 300
    bob = truth.copy()
    bob[5] = True
    sets = {"alice": [{"vague"} if m else set() for m in truth],
            "bob": [{"vague"} if m else set() for m in bob]}  # fmt: skip
    table = theme_frequencies(*coding(sets), systems_map, CODES, quotes_per_theme=2,
                              comments=texts.reset_index())  # fmt: skip
    quotes = table.set_index(["system", "code"])["quotes"]
    advisor = quotes[("advisor", "vague")].split(" | ")
    assert advisor[0].startswith("advisor vague #1") and advisor[1].startswith("advisor vague long")
    assert len(advisor[1]) <= 200 and advisor[1].endswith("…")
    generic = quotes[("generic_base", "vague")].split(" | ")
    assert len(generic) == 2 and all(q.startswith("generic_base vague") for q in generic)
    assert quotes[("advisor", "wrong_amount")] == ""


# --------------------------------------------------------------------------- the LLM's first pass


class FakeJudge:
    """Answers prepared prompts in order, keeping the messages it was sent."""

    def __init__(self, answers):
        self.answers, self.sent = list(answers), []

    def ask(self, messages):
        self.sent.append(messages)
        return self.answers.pop(0)


def llm_comments(n: int) -> pd.DataFrame:
    return pd.DataFrame({"comment_id": [f"k{k:02d}" for k in range(n)], "field": "weaknesses",
                         "advice": [f"Pull the bass down {k} dB." for k in range(n)],
                         "text": [f"Comment {k}" for k in range(n)], "scenario_id": "s", "codes": ""})  # fmt: skip


def test_propose_codes_keeps_known_codes_and_never_guesses():
    judge = FakeJudge([
        Answer('{"codes": ["vague"]}'),
        Answer('```json\n{"codes": ["wrong_amount", "VAGUE"]}\n```'),
        Answer('{"codes": ["vague", "made_up"]}'),
        Answer("I would say it is vague."),
        Answer(None, "call failed: timeout"),
        Answer('{"codes": []}'),
    ])  # fmt: skip
    coded, coverage, failed = propose_codes(llm_comments(6), codebook(), judge)
    assert failed == 2
    assert list(coverage["comment_id"]) == ["k00", "k01", "k02", "k05"]
    assert set(coverage["coder"]) == {"llm"}
    assert sorted(map(tuple, coded[["comment_id", "code"]].to_numpy())) == [
        ("k00", "vague"), ("k01", "vague"), ("k01", "wrong_amount"), ("k02", "vague")
    ]  # fmt: skip
    system, user = judge.sent[3]
    assert "vague: the comment is about vague" in system["content"]
    assert '{"codes": ' in system["content"]
    assert "Pull the bass down 3 dB." in user["content"] and "Comment 3" in user["content"]


def test_propose_codes_through_an_openai_compatible_server(server):
    server.reply(200, '```json\n{"codes": ["wrong_direction"]}\n```').reply(400, '{"error": "bad"}')
    backend = OpenAICompatibleBackend(server.url, "coder-model", timeout_s=5.0, max_retries=0)
    coded, coverage, failed = propose_codes(llm_comments(2), codebook(), LLMJudge(backend))
    assert failed == 1 and list(coverage["comment_id"]) == ["k00"]
    assert list(coded["code"]) == ["wrong_direction"]
    sent = json.loads(server.requests[0]["body"])
    assert sent["model"] == "coder-model" and "Comment 0" in sent["messages"][1]["content"]


def test_llm_agreement_against_each_human():
    alice = np.array([k % 2 == 0 for k in range(12)])
    bob = alice.copy()
    bob[[1, 2, 3]] = ~bob[[1, 2, 3]]
    coded, coverage = coding({"alice": [{"vague"} if m else set() for m in alice],
                              "bob": [{"vague"} if m else set() for m in bob]})  # fmt: skip
    llm_coded, llm_coverage = coding({"llm": [{"vague"} if m else set() for m in alice]})
    table = llm_agreement(coded, coverage, llm_coded, llm_coverage, CODES)
    assert tuple(table.columns) == LLM_AGREEMENT_COLUMNS
    vague = table[table["code"] == "vague"].set_index("human_coder")
    assert vague.at["alice", "kappa"] == pytest.approx(1.0)
    assert vague.at["bob", "kappa"] == pytest.approx(cohen_by_hand(bob, alice))
    assert vague.at["bob", "percent_agreement"] == pytest.approx(9 / 12)
    assert (vague["n_comments"] == 12).all()


# --------------------------------------------------------------------------- report


def test_markdown_sections():
    _, truth, systems_map, comments = planted()
    sets = {"alice": [{"vague"} if m else set() for m in truth],
            "bob": [{"vague"} if m else set() for m in truth]}  # fmt: skip
    coded, coverage = coding(sets)
    agreement = code_agreement(coded, coverage, CODES, n_resamples=20)
    frequencies = theme_frequencies(coded, coverage, systems_map, CODES, comments=comments)
    llm = llm_agreement(coded, coverage, *coding({"llm": sets["alice"]}), CODES)
    lines = themes_markdown(agreement, frequencies, llm=llm, simulated=True)
    text = "\n".join(lines)
    assert lines[0] == "## What engineers wrote (themes)" and "Simulated" in text
    assert "| vague | 0.20 (2/10) | 0.50 (5/10) | 0.80 (8/10) |" in text
    assert "| code | advisor | dsp_baseline | generic_base |" in text
    assert "- **generic_base**, `vague`: generic_base vague #0" in text
    assert "never replace the human ones" in text
    waiting = "\n".join(no_codes_markdown(42, "data/08_reporting/study_comments.csv"))
    assert "42 written comment(s)" in waiting and "study_comments.csv" in waiting
    assert "data/01_raw/study_codes/<coder>.csv" in waiting and "codebook.csv" in waiting
