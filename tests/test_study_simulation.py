"""Simulated raters (``study.simulation``), the power analysis (``study.power``), genre
norms (``study.genres``) and ``anchormix study simulate``: what is planted in a simulated
study is found again by the analysis, and the real study database is never touched."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from anchormix_kedro.commands import main
from anchormix_kedro.study import effects, genres, power, quality, simulation, themes
from anchormix_kedro.study.design import REPEAT_SUFFIX
from anchormix_kedro.study.kit.page_csv import FEEDBACK_COLUMNS
from anchormix_kedro.study.material import load_study
from anchormix_kedro.study.power import Trial
from anchormix_kedro.study.simulation import PHRASES, RaterModel
from anchormix_kedro.study.storage import StudyStore
from anchormix_kedro.vocabulary import CRITERIA
from conftest import PROJECT_ROOT
from study_helpers import make_study

SYSTEMS = ["advisor", "no_anchor", "dsp_baseline"]
DESIGN = {"per_rater": 30, "seed": 11, "catch_trials": True}
VERSION = power.VERSION
#: Which code a simulated comment's text was written for.
CODE_OF_TEXT = {text: code for code, texts in PHRASES.items() for text in texts}


def study_key(genre_names=power.GENRES, n_examples: int = 16) -> pd.DataFrame:
    return power.synthetic_key(n_examples, SYSTEMS, catch_scenarios=4, genres=genre_names)


def careless_of(simulated) -> set[str]:
    return set(simulated.raters.loc[simulated.raters["careless"], "rater"])


def analyse(simulated, key: pd.DataFrame):
    """``(quality, contrasts)``: the exclusion rule and the primary model, as
    :func:`power.run_trial` applies them."""
    verdicts = quality.rater_quality(simulation.quality_tables(simulated, VERSION), VERSION)
    excluded = set(verdicts.loc[verdicts["excluded"], "rater"])
    answers = simulated.answers
    kept = answers[(answers["kind"] == "scenario") & ~answers["rater"].isin(excluded)]
    table, _components = effects.mixed_model(
        effects.long_ratings(kept[["rater", "scenario_id", *CRITERIA]], key)
    )
    return verdicts, table


# ----------------------------------------------------------------------------- settings


def test_parse_effects_reads_systems_genres_and_adds_repeats():
    parse = simulation.parse_effects
    assert parse(["advisor=0.5"], SYSTEMS, ["Jazz"]) == {("advisor", None): 0.5}
    assert parse(["advisor@Jazz=-1"], SYSTEMS, ["Jazz"]) == {("advisor", "Jazz"): -1.0}
    both = parse(["advisor=0.5", "advisor=0.25", "advisor@Jazz=-1", "advisor@Jazz=-0.5",
                  "no_anchor=1e-1"], SYSTEMS, ["Rap", "Jazz"])  # fmt: skip
    assert both == {("advisor", None): 0.75, ("advisor", "Jazz"): -1.5, ("no_anchor", None): 0.1}
    assert all(isinstance(v, float) for v in both.values())
    assert parse([], SYSTEMS, []) == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("advisor", "expected SYSTEM=POINTS"),
        ("advisor=much", "expected SYSTEM=POINTS"),
        ("advisor=nan", "expected SYSTEM=POINTS"),
        ("advisor=inf", "expected SYSTEM=POINTS"),
        ("=1", "expected SYSTEM=POINTS"),
        ("oracle=1", "no system 'oracle'; it has advisor, no_anchor, dsp_baseline"),
        ("advisor@Polka=1", "no genre 'Polka'; it has Rap, Jazz"),
        ("advisor@=1", "expected SYSTEM=POINTS or SYSTEM@GENRE=POINTS"),
    ],
)
def test_parse_effects_names_the_bad_effect(text, message):
    with pytest.raises(ValueError, match="--effect") as error:
        simulation.parse_effects(["advisor=0.5", text], SYSTEMS, ["Rap", "Jazz"])
    assert message in str(error.value) and repr(text) in str(error.value)


def test_rater_model_from_params_checks_its_settings():
    assert RaterModel.from_params(None) == RaterModel()
    model = RaterModel.from_params({"mean": "4", "noise_sd": 1, "careless_share": 0})
    assert (model.mean, model.noise_sd, model.careless_share) == (4.0, 1.0, 0.0)
    assert all(isinstance(getattr(model, name), float) for name in ("mean", "noise_sd"))
    assert RaterModel.from_params({"mean": -1}).mean == -1.0  # the mean may be anything
    with pytest.raises(ValueError, match="unknown settings \\['noise'\\]") as error:
        RaterModel.from_params({"noise": 1.0})
    assert "careless_share" in str(error.value) and "noise_sd" in str(error.value)
    with pytest.raises(ValueError, match="rater_sd must be at least 0"):
        RaterModel.from_params({"rater_sd": -0.1})
    with pytest.raises(ValueError, match="careless_share must be below 1"):
        RaterModel.from_params({"careless_share": 1})
    with pytest.raises(ValueError, match="comment_share must be below 1"):
        RaterModel.from_params({"comment_share": 1.5})


@pytest.mark.parametrize("value", [None, "nan"])
def test_rater_model_from_params_rejects_missing_and_nan_settings(value):
    with pytest.raises(ValueError, match="noise_sd"):
        RaterModel.from_params({"noise_sd": value})


# ------------------------------------------------------------- recovery and power


@pytest.fixture(scope="module")
def planted():
    """A simulated study of 20 raters with the advisor 0.8 points above the others,
    analysed as the pipeline analyses a real one."""
    key = study_key()
    lists = simulation.draw_lists(key, 20, DESIGN)
    simulated = simulation.simulate(key, lists, RaterModel(), {("advisor", None): 0.8}, seed=2,
                                    codes=())  # fmt: skip
    verdicts, table = analyse(simulated, key)
    return key, simulated, verdicts, table


def test_a_planted_advisor_effect_is_found(planted):
    _key, simulated, verdicts, table = planted
    assert len(table) == 2 * len(CRITERIA)
    assert set(table["system"]) == {"no_anchor", "dsp_baseline"}
    assert (table["p_adjusted"] < 0.05).all()
    assert table["estimate"].between(0.3, 1.3).all()
    assert 0.6 <= table["estimate"].mean() <= 1.0
    holds = (table["ci_low"] <= 0.8) & (0.8 <= table["ci_high"])
    assert holds.sum() >= 6
    excluded = set(verdicts.loc[verdicts["excluded"], "rater"])
    assert careless_of(simulated) <= excluded  # the careless raters are left out
    assert table["n_raters"].eq(20 - len(excluded)).all()


def test_without_a_planted_effect_no_adjusted_test_is_significant():
    key = study_key()
    lists = simulation.draw_lists(key, 20, DESIGN)
    simulated = simulation.simulate(key, lists, RaterModel(), {}, seed=3, codes=())
    _verdicts, table = analyse(simulated, key)
    assert len(table) == 2 * len(CRITERIA)
    assert (table["p_adjusted"] >= 0.05).all()
    assert table["estimate"].abs().max() < 0.5


def test_the_exclusion_rule_finds_the_careless_raters(planted):
    _key, simulated, verdicts, _table = planted
    careless = careless_of(simulated)
    assert len(careless) == round(20 * RaterModel().careless_share) == 2
    excluded = set(verdicts.loc[verdicts["excluded"], "rater"])
    assert careless <= excluded
    assert len(excluded - careless) <= 1
    honest = verdicts[~verdicts["rater"].isin(careless)]
    assert (honest["catch_effectiveness"] <= 2).all()
    assert (verdicts.loc[verdicts["rater"].isin(careless), "catch_effectiveness"] >= 4).all()
    # An honest rater is only ever left out for a repeat answered far apart.
    for reason in honest.loc[honest["excluded"], "reason"]:
        assert reason.startswith("answered the repeated scenario")


def test_run_trial_is_the_analysis_counted(planted):
    key, simulated, verdicts, table = planted
    trial = power.run_trial(key, 20, DESIGN, RaterModel(), 0.8, seed=2)
    excluded = set(verdicts.loc[verdicts["excluded"], "rater"])
    careless = careless_of(simulated)
    assert trial.careless == trial.careless_found == len(careless) == 2
    assert trial.n_kept == 20 - len(excluded)
    assert trial.honest_excluded == len(excluded - careless)
    assert trial.contrasts == len(table) == 8
    assert trial.significant == int((table["p_adjusted"] < 0.05).sum()) == 8
    holds = (table["ci_low"] <= 0.8) & (0.8 <= table["ci_high"])
    assert trial.covered == int(holds.sum())
    assert trial.estimate_mean == pytest.approx(table["estimate"].mean())


def _trial(significant: int, contrasts: int = 8, **changes) -> Trial:
    values = {"n_kept": 18, "careless_found": 2, "careless": 2, "honest_excluded": 0,
              "significant": significant, "contrasts": contrasts, "estimate_mean": 0.5,
              "covered": contrasts, **changes}  # fmt: skip
    return Trial(**values)


def test_summarise_computes_power_and_the_false_positive_rate():
    found = power.summarise([_trial(8, covered=8, estimate_mean=0.7),
                             _trial(4, covered=6, n_kept=17, honest_excluded=1, careless_found=1,
                                    estimate_mean=0.5)], effect=0.5)  # fmt: skip
    assert found["measure"] == "power" and found["simulations"] == 2
    assert found["value"] == pytest.approx(0.75)
    assert found["se"] == pytest.approx(np.sqrt(0.75 * 0.25 / 2))
    assert found["raters_kept_mean"] == pytest.approx(17.5)
    assert found["careless_excluded"] == pytest.approx(3 / 4)
    assert found["honest_excluded_mean"] == pytest.approx(0.5)
    assert found["estimate_mean"] == pytest.approx(0.6)
    assert found["interval_coverage"] == pytest.approx(14 / 16)
    null = power.summarise([_trial(0), _trial(3), _trial(0), _trial(0)], effect=0.0)
    assert null["measure"] == "false_positive_rate"
    assert null["value"] == pytest.approx(0.25)
    assert null["se"] == pytest.approx(np.sqrt(0.25 * 0.75 / 4))
    none_careless = power.summarise([_trial(0, careless=0, careless_found=0)], effect=0.0)
    assert none_careless["careless_excluded"] is None and none_careless["value"] == 0.0


# -------------------------------------------------------------- simulated answers


@pytest.fixture(scope="module")
def study():
    """A key, the raters' lists, and a simulated study without planted effects."""
    key = study_key()
    lists = simulation.draw_lists(key, 20, DESIGN)
    return key, lists, simulation.simulate(key, lists, RaterModel(), {}, seed=5)


def test_a_simulation_is_reproducible_with_its_seed(study):
    key, lists, simulated = study
    again = simulation.simulate(key, lists, RaterModel(), {}, seed=5)
    pd.testing.assert_frame_equal(simulated.answers, again.answers)
    pd.testing.assert_frame_equal(simulated.raters, again.raters)
    other = simulation.simulate(key, lists, RaterModel(), {}, seed=6)
    assert list(other.answers["item"]) == list(simulated.answers["item"])  # the same lists
    assert (other.answers[list(CRITERIA)] != simulated.answers[list(CRITERIA)]).any(axis=None)
    # The answers follow the lists drawn, in order.
    assert list(simulated.answers["item"]) == [s.item for slots in lists for s in slots]
    assert len(lists) == simulated.raters["rater"].nunique() == 20


def test_ratings_are_whole_points_of_the_scale_and_the_checks_separate_raters(study):
    _key, lists, simulated = study
    answers = simulated.answers
    for criterion in CRITERIA:
        values = answers[criterion]
        assert pd.api.types.is_integer_dtype(values) and values.between(1, 7).all()
    careless = careless_of(simulated)
    is_careless = answers["rater"].isin(careless)
    catch = answers[answers["kind"] == "catch"]
    assert catch["rater"].nunique() == 20  # every rater has one catch scenario
    honest_catch = catch[~catch["rater"].isin(careless)]
    assert (honest_catch["effectiveness"] <= 2).all()
    assert (honest_catch[list(CRITERIA)] <= 3).all(axis=None)
    assert (catch.loc[catch["rater"].isin(careless), list(CRITERIA)] >= 4).all(axis=None)
    assert (answers.loc[is_careless, list(CRITERIA)] >= 4).all(axis=None)
    differences = []
    for rater, mine in answers.groupby("rater"):
        repeats = mine[mine["kind"] == "repeat"]
        assert len(repeats) == 1, rater
        repeat = repeats.iloc[0]
        assert repeat["item"] == repeat["scenario_id"] + REPEAT_SUFFIX
        (first,) = mine.index[mine["item"] == repeat["scenario_id"]]
        if rater not in careless:
            differences.append(
                (mine.loc[first, list(CRITERIA)] - repeat[list(CRITERIA)]).abs().mean()
            )
    assert len(differences) == 18
    assert 0.3 < np.mean(differences) < 1.6  # fresh noise each time, but close
    people = simulated.raters.set_index("rater")
    assert (people.loc[list(careless), "listened_seconds"] < 5).all()
    honest = people.loc[~people.index.isin(careless)]
    assert (honest["headphone_correct"] == 3).all()
    lengths = {f"rater-{i + 1:03d}": len(slots) for i, slots in enumerate(lists)}
    assert (honest["listened_seconds"] == honest.index.map(lengths) * 25.0).all()


def test_planted_effects_move_exactly_their_system_and_genre():
    key = study_key(("Pop/Rock", "Jazz"), n_examples=6)
    lists = simulation.draw_lists(key, 6, {"per_rater": None, "seed": 1})
    model = RaterModel(careless_share=0.0)
    simulated = simulation.simulate(key, lists, model, {("advisor", None): 10.0,
                                                        ("no_anchor", "Jazz"): -10.0}, seed=1)  # fmt: skip
    rated = simulated.answers.merge(key, on="scenario_id")
    rated = rated[rated["kind"] == "scenario"]
    values = rated[list(CRITERIA)]
    assert (values[rated["system"] == "advisor"] == 7).all(axis=None)
    jazz = rated["genre"] == "Jazz"
    assert (values[(rated["system"] == "no_anchor") & jazz] == 1).all(axis=None)
    untouched = (rated["system"] == "dsp_baseline") | ((rated["system"] == "no_anchor") & ~jazz)
    assert values[untouched].stack().between(2, 6).mean() > 0.8


def test_honest_raters_comment_with_a_planted_code(study):
    key, lists, simulated = study
    answers = simulated.answers
    careless = careless_of(simulated)
    written = answers[answers["text"].notna()]
    assert len(written) > 50
    assert (written["kind"] == "scenario").all()
    assert not written["rater"].isin(careless).any()
    assert answers.loc[answers["text"].isna(), ["field", "code"]].isna().all(axis=None)
    assert (written["code"].map(PHRASES).notna()).all()
    assert [CODE_OF_TEXT[t] for t in written["text"]] == list(written["code"])
    assert set(written["field"]) <= set(FEEDBACK_COLUMNS)
    pools = {"weaknesses": simulation.NEGATIVE_CODES, "strengths": simulation.POSITIVE_CODES,
             "suggestions": simulation.NEUTRAL_CODES}  # fmt: skip
    assert all(code in pools[field] for field, code in zip(written["field"], written["code"],
                                                            strict=True))  # fmt: skip
    honest_scenarios = answers[(answers["kind"] == "scenario") & ~answers["rater"].isin(careless)]
    assert 0.2 < len(written) / len(honest_scenarios) < 0.4  # comment_share 0.3
    silent = simulation.simulate(key, lists, RaterModel(), {}, seed=5, codes=())
    assert silent.answers[["field", "text", "code"]].isna().all(axis=None)
    assert simulation.simulate(key, lists, RaterModel(), {}, seed=5,
                               codes=["other"]).answers["text"].isna().all()  # fmt: skip
    some = simulation.simulate(key, lists, RaterModel(), {}, seed=5,
                               codes=["vague", "clear_and_specific"]).answers  # fmt: skip
    assert set(some["code"].dropna()) == {"vague", "clear_and_specific"}


# ------------------------------------------------------------------------ genre norms


def test_genre_table_finds_a_planted_genre_effect():
    key = study_key(("Pop/Rock", "Jazz"))
    lists = simulation.draw_lists(key, 20, DESIGN)
    simulated = simulation.simulate(key, lists, RaterModel(),
                                    {("advisor", None): 0.5, ("advisor", "Jazz"): -1.5}, seed=4,
                                    codes=())  # fmt: skip
    answers = simulated.answers
    kept = answers[(answers["kind"] == "scenario") & ~answers["rater"].isin(careless_of(simulated))]
    long = effects.long_ratings(kept[["rater", "scenario_id", *CRITERIA]], key)
    table = genres.genre_table(long, metrics=None)
    assert list(table.columns) == list(genres.GENRE_COLUMNS)
    assert len(table) == 2 * 3 * (len(CRITERIA) + 1)
    overall = table[table["criterion"] == genres.MEAN_OF_CRITERIA].set_index(["system", "genre"])
    jazz = overall.loc[("advisor", "Jazz")]
    others = overall.loc["advisor"].drop(index="Jazz")
    elsewhere = np.average(others["mean"], weights=others["n_ratings"])
    assert 0.8 < elsewhere - jazz["mean"] < 2.2
    n_jazz = key.loc[
        (key["genre"] == "Jazz") & (key["system"] == "advisor"), "example_id"
    ].nunique()
    assert n_jazz == 8 and jazz["n_examples"] == n_jazz
    # The mean is the ratings' mean of the criteria, computed here from the answers.
    rated = kept.merge(key, on="scenario_id")
    mine = rated[(rated["system"] == "advisor") & (rated["genre"] == "Jazz")]
    assert jazz["mean"] == pytest.approx(mine[list(CRITERIA)].mean(axis=1).mean())
    assert jazz["n_ratings"] == len(mine) and jazz["n_raters"] == mine["rater"].nunique()
    assert ((table["ci_low"] <= table["mean"]) & (table["mean"] <= table["ci_high"])).all()
    assert (table["ci_low"] < table["ci_high"]).all()
    assert table["share_within_range"].isna().all()  # no metrics: no range check


def test_genre_table_reports_where_the_advice_leaves_the_level():
    key = study_key(("Pop/Rock", "Jazz"), n_examples=4)
    rated = key[key["system"] != "catch"]
    ratings = rated[["scenario_id"]].assign(rater="r1", **dict.fromkeys(CRITERIA, 4))
    long = effects.long_ratings(ratings, key)
    # e000 and e002 are Pop/Rock, e001 and e003 Jazz.
    within = {("e000", "advisor"): True, ("e002", "advisor"): True,
              ("e001", "advisor"): True, ("e003", "advisor"): False,
              ("e000", "no_anchor"): False, ("e002", "no_anchor"): None,
              ("e001", "no_anchor"): False, ("e003", "no_anchor"): False}  # fmt: skip
    distance = {("e000", "advisor"): 1.0, ("e002", "advisor"): 2.0, ("e001", "advisor"): 0.5,
                ("e003", "advisor"): 4.5, ("e000", "no_anchor"): 6.0, ("e002", "no_anchor"): None,
                ("e001", "no_anchor"): 3.0, ("e003", "no_anchor"): 5.0}  # fmt: skip
    metrics = pd.DataFrame([{"example_id": e, "system": s, "within_convention_iqr_after": w,
                             "convention_distance_after_db": distance[e, s], "other": 1}
                            for (e, s), w in within.items()])  # fmt: skip
    table = genres.genre_table(long, metrics)
    cells = table.drop_duplicates(["genre", "system"]).set_index(["genre", "system"])
    expected = {("Pop/Rock", "advisor"): (1.0, 2, 1.5), ("Jazz", "advisor"): (0.5, 2, 2.5),
                ("Pop/Rock", "no_anchor"): (0.0, 1, 6.0), ("Jazz", "no_anchor"): (0.0, 2, 4.0)}  # fmt: skip
    for cell, (share, n_with_move, after) in expected.items():
        row = cells.loc[cell]
        assert row["share_within_range"] == pytest.approx(share), cell
        assert row["n_with_move"] == n_with_move, cell
        assert row["distance_after_db"] == pytest.approx(after), cell
    # A system the metrics lack (dsp_baseline) has no moves to count.
    baseline = cells.loc[("Jazz", "dsp_baseline")]
    assert baseline["n_with_move"] == 0 and np.isnan(baseline["share_within_range"])
    # Every row of a (genre, system) carries the same range check, for each criterion.
    assert table.groupby(["genre", "system"])["n_with_move"].nunique().eq(1).all()
    assert len(table) == 2 * 3 * (len(CRITERIA) + 1)


# ---------------------------------------------------------------------------- themes


def codebook() -> pd.DataFrame:
    path = PROJECT_ROOT / "conf" / "base" / "parameters" / "study_codebook.yml"
    return themes.codebook_table(yaml.safe_load(path.read_text())["study_codebook"])


def ratings_of(answers: pd.DataFrame) -> pd.DataFrame:
    """The simulated answers as the validated ratings: one feedback column per field."""
    scenarios = answers[answers["kind"] == "scenario"]
    ratings = scenarios[["rater", "scenario_id"]].copy()
    for field in FEEDBACK_COLUMNS:
        ratings[field] = scenarios["text"].where(scenarios["field"] == field, "").fillna("")
    return ratings


def test_themes_of_a_simulated_study_hold_what_was_planted(study):
    key, _lists, simulated = study
    key = key.assign(advice="Pull the " + key["system"] + " track down by 2 dB.")
    answers = simulated.answers
    files = simulation.coder_files_from_planted(answers, key, disagreement=0.1)
    assert sorted(files) == ["coder-a", "coder-b"]
    ratings = ratings_of(answers)
    comments = themes.comments_for_coding(ratings, key)
    written = answers[answers["text"].notna()].merge(key[["scenario_id", "system"]],
                                                     on="scenario_id")  # fmt: skip
    assert len(comments) == len(written)
    book = codebook()
    coded, coverage = themes.read_coder_files(files, book, comments["comment_id"])
    assert coverage.groupby("coder")["comment_id"].nunique().to_dict() == {
        "coder-a": len(comments), "coder-b": len(comments)}  # fmt: skip
    # Coder a gives each comment exactly the code its text was written for.
    first = coded[coded["coder"] == "coder-a"].merge(comments[["comment_id", "text"]],
                                                     on="comment_id")  # fmt: skip
    assert len(first) == len(comments) and first["comment_id"].is_unique
    assert (first["code"] == first["text"].map(CODE_OF_TEXT)).all()
    second = coded[coded["coder"] == "coder-b"].set_index("comment_id")["code"]
    differ = first.set_index("comment_id")["code"] != second.reindex(first["comment_id"]).values
    assert 0.02 < differ.mean() < 0.2  # disagreement 0.1
    frequencies = themes.theme_frequencies(coded, coverage, themes.comment_systems(ratings, key),
                                           book, comments=comments)  # fmt: skip
    planted = written.groupby(["system", "code"]).size().unstack(fill_value=0)
    n_of = written["system"].value_counts()
    assert set(frequencies["system"]) == set(n_of.index)
    for row in frequencies.itertuples():
        assert row.n_comments == n_of[row.system]
        share = planted.loc[row.system].get(row.code, 0) / n_of[row.system]
        assert row.share >= share - 1e-12, (row.system, row.code)
        assert row.share <= share + 0.25, (row.system, row.code)
    # Two coders: a code either gave is carried, so the shares sum past one.
    assert frequencies.groupby("system")["share"].sum().gt(1).all()
    assert frequencies.loc[frequencies["code"] == "other", "n_with_code"].eq(0).all()
    agreement = themes.code_agreement(coded, coverage, book, n_resamples=200)
    frequent = agreement[(agreement["code"] != themes.MEAN_ROW) & (agreement["prevalence"] > 0.1)]
    assert len(frequent) >= 3
    assert (frequent["kappa"] > 0.6).all()
    assert (frequent["kappa"] < 1).any()
    mean = agreement[agreement["code"] == themes.MEAN_ROW].iloc[0]
    assert 0.6 < mean["kappa"] < 1


# ----------------------------------------------------------------------- the command

BUILT = "2026-02-01T00.00.00.000Z"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project folder with its configuration and one built study (with a catch)."""
    root = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf")
    (root / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "anchormix_kedro"\n')
    make_study(root / "data" / "08_reporting" / "rating_study", BUILT, n_examples=3, catch=1)
    monkeypatch.delenv("ANCHORMIX_STUDY_DATABASE", raising=False)
    monkeypatch.delenv("ANCHORMIX_SIMULATED_STUDY_DATABASE", raising=False)
    monkeypatch.chdir(root / "conf")
    return root


def raters_in(path: Path) -> list[str]:
    store = StudyStore.open(f"sqlite:///{path}")
    try:
        return sorted(quality.quality_inputs(store, BUILT)["raters"]["rater"])
    finally:
        store.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_simulate_fills_its_own_database_and_leaves_the_real_one(project, capsys):
    raw = project / "data" / "01_raw"
    simulated_db, real_db = raw / "study_simulated.db", raw / "study.db"
    assert main(["study", "simulate", "--raters", "4", "--seed", "1"]) == 0
    err = capsys.readouterr().err
    assert "Simulated 4 raters" in err and BUILT in err and "planted: nothing" in err
    assert simulated_db.is_file() and not real_db.exists()
    assert raters_in(simulated_db) == ["rater-001", "rater-002", "rater-003", "rater-004"]
    store = StudyStore.open(f"sqlite:///{simulated_db}")
    inputs = quality.quality_inputs(store, BUILT)
    texts = pd.read_sql("SELECT texts FROM answers", store.engine)["texts"].map(json.loads)
    store.close()
    assert len(inputs["answers"]) == len(inputs["assignments"]) == 4 * (9 + 2)  # catch, repeat
    assert inputs["answers"][list(CRITERIA)].stack().between(1, 7).all()
    codes = raw / "study_codes_simulated"
    assert sorted(p.name for p in codes.iterdir()) == ["coder-a.csv", "coder-b.csv"]
    first, second = (pd.read_csv(codes / name) for name in ("coder-a.csv", "coder-b.csv"))
    assert list(first.columns) == ["comment_id", "codes"]
    assert list(first["comment_id"]) == list(second["comment_id"])
    assert set(first["codes"]) <= set(codebook()["code"])
    written = [text for fields in texts for text in fields.values() if text]
    assert len(first) == len(written) > 0  # one coded row per comment saved
    assert all(text in CODE_OF_TEXT for text in written)

    # A real study with one invited rater: the command must leave it as it is.
    study = load_study(project / "data" / "08_reporting" / "rating_study", BUILT)
    real = StudyStore.open(f"sqlite:///{real_db}")
    real.register_study(study.version, study.study_id, len(study.scenario_ids))
    real.invite(study.version, 1)
    real.close()
    before = digest(real_db)

    assert main(["study", "simulate", "--raters", "3"]) == 2
    err = capsys.readouterr().err
    assert "study_simulated.db" in err and "--replace" in err
    assert raters_in(simulated_db) == ["rater-001", "rater-002", "rater-003", "rater-004"]

    assert main(["study", "simulate", "--raters", "3", "--replace", "--effect",
                 "advisor=1"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "Simulated 3 raters" in err and "planted: advisor +1" in err
    assert raters_in(simulated_db) == ["rater-001", "rater-002", "rater-003"]
    assert digest(real_db) == before and raters_in(real_db) == ["rater-001"]
    assert sorted(p.name for p in codes.iterdir()) == ["coder-a.csv", "coder-b.csv"]


def test_simulate_refuses_bad_settings_and_the_real_database(project, monkeypatch, capsys):
    simulated_db = project / "data" / "01_raw" / "study_simulated.db"
    assert main(["study", "simulate", "--raters", "3", "--effect", "oracle=1"]) == 2
    err = capsys.readouterr().err
    assert "no system 'oracle'" in err and "advisor, dsp_baseline, generic_base" in err
    assert main(["study", "simulate", "--raters", "3", "--effect", "advisor@Polka=1"]) == 2
    assert "no genre 'Polka'" in capsys.readouterr().err
    assert main(["study", "simulate", "--raters", "1"]) == 2
    assert "--raters must be at least 2" in capsys.readouterr().err
    assert not simulated_db.exists()
    same = f"sqlite:///{project / 'data' / 'one.db'}"
    monkeypatch.setenv("ANCHORMIX_STUDY_DATABASE", same)
    monkeypatch.setenv("ANCHORMIX_SIMULATED_STUDY_DATABASE", same)
    assert main(["study", "simulate", "--raters", "3"]) == 2
    err = capsys.readouterr().err
    assert "the simulated study database is the real one" in err
    assert "ANCHORMIX_SIMULATED_STUDY_DATABASE" in err
    assert not (project / "data" / "one.db").exists() and not simulated_db.exists()
