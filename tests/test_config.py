"""The configuration environments resolve: base on any machine, pace without a GPU."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from anchormix_kedro.model.factory import ModelSettings, quantization_config
from anchormix_kedro.model.workflow import TrainingSettings
from anchormix_kedro.pipeline_registry import declared_systems, register_pipelines
from anchormix_kedro.pipelines import fine_tuning, inference
from anchormix_kedro.pipelines.fine_tuning.pipeline import TRAINING_TAG
from anchormix_kedro.settings import CONFIG_LOADER_ARGS
from conftest import PROJECT_ROOT


def loader(env: str, monkeypatch, **environment) -> OmegaConfigLoader:
    for name in ("ANCHORMIX_DATA_ROOT", "ANCHORMIX_MLFLOW_URI", "MUSDB_PATH", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return OmegaConfigLoader(conf_source=str(PROJECT_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)


def test_base_configuration_builds_every_pipeline_input(monkeypatch):
    config = loader("base", monkeypatch)
    catalog = DataCatalog.from_config(config["catalog"])
    params = config["parameters"]
    pipelines = register_pipelines()
    free_inputs = {i for i in pipelines["__default__"].inputs() if not i.startswith("params:")}
    assert free_inputs == {"musdb_corpus", "ratings_files", "study_answers",
                           "study_answers_simulated", "study_codes", "study_codes_simulated",
                           "judge_credentials"}  # fmt: skip
    persisted = {
        "excerpts": "StagedPartitionedDataset",
        "log_mel_features": "PartitionedDataset",
        "merged_ratings": "SpreadsheetSafeCSVDataset",
        "condition_examples": "ParquetDataset",
        "single_clip.model_package": "ModelPackageDataset",
        "instruction_dataset": "ParquetDataset",
        "advisor.model_package": "ModelPackageDataset",
        "no_anchor.model_package": "ModelPackageDataset",
        "no_anchor.training_report": "JSONDataset",
        "advice_by_system": "ParquetDataset",
    }
    for name, kind in persisted.items():
        assert name in pipelines["__default__"].datasets()
        assert type(catalog.get(name)).__name__ == kind, name
    assert ModelSettings.from_params(params["model"]).source == "tiny"
    TrainingSettings.from_params({**params["training"], **params["systems"]["variants"]["advisor"]})


def test_pace_configuration_resolves_without_a_gpu(monkeypatch):
    config = loader(
        "pace",
        monkeypatch,
        ANCHORMIX_DATA_ROOT="/scratch/anchormix",
        ANCHORMIX_MLFLOW_URI="sqlite:////shared/mlflow.db",
    )
    params = config["parameters"]
    settings = ModelSettings.from_params(params["model"])
    assert (
        settings.source == "pretrained" and settings.name_or_path == "Qwen/Qwen2-Audio-7B-Instruct"
    )
    assert settings.load_in_4bit and str(settings.torch_dtype) == "torch.bfloat16"
    quantization = quantization_config(settings)
    assert quantization.load_in_4bit and quantization.bnb_4bit_quant_type == "nf4"
    training = TrainingSettings.from_params(
        {**params["training"], **params["systems"]["variants"]["no_anchor"]}
    )
    assert (
        training.formulation == "target_only"
        and training.finetune["args"]["gradient_checkpointing"]
    )
    assert not training.pretrain["enabled"]
    # Soft merge: keys pace does not mention keep their base values.
    assert params["pairs"]["anchors"] == ["drums"] and params["training"]["seed"] == 42
    assert (
        params["ingestion"]["excerpt"]["seconds"] == 30.0
        and params["ingestion"]["excerpt"]["hop_seconds"] == 0.5
    )
    catalog = DataCatalog.from_config(config["catalog"])
    assert str(catalog["loudness"]._filepath).startswith("/scratch/anchormix/")
    assert config["mlflow"]["server"]["mlflow_tracking_uri"] == "sqlite:////shared/mlflow.db"
    assert config["mlflow"]["tracking"]["experiment"]["name"] == "anchormix_kedro"


@pytest.mark.parametrize("bad", [{"source": "hub"}, {"source": "pretrained"}])
def test_bad_model_settings_are_named(bad):
    with pytest.raises(ValueError, match="model"):
        ModelSettings.from_params(bad)


def test_systems_are_declared_once_and_a_new_variant_is_one_entry(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT_ROOT / "conf", conf)
    variants, baselines = declared_systems(conf=conf)
    assert variants[:3] == ["advisor", "no_anchor", "single_clip"]
    assert baselines[0] == "generic_base" and baselines[-1] == "dsp_baseline"
    systems = conf / "base" / "parameters" / "systems.yml"
    text = systems.read_text().replace(
        "    no_anchor: {formulation: target_only}",
        "    no_anchor: {formulation: target_only}\n    wide_lora: {lora: {r: 64}}",
    )
    systems.write_text(text)
    variants, baselines = declared_systems(conf=conf)
    assert variants[:4] == ["advisor", "no_anchor", "wide_lora", "single_clip"]
    training = fine_tuning.create_pipeline(variants=variants)
    assert "wide_lora.train_advice_model" in {n.name for n in training.nodes}
    assert "params:systems.variants.wide_lora" in training.inputs()
    advice = inference.create_pipeline(variants=variants, baselines=baselines)
    combine = next(n for n in advice.nodes if n.name == "combine_advice")
    assert combine.inputs == [f"{s}_advice" for s in [*variants, *baselines]]
    systems.write_text(text.replace("[generic_base, ", "[generic_base, rule, "))
    with pytest.raises(ValueError, match=r"unknown baseline\(s\) \['rule'\]"):
        declared_systems(conf=conf)


def test_every_node_carries_its_stage_tag_and_slurm_trains_by_tag():
    pipelines = register_pipelines()
    stages = [
        "ingestion",
        "perturbation",
        "templating",
        "fine_tuning",
        "inference",
        "automated_eval",
        "study",
        "correlation",
    ]
    for stage in stages:
        assert all(stage in node.tags for node in pipelines[stage].nodes), stage
    tagged = {n.name for n in pipelines["__default__"].nodes if TRAINING_TAG in n.tags}
    assert tagged == {f"{v}.train_advice_model" for v in ("advisor", "no_anchor", "single_clip")}
    script = (PROJECT_ROOT / "slurm" / "train_pace.sbatch").read_text()
    assert f"--tags={TRAINING_TAG}" in script and "train_advice_model" not in script


def test_the_slurm_script_parses_and_prints_its_commands_for_any_cluster_size():
    script = PROJECT_ROOT / "slurm" / "train_pace.sbatch"
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck"):
        checked = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/someone",
        "ANCHORMIX_DRY_RUN": "1",
        "ANCHORMIX_MLFLOW_URI": "http://login-1:5000",
        "SLURM_JOB_NUM_NODES": "2",
        "GPUS_PER_NODE": "4",
    }
    dry = subprocess.run(
        ["bash", str(script)], env=environment, capture_output=True, text=True, check=True
    )
    lines = dry.stdout.splitlines()
    (training,) = [line for line in lines if "torchrun" in line]
    assert "--nnodes=2 --nproc_per_node=4" in training and "--rdzv_backend=c10d" in training
    assert "--tags=variant_training" in training.replace("\\,", ",")
    assert "ANCHORMIX_MLFLOW_URI=http://login-1:5000" in lines and "HF_HUB_OFFLINE=1" in lines
    single = subprocess.run(
        ["bash", str(script)],
        env={**environment, "SLURM_JOB_NUM_NODES": "1", "GPUS_PER_NODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "torchrun" not in single.stdout and "kedro run --pipeline=fine_tuning" in single.stdout


def test_one_runtime_parameter_moves_the_evaluation_to_the_validation_songs(monkeypatch):
    params = loader("base", monkeypatch)["parameters"]
    assert params["inference"]["split"] == params["automated_eval"]["split"] == "test"
    valid = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        env="base",
        runtime_params={"evaluation_split": "valid"},
        **CONFIG_LOADER_ARGS,
    )["parameters"]
    assert valid["inference"]["split"] == valid["automated_eval"]["split"] == "valid"
    # The DSP rule meters the evaluated songs at their source rate: those are extracted too.
    assert valid["ingestion"]["source_rate"]["splits"] == ["valid"]


def test_the_evaluated_split_is_chosen_and_a_missing_one_is_named():
    import pandas as pd

    from anchormix_kedro.pipelines.inference.nodes import select_test_examples

    dataset = pd.DataFrame(
        {
            "example_id": [f"e{i}" for i in range(6)],
            "split": ["train", "valid", "valid", "test", "test", "test"],
            "label": ["balanced", "too_loud", "too_soft"] * 2,
            "excerpt_id": [f"x{i}" for i in range(6)],  # one anchor: every row its own key
            "target": ["vocals"] * 6,
            "gain_db": [0.0, 3.0, -3.0] * 2,
        }
    )
    chosen = select_test_examples(dataset, {"split": "valid", "max_test_examples": None})
    assert chosen["example_id"].tolist() == ["e1", "e2"]
    assert len(select_test_examples(dataset, {"max_test_examples": None})) == 3
    with pytest.raises(
        ValueError, match=r"no 'validation' examples \(its splits: test, train, valid\)"
    ):
        select_test_examples(dataset, {"split": "validation", "max_test_examples": None})
