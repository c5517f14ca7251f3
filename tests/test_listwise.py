"""The listwise judge: blind shuffled prompts, strict rankings, a local test server, summaries."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from anchormix_kedro.evaluation.judge import LLMJudge, OpenAICompatibleBackend
from anchormix_kedro.evaluation.judge import fake_server as fake
from anchormix_kedro.evaluation.judge.listwise import (
    ListwiseItem,
    blind_order,
    listwise_messages,
)
from anchormix_kedro.evaluation.judge.output import JudgeOutputError, parse_ranking
from anchormix_kedro.evaluation.listwise import (
    LISTWISE_COLUMNS,
    listwise_status,
    rank_advice,
)
from anchormix_kedro.evaluation.listwise_summary import (
    rank_summary,
    win_rate_markdown,
    win_rates,
)
from anchormix_kedro.pipelines.correlation.nodes import correlate_metrics, with_listwise_ranks

SYSTEMS = ("advisor", "no_anchor", "generic_base", "dsp_baseline")
# Advice whose quality the test server can read: higher q is better.
QUALITY = {"advisor": 4, "dsp_baseline": 3, "no_anchor": 2, "generic_base": 1}


def advice_of(system: str, example: str = "ex1") -> str:
    return f"[{example} q={QUALITY[system]}] Pull the vocal down about 4 dB."


def table(examples=("ex1",), songs=None, advice=None) -> pd.DataFrame:
    rows = []
    for k, example in enumerate(examples):
        for system in SYSTEMS:
            text = advice_of(system, example) if advice is None else advice(system, example)
            rows.append(
                {"example_id": example, "system": system, "advice": text,
                 "song": (songs or examples)[k], "target": "vocals", "anchor": "drums",
                 "genre": "Rap", "gain_db": 4.0, "label": "too_loud"}
            )  # fmt: skip
    return pd.DataFrame(rows)


def quality_of(text: str) -> int:
    return int(re.search(r"q=(\d)", text)[1])


def by_quality(messages) -> object:
    answers = fake.prompt_answers(messages)
    ranking = sorted(answers, key=lambda label: -quality_of(answers[label]))
    return fake.Reply(json.dumps({"ranking": ranking, "reason": "highest q first"}))


def judge_for(server, **options) -> LLMJudge:
    settings = {"timeout_s": 5.0, "max_retries": 2, "backoff_s": 0.01} | options
    cache = settings.pop("cache_dir", None)
    backend = OpenAICompatibleBackend(server.url, "judge-model", **settings)
    return LLMJudge(backend, cache_dir=cache, max_in_flight=4)


# --------------------------------------------------------------------------- prompt, parsing


def test_answers_are_shown_blind_in_a_seeded_shuffled_order():
    answers = tuple((s, advice_of(s)) for s in SYSTEMS)
    item = ListwiseItem("ex1::as_mixed", "vocals", answers, "drums", "Rap", 4.0, "too_loud")
    order = blind_order(item, seed=0)
    assert sorted(order) == sorted(SYSTEMS)
    assert blind_order(item, seed=0) == order  # the same prompt again: a cache hit
    reversed_rows = ListwiseItem(item.item_id, item.target, item.answers[::-1], "drums", "Rap")
    assert blind_order(reversed_rows, seed=0) == order  # not the table's row order
    orders = {
        tuple(blind_order(ListwiseItem(f"ex{i}::as_mixed", "vocals", item.answers), 0))
        for i in range(30)
    }
    assert len(orders) > 5  # examples get different orders
    system, user = listwise_messages(item, order)
    for name in SYSTEMS:
        assert name not in system["content"] + user["content"]  # anonymised
    for position, name in enumerate(order):
        label = "ABCD"[position]
        assert f'Answer {label}:\n"""\n{advice_of(name)}\n"""' in user["content"]
    for text in ("effectiveness", "musicality", "actionability", "helpfulness", '"ranking"'):
        assert text in system["content"]
    assert "the drums" in user["content"] and "4.0 dB louder" in user["content"]


def test_parse_ranking_accepts_a_full_ranking_and_names_what_is_wrong():
    good = json.dumps({"ranking": ["C", "A", "B"], "reason": "C names the fader."})
    assert parse_ranking(good, "ABC") == (["C", "A", "B"], "C names the fader.")
    assert parse_ranking(f"```json\n{good}\n```", "ABC")[0] == ["C", "A", "B"]
    for answer, reason in (
        (json.dumps({"ranking": ["C", "A"], "reason": "x"}), r"leaves out labels \['B'\]"),
        (json.dumps({"ranking": ["C", "A", "A"], "reason": "x"}), r"repeats labels \['A'\]"),
        (json.dumps({"ranking": ["C", "A", "B", "D"], "reason": "x"}), r"unknown labels \['D'\]"),
        (json.dumps({"ranking": "CAB", "reason": "x"}), "must be a list"),
        (json.dumps({"ranking": ["C", "A", "B"]}), r"missing keys \['reason'\]"),
        (json.dumps({"ranking": ["C", "A", "B"], "reason": 3}), "reason must be a string"),
        ("C > A > B", "not valid JSON"),
    ):
        with pytest.raises(JudgeOutputError, match=reason):
            parse_ranking(answer, "ABC")


# --------------------------------------------------------------------------- local test server


def test_a_good_ranking_is_mapped_back_to_the_systems_and_cached(tmp_path):
    examples = [f"ex{i}" for i in range(6)]
    with fake.FakeJudgeServer(delay_s=0.3, responder=by_quality) as server:
        judge = judge_for(server, cache_dir=tmp_path)
        ranks = rank_advice(table(examples), judge, seed=3)
        assert server.requests == 6 and server.peak_in_flight > 1
        again = rank_advice(table(examples), judge_for(server, cache_dir=tmp_path), seed=3)
        assert server.requests == 6  # every ranking came from the cache
    assert list(ranks.columns) == list(LISTWISE_COLUMNS)
    assert ranks["listwise_ok"].all() and not ranks["listwise_cached"].any()
    assert again["listwise_cached"].all()
    for system, quality in QUALITY.items():
        assert set(ranks.loc[ranks["system"] == system, "listwise_rank"]) == {5 - quality}
    assert (ranks["n_ranked"] == 4).all() and set(ranks["shown_as"]) == set("ABCD")
    assert ranks.groupby("example_id")["shown_as"].agg("".join).nunique() > 1  # shuffled
    assert ranks["listwise_reason"].eq("highest q first").all()
    assert ranks["condition"].eq("as_mixed").all()
    status = listwise_status(ranks, judge)
    assert status["ranked"] == 6 and status["missing"] == 0 and status["conditions"] == ["as_mixed"]


@pytest.mark.parametrize(
    "answer, reason",
    [
        (lambda labels: {"ranking": labels[:-1], "reason": "x"}, "leaves out labels"),
        (lambda labels: {"ranking": labels[:-1] + labels[:1], "reason": "x"}, "repeats labels"),
        (lambda labels: {"ranking": ["advisor", *labels[1:]], "reason": "x"}, "unknown labels"),
        (lambda labels: "advisor is best, then the rule", "not valid JSON"),
    ],
    ids=["missing", "repeated", "named by system", "malformed"],
)
def test_an_incomplete_or_malformed_ranking_gives_no_rank_at_all(answer, reason):
    def responder(messages):
        labels = sorted(fake.prompt_answers(messages))
        content = answer(labels)
        return fake.Reply(content if isinstance(content, str) else json.dumps(content))

    with fake.FakeJudgeServer(delay_s=0.0, responder=responder) as server:
        ranks = rank_advice(table(), judge_for(server))
    assert ranks["listwise_rank"].isna().all() and ranks["n_ranked"].isna().all()
    assert not ranks["listwise_ok"].any()
    assert ranks["listwise_error"].str.startswith("invalid judge output").all()
    assert ranks["listwise_error"].str.contains(reason).all()


def test_timeouts_and_server_errors_leave_ranks_missing_retries_recover():
    attempts = {"slow": 0, "flaky": 0}

    def responder(messages):
        example = "slow" if "[slow" in messages[-1]["content"] else "flaky"
        attempts[example] += 1
        if example == "slow":
            return fake.Reply("{}", delay_s=1.5)  # longer than the client waits
        if attempts["flaky"] == 1:
            return fake.Reply('{"error": "busy"}', status=503, headers={"Retry-After": "0"})
        return by_quality(messages)

    slow = table(["slow"], advice=lambda s, e: f"[slow q={QUALITY[s]}] {s}")
    flaky = table(["flaky"], advice=lambda s, e: f"[flaky q={QUALITY[s]}] {s}")
    with fake.FakeJudgeServer(delay_s=0.0, responder=responder) as server:
        judge = judge_for(server, timeout_s=0.3, max_retries=1)
        ranks = rank_advice(pd.concat([slow, flaky]), judge)
    timed_out = ranks[ranks["example_id"] == "slow"]
    assert timed_out["listwise_rank"].isna().all()
    assert timed_out["listwise_error"].str.contains("timed out after 0.3 s").all()
    recovered = ranks[ranks["example_id"] == "flaky"].set_index("system")["listwise_rank"]
    assert recovered.to_dict() == {s: 5 - q for s, q in QUALITY.items()}
    assert attempts == {"slow": 2, "flaky": 2}  # each retried once, as configured


def test_missing_advice_is_not_shown_and_one_answer_is_not_ranked():
    def sparse(system, example):
        if example == "alone":  # only the advisor answered
            return advice_of(system, example) if system == "advisor" else None
        return None if system == "generic_base" else advice_of(system, example)

    with fake.FakeJudgeServer(delay_s=0.0, responder=by_quality) as server:
        ranks = rank_advice(table(["ex1", "alone"], advice=sparse), judge_for(server))
        prompts = server.requests
    first = ranks[ranks["example_id"] == "ex1"].set_index("system")
    assert first.loc["generic_base", "listwise_error"] == "no advice to rank"
    assert pd.isna(first.loc["generic_base", "listwise_rank"]) and pd.isna(
        first.loc["generic_base", "shown_as"]
    )
    assert first["listwise_rank"].dropna().astype(int).to_dict() == {
        "advisor": 1,
        "dsp_baseline": 2,
        "no_anchor": 3,
    }
    assert (first["n_ranked"].dropna() == 3).all()
    alone = ranks[ranks["example_id"] == "alone"].set_index("system")
    assert alone.loc["advisor", "listwise_error"] == "fewer than two answers to rank"
    assert alone["listwise_rank"].isna().all() and prompts == 1  # only ex1 was sent


def test_conditions_choose_what_is_ranked_and_no_judge_invents_nothing(caplog):
    two = pd.concat([table().assign(condition="as_mixed"), table().assign(condition="gain_staged")])
    with fake.FakeJudgeServer(delay_s=0.0, responder=by_quality) as server:
        default = rank_advice(two, judge_for(server))
        both = rank_advice(two, judge_for(server), conditions=None)
        with pytest.raises(
            ValueError, match=r"\['quiet'\] are not in the evaluation table.*as_mixed"
        ):
            rank_advice(two, judge_for(server), conditions=["quiet"])
    assert set(default["condition"]) == {"as_mixed"} and len(default) == 4
    assert set(both["condition"]) == {"as_mixed", "gain_staged"} and both["listwise_ok"].all()
    with pytest.raises(ValueError, match=r"repeated \(example, condition, system\).*'ex1'"):
        rank_advice(pd.concat([table(), table()]), None)
    none = rank_advice(table(), None)
    assert none["listwise_rank"].isna().all() and set(none["listwise_error"]) == {
        "no judge configured"
    }
    assert "No LLM judge is configured" in caplog.text


# --------------------------------------------------------------------------- summaries


def ranks_frame(rows) -> pd.DataFrame:
    """Rank rows ``(example, song, system, rank)`` in the rank table's shape."""
    frame = pd.DataFrame(rows, columns=["example_id", "song", "system", "listwise_rank"])
    frame["condition"] = "as_mixed"
    frame["listwise_rank"] = frame["listwise_rank"].astype("Int64")
    frame["n_ranked"] = (
        frame.groupby("example_id")["listwise_rank"].transform("count").astype("Int64")
    )
    return frame


def test_mean_rank_first_places_and_win_rates_per_system():
    rows = []
    for k in range(6):  # advisor first in 4 of 6 examples, the rule first otherwise
        order = (
            ("advisor", "dsp_baseline", "generic_base")
            if k < 4
            else ("dsp_baseline", "advisor", "generic_base")
        )
        rows += [(f"e{k}", f"s{k % 3}", system, rank) for rank, system in enumerate(order, 1)]
    rows.append(("e6", "s0", "advisor", None))  # a failed ranking: left out
    summary = rank_summary(ranks_frame(rows), n_resamples=200).set_index(["system", "metric"])
    mean_rank = summary.loc[("advisor", "listwise_mean_rank")]
    assert mean_rank["estimate"] == pytest.approx((4 * 1 + 2 * 2) / 6) and mean_rank["n"] == 6
    assert mean_rank["better"] == "lower" and "best of 3" in mean_rank["label"]
    assert set(summary["condition"]) == {"as_mixed"}
    assert summary.loc[("dsp_baseline", "listwise_first_place"), "estimate"] == pytest.approx(2 / 6)
    assert summary.loc[("generic_base", "listwise_mean_rank"), "ci_low"] == 3.0  # always last
    wins = win_rates(ranks_frame(rows), n_resamples=200).set_index(["system", "opponent"])
    assert wins.loc[("advisor", "dsp_baseline"), "win_rate"] == pytest.approx(4 / 6)
    assert wins.loc[("dsp_baseline", "advisor"), "win_rate"] == pytest.approx(2 / 6)
    assert wins.loc[("advisor", "generic_base"), ["wins", "n", "songs"]].tolist() == [6, 6, 3]
    markdown = win_rate_markdown(wins.reset_index(), ["advisor", "dsp_baseline", "generic_base"])
    assert "| advisor | - | 0.67 [" in markdown and "(n=6)" in markdown


def test_win_rate_intervals_resample_songs_not_examples():
    # Song a: the advisor wins all 20 examples; song b: it loses all 20. Per example the
    # interval would be narrow around 0.5; resampling the two songs it spans 0 to 1.
    rows = []
    for k in range(40):
        song, advisor_first = ("a", True) if k < 20 else ("b", False)
        ranks = (1, 2) if advisor_first else (2, 1)
        rows += [(f"e{k}", song, "advisor", ranks[0]), (f"e{k}", song, "no_anchor", ranks[1])]
    wins = win_rates(ranks_frame(rows), n_resamples=500).set_index(["system", "opponent"])
    advisor = wins.loc[("advisor", "no_anchor")]
    assert advisor["win_rate"] == pytest.approx(0.5) and advisor["songs"] == 2
    assert advisor["ci_low"] == 0.0 and advisor["ci_high"] == 1.0


def test_listwise_rank_is_correlated_with_the_engineers_ratings():
    metrics = table([f"ex{i}" for i in range(8)])[["example_id", "system", "advice"]]
    rows = []
    for i in range(8):  # the judge ranks by quality; engineers rate quality, with noise
        for system, quality in QUALITY.items():
            rows.append((f"ex{i}", f"s{i}", system, 5 - quality))
    ranks = ranks_frame(rows)
    human = metrics[["example_id", "system"]].copy()
    for column in (
        "human_effectiveness",
        "human_musicality",
        "human_actionability",
        "human_helpfulness",
        "human_mean",
    ):
        human[column] = [QUALITY[s] + (i % 3) * 0.5 for i, s in enumerate(human["system"])]
    joined = with_listwise_ranks(metrics, ranks)
    assert joined.set_index(["example_id", "system"]).loc[("ex0", "advisor"), "listwise_rank"] == 1
    table_ = correlate_metrics(
        metrics, human, {"min_pairs": 5}, {"bootstrap": {"n_resamples": 200}}, ranks
    )
    pooled = table_[(table_["comparison"] == "human_vs_automated") & (table_["system"] == "all")]
    rows_ = pooled[pooled["y"] == "listwise_rank"].set_index("x")
    assert set(rows_.index) == {
        "human_effectiveness", "human_musicality", "human_actionability", "human_helpfulness", "human_mean"
    }  # fmt: skip
    assert (rows_["spearman_rho"] < -0.8).all() and rows_["n"].eq(32).all()


def test_switched_off_the_listwise_judge_makes_no_rows_and_nothing_downstream_breaks():
    from anchormix_kedro.pipelines.automated_eval.nodes import (
        compare_systems_listwise,
        rank_advice_listwise,
        summarize_systems,
    )

    with fake.FakeJudgeServer(delay_s=0.0, responder=by_quality) as server:
        judge = {"backend": "openai", "base_url": server.url, "model": "m"}
        ranks, status = rank_advice_listwise(table(), {"enabled": False}, judge, {})
        assert server.requests == 0
    assert ranks.empty and list(ranks.columns) == list(LISTWISE_COLUMNS)
    assert status["enabled"] is False and status["ranked"] == 0
    common = {"bootstrap": {"n_resamples": 50}}
    assert compare_systems_listwise(ranks, common).empty
    metrics = table()[["example_id", "system"]].assign(latency_s=1.0)
    summary = summarize_systems(metrics, common, ranks)
    assert not summary["metric"].str.startswith("listwise").any()
    correlations = correlate_metrics(metrics, pd.DataFrame(), {"min_pairs": 3}, common, ranks)
    assert not (correlations["x"] == "listwise_rank").any()
