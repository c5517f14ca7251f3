"""Automated evaluation on hand-worked examples: joining, truth and convention metrics, text
metrics and the judge per example, bootstrap intervals, summaries and the ablation table."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.datasets.optional_partitioned_dataset import OptionalPartitionedDataset
from anchormix_kedro.datasets.project_credentials_dataset import ProjectCredentialsDataset
from anchormix_kedro.evaluation.convention_following import (
    convention_following,
    convention_markdown,
)
from anchormix_kedro.evaluation.judge import LLMJudge
from anchormix_kedro.evaluation.metric_table import (
    JUDGE_SCORE_COLUMNS,
    TEXT_SCORE_COLUMNS,
    convention_columns,
    join_advice,
    judge_columns,
    text_metric_columns,
    truth_columns,
)
from anchormix_kedro.evaluation.statistics import (
    balanced_f1,
    bootstrap_balanced_f1,
    bootstrap_mean,
)
from anchormix_kedro.evaluation.summaries import (
    ablation_frame,
    ablation_markdown,
    summarize,
    summary_metrics_for_mlflow,
)
from anchormix_kedro.pipelines.automated_eval.nodes import judge_advice

LOUD = "Relative to the drums, the vocal is about 4 dB too loud: pull the vocal fader down by about 4 dB."


def example(example_id: str, label: str, gain_db: float, **overrides) -> dict:
    row = {
        "example_id": example_id,
        "excerpt_id": "song_a",
        "song": "Song A",
        "split": "test",
        "genre": "Rap",
        "anchor": "drums",
        "target": "vocals",
        "label": label,
        "gain_db": gain_db,
        "reference_relative_db": 2.0,
        "perturbed_relative_db": 2.0 + gain_db,
        "advice": LOUD,
    }
    return row | overrides


@pytest.fixture
def dataset() -> pd.DataFrame:
    return pd.DataFrame(
        [
            example("loud4", "too_loud", 4.0),
            example("flat", "balanced", 0.0, advice="The vocal sits right against the drums."),
            example("soft6", "too_soft", -6.0, split="train", genre="Pop"),
        ]
    )


CONVENTIONS = pd.DataFrame(
    [
        # Rap: vocals sit 1 dB above the drums (IQR 0..3); pooled: 0 dB.
        {"genre": "Rap", "anchor": "drums", "target": "vocals", "n_songs": 5,
         "median_db": 1.0, "q25_db": 0.0, "q75_db": 3.0, "std_db": 1.0},
        {"genre": "Pop", "anchor": "drums", "target": "vocals", "n_songs": 1,
         "median_db": 9.0, "q25_db": 9.0, "q75_db": 9.0, "std_db": 0.0},
        {"genre": "all", "anchor": "drums", "target": "vocals", "n_songs": 6,
         "median_db": 0.0, "q25_db": -1.0, "q75_db": 2.0, "std_db": 2.0},
    ]
)  # fmt: skip


def advice(*rows: tuple[str, str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["example_id", "system", "advice"])


# --------------------------------------------------------------------------- joining


def test_join_keeps_the_split_orders_systems_and_keeps_missing_advice(dataset):
    given = advice(
        ("loud4", "zeta", "x"),
        ("loud4", "dsp_baseline", None),
        ("loud4", "advisor", ""),
        ("soft6", "advisor", "raise it"),
    )
    joined = join_advice(given, dataset, split="test")
    assert list(joined["system"]) == ["advisor", "zeta", "dsp_baseline"]  # variants, then baselines
    assert pd.isna(joined.loc[2, "advice"]) and joined.loc[0, "advice"] == ""
    assert joined["latency_s"].isna().all()
    assert joined.loc[0, "reference_advice"] == LOUD
    assert len(join_advice(given, dataset, split=None)) == 4


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("nope", "advisor", "x")], r"1 example ids that the instruction dataset lacks.*nope"),
        (
            [("loud4", "advisor", "x"), ("loud4", "advisor", "y")],
            r"repeated \(example_id, condition, system\).*loud4",
        ),
    ],
)
def test_join_rejects_unknown_examples_and_duplicates(dataset, rows, message):
    with pytest.raises(ValueError, match=message):
        join_advice(advice(*rows), dataset)


def test_join_names_missing_columns_and_an_empty_split(dataset):
    with pytest.raises(ValueError, match=r"lacks columns \['system'\]"):
        join_advice(pd.DataFrame({"example_id": ["loud4"], "advice": ["x"]}), dataset)
    with pytest.raises(ValueError, match=r"no advice for examples of split \['valid'\]"):
        join_advice(advice(("loud4", "a", "x")), dataset, split="valid")


# --------------------------------------------------------------------------- per-example metrics


def test_truth_and_convention_metrics_worked_by_hand(dataset):
    joined = join_advice(
        advice(
            ("loud4", "a", "The vocal is too loud: pull the vocal down 3 dB."),
            ("loud4", "b", "Turn the vocal up 2 dB."),
            ("loud4", "c", "Nice weather today."),
            ("flat", "a", "Perfectly balanced, leave it."),
        ),
        dataset,
    )
    truth = truth_columns(joined)
    by_system = dict(
        zip(joined["system"] + joined["example_id"], truth.to_dict("records"), strict=True)
    )
    right = by_system["aloud4"]
    # +4 dB applied; the advice moves -3 dB: 1 dB off, and 1 dB short on the amount.
    assert right["direction_correct"] and right["fader_move_error_db"] == pytest.approx(1.0)
    assert right["amount_error_db"] == pytest.approx(1.0) and right["advised_move_db"] == -3.0
    wrong = by_system["bloud4"]
    # +2 dB against a true -4 dB move: 6 dB off; no amount error for a wrong direction.
    assert not wrong["direction_correct"] and wrong["fader_move_error_db"] == pytest.approx(6.0)
    assert pd.isna(wrong["amount_error_db"])
    unreadable = by_system["cloud4"]
    assert not unreadable["parsed"] and pd.isna(unreadable["direction_correct"])
    assert (
        by_system["aflat"]["balanced_outcome"] == "tp"
        and by_system["aflat"]["advised_move_db"] == 0
    )

    conventions = convention_columns(joined, list(truth["advised_move_db"]), CONVENTIONS)
    conventions.index = joined["system"] + joined["example_id"]
    row = conventions.loc["aloud4"].to_dict()  # level 6 dB, Rap convention 1 dB
    assert row["level_before_db"] == 6.0 and row["level_after_db"] == 3.0
    assert (
        row["convention_distance_before_db"] == 5.0 and row["convention_distance_after_db"] == 2.0
    )
    assert row["convention_gain_db"] == 3.0 and row["within_convention_iqr_after"]
    assert row["reference_convention_distance_db"] == 1.0
    assert conventions.loc["bloud4", "convention_gain_db"] == -2.0  # up 2 dB: further away
    assert pd.isna(conventions.loc["cloud4", "level_after_db"])  # no move stated


def test_genre_with_too_few_songs_falls_back_to_all_genres(dataset):
    joined = join_advice(advice(("soft6", "a", "Raise the vocal 6 dB.")), dataset, None)
    truth = truth_columns(joined)
    columns = convention_columns(joined, list(truth["advised_move_db"]), CONVENTIONS)
    assert columns.loc[0, "convention_genre"] == "all"
    assert columns.loc[0, "convention_distance_after_db"] == pytest.approx(2.0)  # -4 + 6 = 2


def test_text_metrics_of_identical_empty_and_missing_advice(dataset):
    joined = join_advice(
        advice(("loud4", "same", LOUD), ("loud4", "empty", ""), ("loud4", "none", None)), dataset
    )
    scores = text_metric_columns(joined, use_wordnet=False)
    same, empty, missing = (
        scores[joined["system"] == s].iloc[0] for s in ("same", "empty", "none")
    )
    assert same["rouge_l"] == pytest.approx(1.0) and same["bertscore_f1"] == pytest.approx(
        1.0, abs=1e-4
    )
    assert same["meteor"] == pytest.approx(1.0, abs=1e-3)
    assert empty["rouge_l"] == 0.0 and empty["bertscore_f1"] == 0.0
    assert missing[list(TEXT_SCORE_COLUMNS)].isna().all()
    assert scores.attrs["variants"]["meteor"] == "exact+stem"


class ScriptedBackend:
    """A judge backend answering from a list: JSON, garbage, or an exception."""

    kind, model = "scripted", "scripted-1"

    def __init__(self, answers):
        self.answers = list(answers)
        self.prompts = []

    def complete(self, messages):
        self.prompts.append(messages)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def redact(self, text):
        return text


def test_judge_scores_are_kept_or_missing_never_invented(dataset, caplog):
    joined = join_advice(
        advice(("loud4", "a", LOUD), ("loud4", "b", "too loud"), ("loud4", "c", "x")), dataset
    )
    good = {"effectiveness": 6, "musicality": 5, "actionability": 7, "helpfulness": 6,
            "rationale": "ok"}  # fmt: skip
    backend = ScriptedBackend([json.dumps(good), "not json", RuntimeError("boom")])
    scores = judge_columns(joined, LLMJudge(backend))
    assert list(scores["judge_effectiveness"].astype("Float64")[:1]) == [6]
    assert scores.loc[0, "judge_mean"] == pytest.approx(6.0)
    assert scores.loc[1:, list(JUDGE_SCORE_COLUMNS)].isna().all().all()
    assert "invalid judge output" in scores.loc[1, "judge_error"]
    assert "call failed" in scores.loc[2, "judge_error"]
    # Every system's advice is judged against the same scenario, the anchor included.
    assert all("Anchor stem: the drums" in prompt[1]["content"] for prompt in backend.prompts)

    with caplog.at_level(logging.WARNING):
        none = judge_columns(joined, None)
    assert none["judge_mean"].isna().all() and "No LLM judge is configured" in caplog.text


def test_judge_node_takes_the_key_named_in_parameters_and_never_shows_it(dataset, caplog):
    joined = join_advice(advice(("loud4", "a", LOUD)), dataset)
    secret = "sk-never-shown-0123456789"
    config = {
        "backend": "openai",
        "base_url": "http://127.0.0.1:9/v1",  # nothing listens there: the call fails fast
        "model": "judge-model",
        "credentials": "judge_llm",
        "max_retries": 0,
        "timeout_s": 2,
    }
    with caplog.at_level(logging.DEBUG):
        scores, status = judge_advice(joined, config, {"judge_llm": {"api_key": secret}})
    assert status["configured"] and status["missing"] == 1 and status["scored"] == 0
    assert scores["judge_effectiveness"].isna().all()
    assert secret not in caplog.text + json.dumps(status) + scores.to_json()

    scores, status = judge_advice(joined, {"backend": "none", "credentials": "judge_llm"}, {})
    assert not status["configured"] and "No LLM judge" in status["message"]


def test_project_credentials_dataset_reads_base_and_local_and_hides_values(tmp_path):
    (tmp_path / "conf" / "base").mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    dataset = ProjectCredentialsDataset(conf_source=str(tmp_path / "conf"))
    assert dataset.load() == {}
    (tmp_path / "conf" / "local" / "credentials.yml").write_text("judge_llm:\n  api_key: sk-x\n")
    assert dataset.load() == {"judge_llm": {"api_key": "sk-x"}}
    assert "sk-x" not in repr(dataset)
    assert ProjectCredentialsDataset(conf_source=str(tmp_path / "missing")).load() == {}
    with pytest.raises(Exception, match="read-only"):
        dataset.save({"a": 1})


def test_optional_partitioned_dataset_loads_nothing_from_a_missing_or_empty_folder(tmp_path):
    def folder_dataset(path):
        return OptionalPartitionedDataset(
            path=str(path), dataset="pandas.CSVDataset", filename_suffix=".csv", ids_as_paths=True
        )

    assert folder_dataset(tmp_path / "absent").load() == {}
    (tmp_path / "ratings").mkdir()
    (tmp_path / "ratings" / "README.txt").write_text("not a ratings file")
    assert folder_dataset(tmp_path / "ratings").load() == {}
    (tmp_path / "ratings" / "ann.csv").write_text("a,b\n1,2\n")
    loaded = folder_dataset(tmp_path / "ratings").load()
    assert [name.endswith("ratings/ann.csv") for name in loaded] == [True]
    assert list(next(iter(loaded.values()))()["b"]) == [2]


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_mean_is_seeded_and_covers_the_mean():
    values = np.random.default_rng(3).normal(10.0, 2.0, 400)
    estimate, low, high = bootstrap_mean(values, 2000, 0.95, np.random.default_rng(1))
    assert estimate == pytest.approx(values.mean())
    # The standard error is 2 / sqrt(400) = 0.1: the 95% interval is about +-0.2.
    assert low < 10.0 < high and high - low == pytest.approx(0.39, abs=0.06)
    again = bootstrap_mean(values, 2000, 0.95, np.random.default_rng(1))
    assert again == (estimate, low, high)
    assert bootstrap_mean([5.0, 5.0, np.nan]) == (5.0, 5.0, 5.0)
    assert all(np.isnan(bootstrap_mean([np.nan])))


def test_balanced_f1_worked_by_hand():
    # tp 2, fp 1, fn 1: F1 = 2*2 / (2*2 + 1 + 1) = 2/3; tn and unparsed do not count.
    outcomes = ["tp", "tp", "fp", "fn", "tn", None]
    assert balanced_f1(outcomes) == pytest.approx(2 / 3)
    estimate, low, high = bootstrap_balanced_f1(outcomes, 500)
    assert estimate == pytest.approx(2 / 3) and 0.0 <= low <= high <= 1.0
    assert np.isnan(balanced_f1(["tn", "tn"]))


def _metric_table(systems: dict[str, list[float]]) -> pd.DataFrame:
    rows = []
    for system, values in systems.items():
        for i, value in enumerate(values):
            rows.append(
                {
                    "system": system,
                    "example_id": f"e{i}",
                    "rouge_l": value,
                    "direction_correct_score": float(value > 0.5),
                    "balanced_outcome": "tp" if value > 0.5 else "fn",
                }  # fmt: skip
            )
    return pd.DataFrame(rows)


def test_summary_intervals_do_not_depend_on_other_systems():
    rng = np.random.default_rng(0)
    two = {"advisor": list(rng.random(30)), "dsp_baseline": list(rng.random(30))}
    alone = summarize(_metric_table({"advisor": two["advisor"]}), seed=4)
    both = summarize(_metric_table(two), seed=4)
    pick = ["estimate", "ci_low", "ci_high"]
    assert (
        alone.query("metric == 'rouge_l'")[pick].to_numpy().tolist()
        == both.query("system == 'advisor' and metric == 'rouge_l'")[pick].to_numpy().tolist()
    )
    assert set(both["metric"]) == {"rouge_l", "direction_accuracy", "balanced_f1"}
    with pytest.raises(ValueError, match="confidence"):
        summarize(_metric_table(two), confidence=95)


def test_ablation_markdown_bolds_the_best_and_names_absent_systems():
    table = _metric_table({"no_anchor": [0.2, 0.4, 0.3], "advisor": [0.9, 0.8, 0.7]})
    summary = summarize(table, n_resamples=100)
    declared = ["advisor", "no_anchor", "generic_base", "dsp_baseline"]
    markdown = ablation_markdown(summary, expected_systems=declared, notes=["A note."])
    assert markdown.index("advisor") < markdown.index("no_anchor")  # the ablation's order
    assert "| ROUGE-L F1 | **0.800 [" in markdown
    assert "Systems without advice in this run: generic_base, dsp_baseline." in markdown
    assert markdown.rstrip().endswith("A note.")
    frame = ablation_frame(summary)
    assert list(frame.columns) == ["metric", "label", "advisor", "no_anchor"]
    mlflow_metrics = summary_metrics_for_mlflow(summary)
    assert mlflow_metrics["as_mixed/advisor.rouge_l.estimate"]["value"] == pytest.approx(0.8)


def test_ablation_markdown_sets_conditions_side_by_side_with_songs_and_comparisons():
    as_mixed = _metric_table({"advisor": [0.9, 0.8, 0.7], "no_anchor": [0.2, 0.4, 0.3]})
    staged = _metric_table({"advisor": [0.5, 0.5, 0.5], "no_anchor": [0.1, 0.1, 0.1]})
    table = pd.concat(
        [as_mixed.assign(condition="as_mixed"), staged.assign(condition="gain_staged")],
        ignore_index=True,
    )
    table["song"] = [f"s{i % 2}" for i in range(len(table))]
    summary = summarize(table, n_resamples=100, cluster_column="song")
    assert list(dict.fromkeys(summary["condition"])) == ["as_mixed", "gain_staged"]
    rouge = summary[summary["metric"] == "rouge_l"].set_index(["condition", "system"])
    assert rouge.loc[("gain_staged", "advisor"), "estimate"] == pytest.approx(0.5)
    assert rouge.loc[("as_mixed", "advisor"), "n_songs"] == 2
    markdown = ablation_markdown(
        summary, ["advisor", "no_anchor"], sections={"gain_staged": "COMPARED-STAGED"}
    )
    assert markdown.index("## Conditions side by side") < markdown.index("## Condition `as_mixed`")
    assert markdown.index("## Condition `as_mixed`") < markdown.index("## Condition `gain_staged`")
    assert markdown.index("## Condition `gain_staged`") < markdown.index("COMPARED-STAGED")
    assert "advisor 3 (2 songs)" in markdown
    mlflow_metrics = summary_metrics_for_mlflow(summary)
    assert mlflow_metrics["gain_staged/no_anchor.rouge_l.estimate"]["value"] == pytest.approx(0.1)
    assert mlflow_metrics["gain_staged/no_anchor.rouge_l.n_songs"]["value"] == 2


def test_convention_following_table_per_system_and_genre():
    table = pd.DataFrame(
        {
            "system": ["a", "a", "a"],
            "genre": ["Rap", "Rap", "Pop"],
            "convention_median_db": [1.0, 1.0, 2.0],
            "convention_distance_before_db": [5.0, 3.0, 4.0],
            "convention_distance_after_db": [2.0, np.nan, 6.0],
            "convention_gain_db": [3.0, np.nan, -2.0],
            "within_convention_iqr_after": [True, None, False],
            "reference_convention_distance_db": [1.0, 1.0, 0.5],
        }
    )
    frame = convention_following(table, n_resamples=50).set_index("genre")
    assert frame.loc["Rap", "n"] == 2 and frame.loc["Rap", "n_with_move"] == 1
    assert frame.loc["Rap", "distance_before_db"] == 4.0
    assert frame.loc["Rap", "gain_toward_convention_db"] == 3.0
    assert frame.loc["all", "share_moved_toward"] == 0.5
    assert frame.loc["all", "share_within_iqr_after"] == 0.5
    assert "| a | Rap | 2 | 4.00 |" in convention_markdown(frame.reset_index())
