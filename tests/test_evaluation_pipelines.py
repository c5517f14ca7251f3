"""automated_eval and correlation through Kedro on a small synthetic project copy."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from kedro.framework.project import pipelines as project_pipelines
from kedro.framework.session import KedroSession

import anchormix_kedro.pipeline_registry as registry
from anchormix_kedro.evaluation.conditions import ConditionSettings, condition_examples
from anchormix_kedro.evaluation.judge.fake_server import FakeJudgeServer
from anchormix_kedro.pipelines import automated_eval, correlation
from anchormix_kedro.study.storage import StudyStore
from evaluation_helpers import stand_in_advice

SMALL_SYNTHETIC = {
    "ingestion": {
        "excerpt": {"seconds": 3.0},
        "synthetic": {"n_songs": 6, "seconds": 4.0, "seed": 3, "instrumental_fraction": 0.0},
    },
    "perturbation": {"offsets": {"mode": "grid", "values": [0, -6, 4]}},
}
FAST_EVALUATION = {
    "evaluation_common": {"bootstrap": {"n_resamples": 200}},
    # WordNet takes seconds to load; METEOR with synonyms is checked in test_text_metrics.
    "automated_eval": {"text_metrics": {"use_wordnet": False}},
    "study_kit": {
        "n_examples": 3,
        "clip_seconds": 2.0,
        "systems": None,
        "catch_scenarios": 1,
        "min_examples_per_genre": 0,
    },
    "correlation": {"min_pairs": 3},
}


@pytest.fixture
def evaluation_registered(project, monkeypatch):
    """The registry with automated_eval and correlation, whether or not it lists them yet."""
    register = registry.register_pipelines

    def with_evaluation():
        found = register()
        return {
            **found,
            "automated_eval": found.get("automated_eval", automated_eval.create_pipeline()),
            "correlation": found.get("correlation", correlation.create_pipeline()),
        }

    monkeypatch.setattr(registry, "register_pipelines", with_evaluation)
    project_pipelines.configure("anchormix_kedro.pipeline_registry")
    yield
    project_pipelines.configure("anchormix_kedro.pipeline_registry")


def run(project: Path, names: list[str], params: dict):
    try:
        with KedroSession.create(project_path=project, runtime_params=params) as session:
            session.run(pipeline_names=names)
            context = session.load_context()
    finally:
        # kedro-mlflow keeps a run that was open before the session; tests start clean.
        while mlflow.active_run():
            mlflow.end_run()
    return context.catalog


def test_evaluation_without_ratings_then_with_ratings_then_a_bad_file(
    project, evaluation_registered, caplog
):
    catalog = run(project, ["data"], SMALL_SYNTHETIC)
    dataset = catalog.load("instruction_dataset")
    advice = stand_in_advice(dataset, catalog.load("genre_conventions"))
    assert len(advice) > 0
    catalog.save("advice_by_system", advice)
    test_examples = dataset[dataset["split"] == "test"]
    catalog.save(
        "condition_examples",
        condition_examples(test_examples, ConditionSettings.from_params({"as_mixed": {}})),
    )

    params = {**SMALL_SYNTHETIC, **FAST_EVALUATION}
    catalog = run(project, ["automated_eval", "study", "correlation"], params)
    reporting = project / "data" / "08_reporting"

    metrics = catalog.load("evaluation_metrics")
    # Every system's advice, and the exact meter's on the same examples, labelled an oracle.
    assert len(metrics) == len(advice) + len(test_examples)
    oracle = metrics[metrics["system"] == "oracle_meter"]
    assert set(oracle["example_id"]) == set(test_examples["example_id"])
    assert set(oracle["kind"]) == {"oracle"} and set(metrics["kind"]) == {
        "trained", "baseline", "oracle"
    }  # fmt: skip
    assert oracle["direction_correct"].mean() > 0.5
    perfect = metrics[metrics["system"] == "advisor"]
    assert perfect["direction_correct"].all() and perfect["rouge_l"].min() == pytest.approx(1.0)
    wrong = metrics[metrics["system"] == "generic_base"]
    assert not wrong["direction_correct"].fillna(False).any()
    assert metrics["judge_effectiveness"].isna().all()  # no judge configured, nothing invented
    assert set(metrics["meteor_variant"]) == {"exact+stem"}

    summary = pd.read_csv(reporting / "evaluation" / "system_summary.csv")
    accuracy = summary[summary["metric"] == "direction_accuracy"].set_index("system")
    assert accuracy.loc["advisor", "estimate"] == 1.0
    assert accuracy.loc["generic_base", "estimate"] == 0.0
    assert accuracy.loc["oracle_meter", "kind"] == "oracle"
    # Text metrics compare the cores (no optional sentence); the texts as written beside.
    rouge = summary[summary["metric"].isin(["rouge_l", "rouge_l_as_written"])]
    rouge = rouge.set_index(["system", "metric"])["estimate"]
    assert rouge[("advisor", "rouge_l")] == rouge[("advisor", "rouge_l_as_written")] == 1.0
    dsp = metrics[metrics["system"] == "dsp_baseline"]
    assert dsp["advice"].str.contains("usually sit").all()  # the rule quotes the convention
    # The reference's very judgement scores 1 once the optional sentence is set aside.
    assert ((dsp["rouge_l"] == 1.0) & (dsp["rouge_l_as_written"] < 1.0)).any()
    assert list(accuracy.index)[-1] == "oracle_meter"  # after the systems
    report = (reporting / "evaluation" / "automated_eval_report.md").read_text()
    assert "| oracle_meter (oracle) |" in report or "oracle_meter (oracle) |" in report
    assert "LLM judge: none configured" in report and "Research question 2" in report
    assert "Listwise judge: none configured" in report
    settings = json.loads((reporting / "evaluation" / "automated_eval_settings.json").read_text())
    assert settings["judge"]["configured"] is False
    assert settings["listwise"]["configured"] is False and settings["listwise"]["ranked"] == 0
    ranks = catalog.load("listwise_ranks")
    assert len(ranks) == len(advice) and ranks["listwise_rank"].isna().all()
    assert (reporting / "evaluation" / "genre_convention_following.png").stat().st_size > 5000

    # The study: a blind manifest, its audio and its key, in one folder named by its version.
    study = catalog.load("rating_study")
    key = study.key[study.key["system"] != "catch"]
    assert len(key) == 3 * 3 and key["system"].nunique() == 3
    assert (study.key["system"] == "catch").sum() == 1
    manifest = (study.folder / "study.json").read_text()
    assert all(f'"scenario_id": "{s}"' in manifest for s in key["scenario_id"])
    assert "advisor" not in manifest and "generic_base" not in manifest
    assert study.manifest["audio_source"] == "synthetic" and "MUSDB18" not in manifest

    # No ratings yet: said plainly; text metrics still correlated with the truth metrics.
    correlations = pd.read_csv(reporting / "correlation" / "metric_correlations.csv")
    assert set(correlations["comparison"]) == {"automated_vs_truth"}
    assert not correlations["x"].str.startswith("judge_").any()
    assert (
        "No human ratings exist"
        in (reporting / "correlation" / "correlation_report.md").read_text()
    )
    assert "No human ratings exist" in caplog.text
    ablation = (reporting / "correlation" / "ablation_table.md").read_text()
    assert "Engineers' ratings: none yet" in ablation and "advisor" in ablation
    # The method minus every other system, paired, the oracle included and labelled.
    assert "**`advisor` minus each system, paired**" in ablation and "## Per genre" in ablation
    paired = pd.read_csv(reporting / "ablations" / "ablation_comparisons.csv")
    assert set(paired["reference"]) == {"advisor"}
    assert set(paired["system"]) == {"dsp_baseline", "generic_base", "oracle_meter"}
    wrong = paired[
        (paired["system"] == "generic_base") & (paired["metric"] == "direction_accuracy")
    ]
    assert wrong["difference"].iloc[0] == 1.0 and wrong["pairing"].iloc[0] == "same example"
    genres = pd.read_csv(reporting / "ablations" / "genre_ablation_table.csv")
    assert set(genres["system"]) == set(paired["system"]) | {"advisor"}
    assert (reporting / "ablations" / "ablation_plot.png").stat().st_size > 5000

    # Two engineers rate (constructed ratings: better for the correct system): one on the
    # study server (its database), one on the offline page (a CSV file).
    score = {"advisor": 6, "dsp_baseline": 4, "generic_base": 2}
    criteria = ["effectiveness", "musicality", "actionability", "helpfulness"]
    store = StudyStore.open(f"sqlite:///{project / 'data' / '01_raw' / 'study.db'}")
    store.register_study(study.version, study.study_id, len(key))
    ((_label, token),) = store.invite(study.version, 1)
    ann = store.rater_by_token(token)
    store.consent(ann.id)
    for number, r in enumerate(key.itertuples(index=False)):
        saved = store.save_answer(ann.id, r.scenario_id, 0, dict.fromkeys(criteria, score[r.system]),
                                  {}, f"save-{number}")  # fmt: skip
        assert saved.status == "saved"
    store.close()
    ratings_folder = project / "data" / "01_raw" / "ratings"
    ratings_folder.mkdir(parents=True)
    rows = [
        {"rater": "ben", "scenario_id": r.scenario_id, "comment": ""}
        | dict.fromkeys(criteria, min(7, score[r.system] + 1))
        for r in key.itertuples(index=False)
    ]
    pd.DataFrame(rows).to_csv(ratings_folder / "ben.csv", index=False)
    catalog = run(project, ["correlation"], params)
    merged = catalog.load("merged_ratings")
    effects = pd.read_csv(reporting / "study_effects.csv")
    assert set(effects["system"]) == {"dsp_baseline", "generic_base"}
    assert set(effects["criterion"]) == {"effectiveness", "musicality", "actionability",
                                         "helpfulness"}  # fmt: skip
    assert (reporting / "study_effects_robustness.csv").is_file()
    assert merged.groupby("rater")["source"].first().to_dict() == {
        "rater-001": "study database", "ben": "data/01_raw/ratings/ben.csv"}  # fmt: skip

    correlations = pd.read_csv(reporting / "correlation" / "metric_correlations.csv")
    human = correlations[
        (correlations["comparison"] == "human_vs_automated") & (correlations["system"] == "all")
    ]
    row = human[(human["x"] == "human_effectiveness") & (human["y"] == "direction_correct_score")]
    assert row["spearman_rho"].iloc[0] > 0.5
    agreement = pd.read_csv(reporting / "correlation" / "rater_agreement.csv")
    assert agreement["alpha"].notna().all() and (agreement["alpha"] > 0.5).all()
    ablation = (reporting / "correlation" / "ablation_table.md").read_text()
    assert "Engineers: effectiveness" in ablation and "18 ratings by 2 raters" in ablation
    assert (reporting / "correlation" / "correlation_heatmap.png").stat().st_size > 5000

    # Everything reached MLflow.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "anchormix_kedro"]
    runs = sorted(client.search_runs([experiment.experiment_id]), key=lambda r: r.info.start_time)
    last = runs[-1]
    assert last.data.metrics["correlation.raters"] == 2
    # The advisor's accuracy as mixed, logged once: in the parent run or in its own.
    first_eval = [
        r
        for r in runs
        if "automated_eval.as_mixed/advisor.direction_accuracy.estimate" in r.data.metrics
        or (r.info.run_name == "advisor" and "as_mixed/direction_accuracy" in r.data.metrics)
    ]
    assert len(first_eval) == 1
    artifacts = {a.path for a in client.list_artifacts(last.info.run_id, "correlation")}
    assert "correlation/ablation_table.md" in artifacts
    ablations = {a.path for a in client.list_artifacts(last.info.run_id, "ablations")}
    assert "ablations/ablation_comparisons.csv" in ablations

    # A judge served on 127.0.0.1 (the local test server): pointwise scores and one blind
    # ranking per example, beside each other, and the ranks against the engineers' ratings.
    with FakeJudgeServer(delay_s=0.01) as server:
        judge = {"backend": "openai", "base_url": server.url, "model": "fake-judge",
                 "max_in_flight": 4, "max_retries": 0}  # fmt: skip
        judged = {**params, "automated_eval": {**params["automated_eval"], "judge": judge}}
        catalog = run(project, ["automated_eval", "study", "correlation"], judged)
        assert server.peak_in_flight > 1
    metrics = catalog.load("evaluation_metrics")
    has_advice = metrics["advice"].notna()
    assert metrics.loc[has_advice, "judge_ok"].all() and metrics["judge_mean"].notna().sum() > 0
    ranks = catalog.load("listwise_ranks")
    ranked = ranks[ranks["listwise_rank"].notna()]
    assert ranks["example_id"].nunique() == metrics["example_id"].nunique()
    per_example = ranked.groupby("example_id")["listwise_rank"].apply(sorted)
    assert all(r == list(range(1, len(r) + 1)) for r in per_example)  # a full ranking each
    unranked = ranks[~ranks["listwise_ok"]]  # the one missing answer (the empty one is ranked)
    assert unranked["listwise_error"].tolist() == ["no advice to rank"]
    summary = pd.read_csv(reporting / "evaluation" / "system_summary.csv")
    mean_rank = summary[summary["metric"] == "listwise_mean_rank"]
    assert set(mean_rank["system"]) == {"advisor", "dsp_baseline", "generic_base"}
    assert mean_rank["estimate"].between(1, 3).all()
    wins = pd.read_csv(reporting / "evaluation" / "listwise_win_rates.csv")
    assert len(wins) == 6 and wins["win_rate"].between(0, 1).all()
    report = (reporting / "evaluation" / "automated_eval_report.md").read_text()
    assert "LLM judge, listwise: win rates" in report and "| advisor | - |" in report
    settings = json.loads((reporting / "evaluation" / "automated_eval_settings.json").read_text())
    assert settings["listwise"]["ranked"] == settings["listwise"]["examples"] == len(per_example)
    correlations = pd.read_csv(reporting / "correlation" / "metric_correlations.csv")
    listwise = correlations[
        (correlations["comparison"] == "human_vs_automated")
        & (correlations["y"] == "listwise_rank")
    ]
    assert set(listwise["x"]) >= {"human_effectiveness", "human_mean"}
    assert listwise["spearman_rho"].notna().any()

    # A bad file is named, with the row and the value, and the other ratings still count.
    (ratings_folder / "carol.csv").write_text(
        "rater,scenario_id,effectiveness,musicality,actionability,helpfulness\n"
        "carol,s-000000000000,9,5,5,5\n"
    )
    caplog.clear()
    catalog = run(project, ["correlation"], params)
    assert re.search(r"(?s)carol\.csv.*row 1.*unknown scenario id.*= '9'", caplog.text)
    assert set(catalog.load("merged_ratings")["rater"]) == {"rater-001", "ben"}

    # A rehearsal on simulated raters: a database of their own (the real one untouched),
    # the same analysis, every report marked as simulated.
    from anchormix_kedro.commands import main as anchormix

    assert anchormix(["study", "simulate", "--raters", "10", "--effect", "advisor=2"]) == 0
    assert anchormix(["study", "simulate", "--raters", "10"]) == 2  # never over earlier ones
    simulated = {**params, "study": {"ratings": "simulated"}}
    catalog = run(project, ["correlation"], simulated)
    store = StudyStore.open(f"sqlite:///{project / 'data' / '01_raw' / 'study.db'}")
    assert store.versions_with_raters() == [study.version]
    assert len(store.answers_of(ann.id)) == len(key)  # the real rater's answers, unchanged
    store.close()
    quality = catalog.load("rater_quality")
    assert len(quality) == 10 and quality["excluded"].sum() == 1  # the careless one
    merged = catalog.load("merged_ratings")
    assert "ben" not in set(merged["rater"]) and merged["rater"].nunique() == 9
    rehearsal = reporting / "simulated"  # never over the real analysis
    assert pd.read_csv(reporting / "study_effects.csv")["n_raters"].max() == 2  # the real one
    effects = pd.read_csv(rehearsal / "study_effects.csv")
    assert effects["estimate"].mean() > 1.0 and (effects["estimate"] > 0.5).all()  # 2 planted
    before = pd.read_csv(rehearsal / "study" / "study_effects_all_raters.csv")
    assert (before["n_raters"] == 10).all() and (effects["n_raters"] == 9).all()
    report = (rehearsal / "study" / "study_report.md").read_text()
    assert report.startswith("# SIMULATED: ") and "rater-" in report
    genres = pd.read_csv(rehearsal / "study" / "genres.csv")
    assert set(genres["system"]) == set(key["system"]) and genres["mean"].between(1, 7).all()
    frequencies = pd.read_csv(rehearsal / "study" / "themes" / "frequencies.csv")
    assert frequencies["n_with_code"].sum() > 0  # the simulated coders' files were read
    comments = pd.read_csv(rehearsal / "study" / "themes" / "comments_to_code.csv")
    assert not {"system", "rater"} & set(comments.columns)
    validity = pd.read_csv(rehearsal / "study" / "metric_validity.csv")
    assert {"within", "within_pooled", "pooled"} <= set(validity["scope"])
    assert (rehearsal / "study" / "rating_bars.png").stat().st_size > 5000
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    last = max(client.search_runs([experiment.experiment_id]), key=lambda r: r.info.start_time)
    logged = {a.path for a in client.list_artifacts(last.info.run_id, "study")}
    assert {"study/study_report.md", "study/rating_bars.png", "study/themes"} <= logged
    assert last.data.metrics["study.simulated.raters_excluded"] == 1
    assert last.info.run_name.endswith("simulated ratings)")
    assert last.data.tags["anchormix.ratings"] == "simulated"
