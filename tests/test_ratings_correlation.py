"""Ratings files (good and bad), Krippendorff's alpha, correlations on constructed data, and
the correlation nodes without and with ratings."""

from __future__ import annotations

import csv as csv_module
import io
import logging
import math
import re

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.evaluation.correlation import correlate, correlation_table, plot_heatmap
from anchormix_kedro.evaluation.summaries import summarize
from anchormix_kedro.pipelines.correlation import nodes
from anchormix_kedro.study.agreement import krippendorff_alpha, rater_agreement
from anchormix_kedro.study.answers import ratings_for_analysis
from anchormix_kedro.study.kit.page_csv import (
    FORMULA_STARTS,
    neutralise_cell,
    restore_cell,
    restore_spreadsheet_text,
    spreadsheet_safe,
)
from anchormix_kedro.study.material import BuiltStudy
from anchormix_kedro.study.ratings import (
    RatingsError,
    merge_ratings,
    read_ratings_csv,
    scenario_scores,
    validate_ratings,
)

HEADER = "rater,scenario_id,effectiveness,musicality,actionability,helpfulness,comment\n"
KNOWN = {"s-1", "s-2", "s-3"}


def csv(text: str) -> pd.DataFrame:
    return read_ratings_csv(io.StringIO(text), "ann.csv")


# --------------------------------------------------------------------------- ratings files


def test_a_good_file_is_typed_and_comments_survive():
    text = HEADER + 'ann,s-1,7,6,5,4,"fine, ""really"""\nann,s-2,1,2,3,4,\n'
    ratings = validate_ratings(csv(text), "ann.csv", KNOWN, study_id="st")
    assert (
        list(ratings["effectiveness"]) == [7, 1] and str(ratings["effectiveness"].dtype) == "Int64"
    )
    assert list(ratings["comment"]) == ['fine, "really"', ""]
    assert list(ratings["row"]) == [1, 2] and set(ratings["study_id"]) == {"st"}
    # A byte-order mark (as spreadsheet programs write) is fine.
    assert (
        len(validate_ratings(read_ratings_csv(io.BytesIO(("\ufeff" + text).encode())), "b", KNOWN))
        == 2
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "ann,s-1,8,6,5,4,\n",
            r"row 1 \(scenario s-1\): effectiveness = '8' is not a whole number from 1 to 7",
        ),
        ("ann,s-1,0,6,5,4,\n", r"effectiveness = '0' is not a whole number from 1 to 7"),
        ("ann,s-1,4.5,6,5,4,\n", r"effectiveness = '4.5' is not a whole number"),
        ("ann,s-1,good,6,5,4,\n", r"effectiveness = 'good' is not a whole number"),
        ("ann,s-1,5,,5,4,\n", r"row 1 \(scenario s-1\): musicality is empty"),
        (
            "ann,s-9,5,5,5,4,\n",
            r"row 1 \(scenario s-9\): unknown scenario id 's-9' \(not in the study key\)",
        ),
        ("ann,,5,5,5,4,\n", r"row 1: scenario_id is empty"),
        (",s-1,5,5,5,4,\n", r"row 1 \(scenario s-1\): rater is empty"),
        (
            "ann,s-1,5,5,5,4,\nann,s-2,5,5,5,5,\nann,s-1,1,1,1,1,\n",
            r"rows 1, 3: rater 'ann' rated scenario s-1 2 times",
        ),
    ],
)
def test_bad_values_are_rejected_naming_file_row_and_value(body, message):
    with pytest.raises(RatingsError, match=r"ratings file 'ann\.csv': 1 problem:\n") as error:
        validate_ratings(csv(HEADER + body), "ann.csv", KNOWN)
    assert re.search(message, str(error.value)), str(error.value)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "rater,scenario_id,effectiveness,musicality,actionability\n",
            r"missing columns \['helpfulness'\]",
        ),
        (
            "rater,scenario,effectiveness,musicality,actionability,helpfulness\n",
            r"missing columns \['scenario_id'\]; unknown columns \['scenario'\]",
        ),
        (HEADER.strip() + ",mood\n", r"unknown columns \['mood'\]"),
    ],
)
def test_wrong_columns_are_rejected_with_the_expected_ones(header, message):
    with pytest.raises(RatingsError, match=message) as error:
        validate_ratings(csv(header + "ann,s-1,5,5,5,5,5\n"), "ann.csv", KNOWN)
    assert "Expected columns: rater, scenario_id, effectiveness" in str(error.value)


def test_empty_files_other_studies_and_every_problem_at_once():
    with pytest.raises(RatingsError, match="'ann.csv' is empty"):
        read_ratings_csv(io.StringIO(""), "ann.csv")
    with pytest.raises(RatingsError, match="holds a header but no ratings"):
        validate_ratings(csv(HEADER), "ann.csv", KNOWN)
    with pytest.raises(RatingsError, match=r"study_id 'other' is not this study \('st'\)"):
        validate_ratings(csv("study_id," + HEADER + "other,ann,s-1,5,5,5,5,\n"), "a", KNOWN, "st")
    body = "".join(f"ann,s-{i},9,5,5,5,\n" for i in range(1, 4)) + "bob,s-7,,5,5,5,\n"
    with pytest.raises(RatingsError, match=r"5 problems:") as error:
        validate_ratings(csv(HEADER + body), "ann.csv", KNOWN)
    assert str(error.value).count("\n  - ") == 5


def test_several_raters_merge_and_duplicates_across_files_are_named():
    files = {
        "ann.csv": csv(HEADER + "ann,s-1,5,5,5,5,\nann,s-2,6,6,6,6,\n"),
        "bob.csv": csv(HEADER + "bob,s-1,4,4,4,4,\n"),
        "ann_day2.csv": csv(HEADER + "ann,s-3,2,2,2,2,\n"),
    }
    merged = merge_ratings(files, KNOWN)
    assert len(merged) == 4 and set(merged["rater"]) == {"ann", "bob"}
    assert merge_ratings({}, KNOWN).empty
    files["ann_again.csv"] = csv(HEADER + "ann,s-2,1,1,1,1,\n")
    repeated = (
        r"rater 'ann' rated scenario s-2 in 'ann.csv' \(row 2\) and 'ann_again.csv' \(row 1\)"
    )
    with pytest.raises(RatingsError, match=repeated):
        merge_ratings(files, KNOWN)
    files["bad.csv"] = csv(HEADER + "cy,s-1,9,1,1,1,\n")
    with pytest.raises(RatingsError, match=r"(?s)'bad.csv'.*'9'"):
        merge_ratings(files, KNOWN)
    # In the pipeline, each problem is named and the good files are still used.
    problems: list[str] = []
    merged = merge_ratings(files, KNOWN, problems=problems)
    assert len(merged) == 4 and "cy" not in set(merged["rater"])
    assert merged.set_index(["rater", "scenario_id"]).loc[("ann", "s-2"), "effectiveness"] == 1
    assert len(problems) == 2 and "'bad.csv'" in problems[0] and "'9'" in problems[0]
    assert re.search(repeated, problems[1]) and "'ann_again.csv', is used" in problems[1]


PAGE_HEADER = (
    "study_id,rater,rater_role,rater_experience,consent,scenario_id,effectiveness,musicality,"
    "actionability,helpfulness,strengths,weaknesses,suggestions,workflow_fit,workflow_change\n"
)


def test_a_file_of_the_current_page_carries_rater_details_feedback_and_workflow():
    text = PAGE_HEADER + (
        'st,ann,Mixing engineer,5-10 years,yes,s-1,6,5,4,3,clear,"too ""exact""",,"early, '
        'rough balance",needs genre\n'
        'st,ann,Mixing engineer,5-10 years,yes,s-2,2,2,2,2,,,louder,"early, rough balance",needs genre\n'
    )
    ratings = validate_ratings(csv(text), "ann.csv", KNOWN, study_id="st")
    first = ratings.iloc[0]
    assert (first.rater_role, first.rater_experience, first.consent) == (
        "Mixing engineer", "5-10 years", "yes",
    )  # fmt: skip
    assert (first.strengths, first.weaknesses, first.suggestions) == ("clear", 'too "exact"', "")
    assert set(ratings["workflow_fit"]) == {"early, rough balance"}
    assert list(ratings["comment"]) == ["", ""]  # the single comment of earlier pages
    # Written feedback of any kind counts as a comment on the scenario.
    assert scenario_scores(ratings).set_index("scenario_id")["n_comments"].to_dict() == {
        "s-1": 1, "s-2": 1,
    }  # fmt: skip


def test_ratings_without_consent_are_rejected():
    text = PAGE_HEADER + "st,ann,Producer,1-3 years,,s-1,6,5,4,3,,,,,\n"
    text += "st,ann,Producer,1-3 years,no,s-2,6,5,4,3,,,,,\n"
    with pytest.raises(RatingsError, match=r"2 problems") as error:
        validate_ratings(csv(text), "ann.csv", KNOWN)
    assert "row 1 (scenario s-1): consent = ''; only ratings whose rater consented" in str(
        error.value
    )
    assert "row 2 (scenario s-2): consent = 'no'" in str(error.value)


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+44 20 7946 0000", "-3 dB is better", "@SUM(A1)", "\tindented", "\rreturn",
     "'=already quoted", "''", "'", "'+", "plain text", "", "'just an apostrophe", "a=b"],
)  # fmt: skip
def test_spreadsheet_cells_are_neutralised_and_read_back_exactly(text):
    safe = neutralise_cell(text)
    assert not safe.startswith(FORMULA_STARTS)
    assert restore_cell(safe) == text
    # Through a CSV file and the loader, whatever a rater typed comes back as typed.
    frame = pd.DataFrame(
        [{"rater": "ann", "scenario_id": "s-1", "effectiveness": 5, "musicality": 5,
          "actionability": 5, "helpfulness": 5, "comment": f"x{text}", "strengths": text}]
    )  # fmt: skip
    buffer = io.StringIO()
    # Every field quoted, as the page writes it (pandas leaves a lone carriage return bare).
    spreadsheet_safe(frame).to_csv(buffer, index=False, quoting=csv_module.QUOTE_ALL)
    loaded = validate_ratings(read_ratings_csv(io.StringIO(buffer.getvalue()), "f"), "f", KNOWN)
    assert loaded["strengths"].iloc[0] == text.strip()  # cells are stripped, as always
    assert loaded["effectiveness"].iloc[0] == 5


def test_spreadsheet_safe_frames_leave_numbers_alone_and_restore():
    frame = pd.DataFrame({"rater": ["=ann", "bob"], "score": [5, 6], "note": ["-x", None]})
    safe = spreadsheet_safe(frame)
    assert list(safe["rater"]) == ["'=ann", "bob"] and list(safe["score"]) == [5, 6]
    assert safe["note"].iloc[0] == "'-x" and pd.isna(safe["note"].iloc[1])
    assert list(frame["rater"]) == ["=ann", "bob"]  # a copy: the frame itself is unchanged
    restored = restore_spreadsheet_text(safe)
    assert list(restored["rater"]) == ["=ann", "bob"] and restored["note"].iloc[0] == "-x"


# --------------------------------------------------------------------------- agreement

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: four
# observers, twelve units, missing values; his worked results are given to three places.
KRIPPENDORFF_EXAMPLE = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_alpha_reproduces_the_published_worked_example(level, published):
    data = np.array(KRIPPENDORFF_EXAMPLE, dtype=float)
    assert krippendorff_alpha(data, level) == pytest.approx(published, abs=5e-4)


def test_krippendorff_alpha_worked_by_hand():
    # Two raters, three units: (1,1), (1,2), (2,2). Coincidences o11 = 2, o12 = o21 = 1,
    # o22 = 2; n1 = n2 = 3, n = 6. Disagreement 2 of 6 pairs against an expected
    # n1 * n2 * 2 / (n - 1) = 3.6: alpha = 1 - (n - 1) * 2 / 18 = 4/9.
    data = [[1, 1, 2], [1, 2, 2]]
    assert krippendorff_alpha(data, "nominal") == pytest.approx(4 / 9)
    assert krippendorff_alpha(data, "interval") == pytest.approx(4 / 9)
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3]], "ordinal") == pytest.approx(1.0)
    assert math.isnan(krippendorff_alpha([[4, 4], [4, 4]], "interval"))  # no variation
    assert math.isnan(krippendorff_alpha([[1, 2, 3]], "interval"))  # one rater
    with pytest.raises(ValueError, match="unknown level 'cardinal'"):
        krippendorff_alpha(data, "cardinal")


def test_rater_agreement_per_criterion_and_a_single_rater_says_why():
    agree = merge_ratings(
        {
            "a.csv": csv(HEADER + "ann,s-1,7,7,7,7,\nann,s-2,2,2,2,2,\nann,s-3,4,4,4,4,\n"),
            "b.csv": csv(HEADER + "bob,s-1,7,7,7,7,\nbob,s-2,2,2,2,2,\nbob,s-3,4,4,4,4,\n"),
        },
        KNOWN,
    )
    table = rater_agreement(agree)
    assert set(table["criterion"]) == {
        "effectiveness",
        "musicality",
        "actionability",
        "helpfulness",
        "mean",
    }
    assert (table["alpha"] == 1.0).all() and (table["n_scenarios"] == 3).all()
    alone = rater_agreement(agree[agree["rater"] == "ann"])
    assert alone["alpha"].isna().all()
    assert set(alone["note"]) == {"needs at least two raters rating the same scenarios"}
    scores = scenario_scores(agree).set_index("scenario_id")
    assert scores.loc["s-1", "human_effectiveness"] == 7.0 and scores.loc["s-1", "n_raters"] == 2


# --------------------------------------------------------------------------- correlation


def test_correlation_recovers_a_known_correlation_within_its_interval():
    rho = 0.8
    xy = np.random.default_rng(11).multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=400)
    result = correlate(xy[:, 0], xy[:, 1], n_resamples=2000, seed=1)
    assert result["n"] == 400 and result["pearson_p"] < 1e-50
    assert result["pearson_ci_low"] < rho < result["pearson_ci_high"]
    assert result["pearson_ci_high"] - result["pearson_ci_low"] < 0.12
    # For a bivariate normal, Spearman's rho is (6 / pi) * asin(rho / 2).
    spearman = 6 / math.pi * math.asin(rho / 2)
    assert result["spearman_ci_low"] < spearman < result["spearman_ci_high"]
    independent = correlate(xy[:, 0], np.random.default_rng(2).normal(size=400), seed=1)
    assert independent["pearson_ci_low"] < 0 < independent["pearson_ci_high"]
    assert independent["pearson_p"] > 0.01


def test_correlation_drops_missing_pairs_and_says_when_it_cannot():
    x = [1.0, 2.0, 3.0, np.nan, 5.0, 6.0]
    y = [2.0, 4.0, 6.0, 8.0, None, 12.0]
    result = correlate(x, y, n_resamples=200)
    assert result["n"] == 4 and result["pearson_r"] == pytest.approx(1.0)
    assert correlate([1, 2], [1, 2])["note"] == "2 pairs: at least 3 needed"
    assert (
        correlate([1, 1, 1, 1], [1, 2, 3, 4])["note"]
        == "a measure is constant: no correlation defined"
    )
    assert math.isnan(correlate([1, 2, 3, 4], [1, 2, 3, 4], min_pairs=5)["spearman_rho"])


def test_correlation_table_per_system_and_pooled_and_its_heatmap():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"system": ["a"] * 30 + ["b"] * 30, "m": rng.normal(size=60), "t": rng.normal(size=60)}
    )
    frame["h"] = frame["m"] + 0.1 * rng.normal(size=60)
    table = correlation_table(frame, ["h"], ["m", "t"], "human_vs_automated", n_resamples=100)
    assert list(table["system"].unique()) == ["a", "b", "all"]
    pooled = table[(table["system"] == "all") & (table["y"] == "m")].iloc[0]
    assert pooled["n"] == 60 and pooled["spearman_rho"] > 0.9
    figure = plot_heatmap(table, [("human_vs_automated", "Engineers"), ("nothing", "Empty")])
    assert len(figure.axes) == 3  # two panels and the colour bar


# --------------------------------------------------------------------------- the nodes


def metric_table(n: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    correct = rng.random(n) > 0.4
    return pd.DataFrame(
        {
            "example_id": [f"e{i}" for i in range(n)],
            "system": ["advisor", "dsp_baseline"] * (n // 2),
            "advice": [f"advice {i}" for i in range(n)],
            "rouge_l": np.where(correct, 0.8, 0.3) + 0.05 * rng.normal(size=n),
            "meteor": rng.random(n),
            "judge_effectiveness": pd.array([pd.NA] * n, dtype="Int64"),
            "direction_correct_score": correct.astype(float),
            "fader_move_error_db": np.where(correct, 0.5, 7.0),
            "amount_error_db": np.nan,
            "convention_distance_after_db": rng.random(n),
        }
    )


def no_answers() -> dict:
    """The study database's tables before anyone answered."""
    from anchormix_kedro.datasets.study_datasets import _no_quality_inputs

    return {"ratings": ratings_for_analysis(None), **_no_quality_inputs()}


def built(key: pd.DataFrame) -> BuiltStudy:
    """A built study holding only its key (what the correlation pipeline reads of it)."""
    return BuiltStudy("2026-01-01T00.00.00.000Z", {"study_id": "st", "scenarios": []}, key)


def test_without_ratings_only_automated_metrics_meet_the_truth_and_it_says_so(caplog):
    metrics = metric_table()
    with caplog.at_level(logging.WARNING):
        empty_study = built(pd.DataFrame({"scenario_id": [], "study_id": []}))
        merged, quality, _everyone = nodes.load_ratings(
            {}, no_answers(), no_answers(), empty_study, {}
        )
        assert quality.empty
        human = nodes.attach_human_scores(merged, empty_study, metrics)
        table = nodes.correlate_metrics(
            metrics, human, {"min_pairs": 5}, {"bootstrap": {"n_resamples": 100}}
        )
    assert merged.empty and human.empty
    assert "No human ratings exist yet" in caplog.text
    assert set(table["comparison"]) == {"automated_vs_truth"}
    assert set(table["x"]) == {"rouge_l", "meteor"}  # the judge has no value: left out
    assert set(table["y"]) == {
        "direction_correct_score",
        "fader_move_error_db",
        "convention_distance_after_db",
    }
    row = table[
        (table["system"] == "all")
        & (table["x"] == "rouge_l")
        & (table["y"] == "direction_correct_score")
    ]
    assert row["spearman_rho"].iloc[0] > 0.7
    report, mlflow_metrics = nodes.write_correlation_report(
        merged, nodes.measure_rater_agreement(merged), table, human
    )
    assert "No human ratings exist yet" in report and "Engineers' ratings vs" not in report
    assert mlflow_metrics["ratings"]["value"] == 0.0
    _, markdown = nodes.build_ablation_table(
        summarize(metrics), human, merged, {"bootstrap": {"n_resamples": 100}}
    )
    assert (
        "Engineers' ratings: none yet" in markdown and "Engineers:" not in markdown.split("\n\n")[1]
    )


def test_with_ratings_people_meet_every_metric_and_changed_advice_is_left_out(caplog):
    metrics = metric_table()
    key = pd.DataFrame(
        {
            "study_id": "st",
            "scenario_id": [f"s-{i}" for i in range(len(metrics))],
            "example_id": metrics["example_id"],
            "system": metrics["system"],
            "advice": metrics["advice"],
        }
    )
    key.loc[0, "advice"] = "what the engineers saw before the model was run again"
    quality = (1 + 6 * metrics["direction_correct_score"]).astype(int)
    files = {}
    for rater, shift in (("ann", 0), ("bob", -1)):
        lines = [
            f"{rater},{sid},{max(1, q + shift)},{q},{q},{q},\n"
            for sid, q in zip(key["scenario_id"], quality, strict=True)
        ]
        files[f"{rater}.csv"] = csv(HEADER + "".join(lines))
    merged, _quality, _everyone = nodes.load_ratings(
        files, no_answers(), no_answers(), built(key), {}
    )
    with caplog.at_level(logging.WARNING):
        human = nodes.attach_human_scores(merged, built(key), metrics)
    assert len(human) == len(metrics) - 1 and "differs from the advice evaluated now" in caplog.text
    table = nodes.correlate_metrics(
        metrics, human, {"min_pairs": 5}, {"bootstrap": {"n_resamples": 100}}
    )
    people = table[(table["comparison"] == "human_vs_automated") & (table["system"] == "all")]
    row = people[
        (people["x"] == "human_effectiveness") & (people["y"] == "direction_correct_score")
    ]
    assert row["spearman_rho"].iloc[0] > 0.95
    assert {"rouge_l", "meteor", "fader_move_error_db"} <= set(people["y"])
    agreement = nodes.measure_rater_agreement(merged)
    report, mlflow_metrics = nodes.write_correlation_report(merged, agreement, table, human)
    assert "Inter-rater agreement" in report and mlflow_metrics["raters"]["value"] == 2
    assert "human_vs_automated.human_effectiveness.rouge_l.spearman_rho" in mlflow_metrics
    ablation, markdown = nodes.build_ablation_table(
        summarize(metrics), human, merged, {"bootstrap": {"n_resamples": 100}}
    )
    assert {"human_effectiveness", "rouge_l"} <= set(ablation["metric"])
    assert "Engineers: effectiveness (1-7)" in markdown and "48 ratings by 2 raters" in markdown
