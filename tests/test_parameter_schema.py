"""The parameters' schema is read off the configuration's own files: every key and value
type any environment declares is known; a misspelt key is named with the nearest one, a
value of the wrong type is named before any work."""

from __future__ import annotations

import shutil

import pytest

from anchormix_kedro.config import project_config
from anchormix_kedro.parameter_schema import OPEN_MAPPINGS, ParameterSchema
from conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def schema() -> ParameterSchema:
    return ParameterSchema.from_conf(PROJECT_ROOT / "conf")


def problems(schema: ParameterSchema, runtime: dict, env: str = "base") -> list[str]:
    params = dict(project_config(PROJECT_ROOT / "conf", env, runtime)["parameters"])
    return [f"{what}: {fix}" for what, fix in schema.problems(params)]


ENVIRONMENTS = sorted(
    p.name for p in (PROJECT_ROOT / "conf").iterdir() if p.is_dir() and p.name != "local"
)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_s_own_parameters_pass(schema, env, monkeypatch):
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    assert problems(schema, {}, env) == []


def test_a_misspelt_key_is_named_with_the_nearest_known_one(schema):
    (problem,) = problems(schema, {"perturbation": {"typo_tolerance": 3}})
    assert "unknown parameter perturbation.typo_tolerance" in problem
    assert "did you mean perturbation.balanced_tolerance_db" in problem
    (problem,) = problems(schema, {"perturbaton": {"seed": 3}})
    assert "unknown parameter perturbaton" in problem and "did you mean perturbation" in problem


@pytest.mark.parametrize(
    ("runtime", "named"),
    [
        ({"perturbation": {"offsets": {"values": 5}}}, "perturbation.offsets.values is 5"),
        ({"ingestion": {"excerpt": {"seconds": "abc"}}}, "ingestion.excerpt.seconds is 'abc'"),
        ({"perturbation": {"balanced_tolerance_db": True}}, "balanced_tolerance_db is true"),
        ({"perturbation": {"offsets": {"values": [0, "six"]}}}, "offsets.values[1] is 'six'"),
        ({"pairs": {"anchors": 3}}, "pairs.anchors is 3"),
        ({"model": {"name_or_path": 7}}, "model.name_or_path is 7"),
        ({"training": {"lora": "big"}}, "training.lora is 'big'"),
    ],
)
def test_a_value_of_the_wrong_type_is_named(schema, runtime, named):
    (problem,) = problems(schema, runtime)
    assert named in problem, problem


def test_numbers_nulls_and_the_types_a_setting_may_take_pass(schema):
    assert (
        problems(
            schema,
            {
                "perturbation": {"balanced_tolerance_db": 2, "offsets": {"values": [0, 1.5]}},
                "ingestion": {"excerpt": {"seconds": 4}},
                "inference": {"max_test_examples": None},
                "training": {"lora": {"target_modules": ["q_proj", "v_proj"]}},
                "model": {"name_or_path": "some/model", "cache_dir": "/tmp/hf"},
                "musdb_root": "/data/musdb18",
                "evaluation_split": "valid",
            },
        )
        == []
    )


def test_open_mappings_take_new_names_and_a_new_variant_in_a_file_passes(tmp_path):
    assert "systems.variants" in OPEN_MAPPINGS and "inference.conditions" in OPEN_MAPPINGS
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    systems = conf / "base" / "parameters" / "systems.yml"
    systems.write_text(
        systems.read_text().replace(
            "    advisor: {formulation: anchor_target}",
            "    advisor: {formulation: anchor_target}\n"
            "    genre_blind: {formulation: anchor_target, mention_genre: false}",
        )
    )
    (conf / "pace" / "parameters" / "extra.yml").write_text("training:\n  new_setting: 4\n")
    schema = ParameterSchema.from_conf(conf)
    for env in ("base", "pace"):
        params = dict(project_config(conf, env)["parameters"])
        assert "genre_blind" in params["systems"]["variants"]
        assert schema.problems(params) == []
    base = dict(project_config(conf, "base")["parameters"])
    variants = {**base["systems"]["variants"], "louder": {"anchor": "bass", "any_key": 1}}
    assert schema.problems({**base, "systems": {**base["systems"], "variants": variants}}) == []
    assert schema.problems({**base, "training": {**base["training"], "new_setting": 5}}) == []
    (what, fix), *_ = schema.problems({**base, "trainig": {}})
    assert what == "unknown parameter trainig" and "did you mean training" in fix


def test_reading_the_schema_leaves_the_run_s_own_configuration_as_it_was(tmp_path):
    """Kedro's loaders register ``${globals:}`` process-wide: reading pace's files for the
    schema must not make a base run resolve pace's globals."""
    run_config = project_config(PROJECT_ROOT / "conf", "base")
    ParameterSchema.from_conf(PROJECT_ROOT / "conf")
    seconds = run_config["parameters"]["ingestion"]["excerpt"]["seconds"]
    assert seconds == run_config["globals"]["excerpt_seconds"] == 5.0
