"""Whole pipelines through Kedro: a small synthetic corpus, broken inputs, the real clips."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import soundfile
from kedro.framework.session import KedroSession

from conftest import tiny_training, tone_stems, write_hq_song, write_stem_mp4

SMALL_SYNTHETIC = {
    "ingestion": {
        "excerpt": {"seconds": 4.0},
        "synthetic": {"n_songs": 6, "seconds": 5.0, "seed": 3, "instrumental_fraction": 0.2},
    },
    "perturbation": {"offsets": {"mode": "grid", "values": [0, -6, 3]}},
}


def run(project: Path, pipeline: str, params: dict | None = None) -> dict:
    try:
        with KedroSession.create(project_path=project, runtime_params=params or {}) as session:
            session.run(pipeline_name=pipeline)
            context = session.load_context()
    finally:
        # kedro-mlflow keeps a run that was open before the session; tests start clean.
        while mlflow.active_run():
            mlflow.end_run()
    return context.catalog


def test_data_pipeline_on_a_small_synthetic_corpus(project):
    catalog = run(project, "data", SMALL_SYNTHETIC)
    tracks = catalog.load("tracks")
    assert len(tracks) == 6 and set(tracks["source"]) == {"synthetic"}
    assert (project / "data/01_raw/synthetic_musdb/tracklist.csv").is_file()

    loudness = catalog.load("loudness")
    assert set(loudness["stem"]) == {"drums", "bass", "other", "vocals"}
    instrumental = loudness[(loudness["stem"] == "vocals") & (loudness["status"] == "silent")]
    examples = catalog.load("examples")
    # An instrumental song's vocals never form a pair; the summary counts them.
    assert not examples.merge(instrumental[["excerpt_id"]])["target"].eq("vocals").any()
    summary = catalog.load("perturbation_summary")
    assert summary["pairs_skipped"].get("drums>vocals: target silent", 0) == len(instrumental)
    assert np.allclose(
        examples["perturbed_relative_db"],
        examples["reference_relative_db"] + examples["gain_db"],
        atol=1e-3,
    )

    dataset = catalog.load("instruction_dataset")
    assert len(dataset) == len(examples) > 0
    assert dataset.groupby("song")["split"].nunique().max() == 1
    first = dataset.iloc[0]
    messages = json.loads(first["messages_anchor_target"])
    assert messages[-1]["content"] == first["advice"]
    audio = [c["audio_url"] for c in messages[1]["content"] if c["type"] == "audio"]
    assert audio[0] == f"excerpt://{first['excerpt_id']}/drums"
    assert len(json.loads(first["messages_target_only"])[1]["content"]) == 2  # one clip + text
    single = json.loads(first["messages_single_clip"])[1]["content"][0]["audio_url"]
    assert single.startswith(f"excerpt://{first['excerpt_id']}/drums+")

    excerpts = catalog.load("excerpts")
    record = excerpts[first["excerpt_id"]]()
    assert (
        record["audio"]["drums"].shape == (4 * 16000,)
        and record["audio"]["drums"].dtype == np.float32
    )

    card = catalog.load("dataset_card")
    assert f"{len(dataset)} conversations from 6 songs" in card
    assert (project / "data/08_reporting/reference_levels.png").stat().st_size > 10_000
    conventions = catalog.load("genre_conventions")
    train_songs = set(tracks.loc[tracks["split"] == "train", "song"])
    assert conventions.loc[conventions["genre"] == "all", "n_songs"].max() <= len(train_songs)


def test_synthetic_levels_are_measured_back_from_the_excerpts(project):
    from anchormix_kedro.instruction_data.synthetic import drawn_relative_lufs, plan_corpus

    catalog = run(project, "ingestion", SMALL_SYNTHETIC)
    loudness = catalog.load("loudness").pivot(index="song", columns="stem", values="lufs")
    plans = plan_corpus(6, 5.0, 3, instrumental_fraction=0.2)
    for plan in plans:
        drawn = drawn_relative_lufs(plan)
        # The excerpt is 4 s of a 5 s song, so its level may differ a little from the whole song's.
        assert loudness.loc[plan.name, "bass"] - loudness.loc[plan.name, "drums"] == pytest.approx(
            drawn["bass"], abs=1.5
        )


def _broken_root(root: Path) -> Path:
    write_hq_song(root, "train", "Good One", tone_stems(3.0))
    write_hq_song(root, "test", "Good Two", tone_stems(3.0))
    missing = write_hq_song(root, "train", "Missing Vocals", tone_stems(3.0))
    (missing / "vocals.wav").unlink()
    (root / "train" / "No Wavs").mkdir()
    nan_stems = tone_stems(3.0)
    nan_stems["other"][100, 0] = np.nan
    write_hq_song(root, "train", "Has NaN", nan_stems)
    rates = write_hq_song(root, "train", "Two Rates", tone_stems(3.0))
    soundfile.write(str(rates / "bass.wav"), tone_stems(3.0)["bass"], 48000)
    mono = tone_stems(3.0)
    mono["bass"] = mono["bass"][:, :1]
    write_hq_song(root, "train", "Mono Bass", mono)
    short = tone_stems(3.0)
    short["vocals"] = short["vocals"][:-2000]
    write_hq_song(root, "train", "Slightly Short", short)
    write_hq_song(root, "train", "Instrumental", tone_stems(3.0, vocals_amplitude=0.0))
    (root / "test" / "Corrupt.stem.mp4").write_bytes(b"\x00\x01garbage" * 200)
    whole = write_stem_mp4(root / "test" / "Whole.stem.mp4", tone_stems(3.0)).read_bytes()
    (root / "test" / "Truncated.stem.mp4").write_bytes(whole[: len(whole) // 3])
    return root


def test_broken_songs_are_skipped_with_reasons_and_the_run_goes_on(project, tmp_path):
    root = _broken_root(tmp_path / "musdb")
    catalog = run(
        project, "data", {"musdb_root": str(root), "ingestion": {"excerpt": {"seconds": 2.0}}}
    )
    summary = catalog.load("ingestion_summary")
    skipped = summary["songs_skipped"]
    assert set(skipped) == {
        "Missing Vocals",
        "No Wavs",
        "Has NaN",
        "Two Rates",
        "Corrupt",
        "Truncated",
    }
    assert "vocals.wav" in skipped["Missing Vocals"] and "no wav files" in skipped["No Wavs"]
    assert (
        "stem 'other' holds 1 NaN" in skipped["Has NaN"] and "bass 48000 Hz" in skipped["Two Rates"]
    )
    assert "Corrupt.stem.mp4" in skipped["Corrupt"] and "Truncated.stem.mp4" in skipped["Truncated"]
    assert summary["songs_ingested"] == 6  # good x2, mono, slightly short, instrumental, whole
    assert any("'bass' is mono" in w for w in summary["warnings"])
    assert any("Slightly Short" in w and "trimmed" in w for w in summary["warnings"])
    card = catalog.load("dataset_card")
    assert "Truncated" in card and "drums>vocals: target silent: 1" in card
    tracks = catalog.load("tracks")
    assert set(tracks.loc[tracks["folder"] == "test", "split"]) == {"test"}


def test_unknown_stem_in_configuration_fails_before_any_work(project, tmp_path):
    root = tmp_path / "musdb"
    write_hq_song(root, "train", "Good One", tone_stems(2.0))
    with pytest.raises(ValueError, match=r"unknown stem name\(s\) \['vocal'\] in pairs.targets"):
        run(project, "ingestion", {"musdb_root": str(root), "pairs": {"targets": ["vocal"]}})


def test_empty_musdb_root_is_a_clear_error(project, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="holds no songs"):
        run(project, "ingestion", {"musdb_root": str(tmp_path / "empty")})


def test_any_stem_can_anchor(project, tmp_path):
    root = tmp_path / "musdb"
    write_hq_song(root, "train", "Song A", tone_stems(2.0))
    write_hq_song(root, "train", "Song B", tone_stems(2.0))
    stems = ["drums", "bass", "other", "vocals"]
    catalog = run(
        project, "data", {"musdb_root": str(root), "pairs": {"anchors": stems, "targets": stems}}
    )
    examples = catalog.load("examples")
    assert len(examples[["anchor", "target"]].drop_duplicates()) == 12


@pytest.mark.musdb
def test_data_pipeline_on_the_real_musdb18_clips(project, shared_musdb):
    catalog = run(project, "data", {"musdb_root": str(shared_musdb)})
    tracks = catalog.load("tracks")
    assert len(tracks) == 94 and (tracks["split"] == "valid").sum() == 14
    assert (tracks["genre"] == "unknown").sum() == 0
    assert (tracks["split"] == "test").sum() > 0  # carved from train: MUSDB18-7 has no test folder
    dataset = catalog.load("instruction_dataset")
    assert dataset.groupby("song")["split"].nunique().max() == 1
    loudness = catalog.load("loudness")
    # Professional mixes: stems sit within a plausible loudness range of each other.
    vocals_vs_drums = loudness.pivot(index="song", columns="stem", values="lufs").eval(
        "vocals - drums"
    )
    assert -10 < vocals_vs_drums.median() < 15
    conventions: pd.DataFrame = catalog.load("genre_conventions")
    assert {"Pop/Rock", "all"} <= set(conventions["genre"])


def test_kedro_viz_build_shows_the_three_pipelines_and_their_datasets(project):
    import subprocess
    import sys

    kedro = Path(sys.executable).with_name("kedro")
    completed = subprocess.run(
        [str(kedro), "viz", "build"], cwd=project, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    graph = json.loads((project / "build" / "api" / "main").read_text())
    assert {"ingestion", "perturbation", "templating", "data"} <= {
        p["id"] for p in graph["pipelines"]
    }
    datasets = {n["name"] for n in graph["nodes"] if n["type"] == "data"}
    assert {
        "musdb_corpus",
        "excerpts",
        "loudness",
        "examples",
        "instruction_dataset",
        "dataset_card",
    } <= datasets
    assert {"raw", "primary", "model_input", "reporting"} <= set(graph["layers"])


TINY_TRAINING = {
    **SMALL_SYNTHETIC,
    "ingestion": {  # the tiny test model hears 2 s: excerpts as long as that
        **SMALL_SYNTHETIC["ingestion"],
        "excerpt": {"seconds": 2.0},
    },
    **tiny_training(steps=2, save_steps=1),
    "inference": {"max_test_examples": 6, "max_new_tokens": 8},
}


def test_training_and_inference_pipelines_track_everything_in_mlflow(project):
    catalog = run(project, "__default__", TINY_TRAINING)
    advice = catalog.load("advice_by_system")
    assert set(advice["system"]) == {
        "advisor", "no_anchor", "single_clip", "generic_base", "text_only", "dsp_baseline"
    }  # fmt: skip
    test_ids = set(catalog.load("test_examples")["example_id"])
    assert all(set(group["example_id"]) == test_ids for _, group in advice.groupby("system"))
    # Every system answers every test example in every condition.
    assert advice.groupby(["system", "condition"]).size().eq(len(test_ids)).all()
    assert set(advice["condition"]) == {"as_mixed", "gain_staged", "anchor_swapped"}
    assert (advice["latency_s"] > 0).all()
    dsp = advice[advice["system"] == "dsp_baseline"]["advice"]
    assert dsp.str.contains("the drums").all()  # worded through the dataset's templates

    report = catalog.load("advisor.training_report")
    assert 0.0 <= report["metrics"]["direction_accuracy"] <= 1.0
    package = Path(catalog.load("advisor.model_package"))
    assert json.loads((package / "anchormix.json").read_text())["formulation"] == "anchor_target"
    no_anchor = json.loads(
        (Path(catalog.load("no_anchor.model_package")) / "anchormix.json").read_text()
    )
    assert no_anchor["formulation"] == "target_only"
    # Without an anchor nothing levels the target: it plays as the session delivers it.
    assert no_anchor["front_end"]["anchor_level_db"] is None
    assert (
        json.loads((package / "anchormix.json").read_text())["front_end"]["anchor_level_db"] == -15
    )

    # One parent run for the `kedro run`, one nested run per system (Compare overlays them).
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "anchormix_kedro"]
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.run_name == "__default__ (local)" and parent.info.status == "FINISHED"
    assert parent.data.params["training.lora.r"] == "32"
    assert parent.data.tags["anchormix.variant"] == "advisor, no_anchor, single_clip"
    dataset_version = parent.data.tags["anchormix.dataset_version"]
    # Each system's numbers go to its own nested run (tests/test_tracking_ui.py), none to
    # the parent.
    assert not [k for k in parent.data.metrics if k.startswith("automated_eval")]
    children = {r.info.run_name: r for r in runs if r.info.run_id != parent.info.run_id}
    assert {"advisor", "no_anchor", "single_clip", "generic_base", "text_only"} <= set(children)
    assert children["text_only"].data.tags["anchormix.kind"] == "baseline"
    for name, formulation in (("advisor", "anchor_target"), ("no_anchor", "target_only")):
        child = children[name]
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.params["training.formulation"] == formulation
        tags = child.data.tags
        assert tags["anchormix.variant"] == name and tags["anchormix.formulation"] == formulation
        assert tags["anchormix.base_model"] == "tiny"
        assert tags["anchormix.dataset_version"] == dataset_version
        assert len(tags["mlflow.source.git.commit"]) == 40
        # The same keys in every variant: losses per step, validation and test metrics.
        metrics = child.data.metrics
        assert {"train/loss", "eval/loss", "pretrain/loss", "valid/direction_accuracy"} <= set(
            metrics
        )
        assert len(client.get_metric_history(child.info.run_id, "train/loss")) == 2
        assert {"as_mixed/direction_accuracy", "gain_staged/direction_accuracy"} <= set(metrics)
        (model,) = client.search_logged_models(
            [experiment.experiment_id], filter_string=f"source_run_id = '{child.info.run_id}'"
        )
        assert model.name == name and model.tags["anchormix.formulation"] == formulation


def test_the_grid_of_ablations_trains_one_variant_per_factor_on_paired_examples(
    project, monkeypatch
):
    import shutil

    from conftest import PROJECT_ROOT

    shutil.copytree(PROJECT_ROOT / "conf" / "ablations", project / "conf" / "ablations")
    monkeypatch.setenv("KEDRO_ENV", "ablations")
    # Songs that all sing, so every pair has training songs (the conventions) and every
    # test example, so anchor_swapped finds two test songs with each anchor.
    synthetic = {"n_songs": 12, "seconds": 5.0, "seed": 3, "instrumental_fraction": 0.0}
    params = {
        **TINY_TRAINING,
        "ingestion": {**TINY_TRAINING["ingestion"], "synthetic": synthetic},
        "inference": {"max_test_examples": None, "max_new_tokens": 8},
    }
    for stage in ("training", "inference"):
        with KedroSession.create(project_path=project, env="ablations", runtime_params=params) as s:
            s.run(pipeline_name=stage)
            catalog = s.load_context().catalog
        while mlflow.active_run():
            mlflow.end_run()
    examples = catalog.load("test_examples").set_index("example_id")
    advice = catalog.load("advice_by_system").join(
        examples[["anchor", "excerpt_id", "target", "gain_db"]], on="example_id"
    )
    systems = set(advice["system"])
    assert {"advisor", "anchor_vocals", "anchor_bass", "no_genre", "metered_advisor"} <= systems
    assert {"text_only", "dsp_baseline"} <= systems and "generic_base" not in systems
    anchors = advice.groupby("system")["anchor"].agg(set)
    assert anchors["advisor"] == anchors["dsp_baseline"] == anchors["text_only"] == {"drums"}
    assert anchors["anchor_vocals"] == {"vocals"} and anchors["anchor_bass"] == {"bass"}
    # Each of the vocal-anchored examples pairs with the advisor's on (excerpt, target, offset).
    keys = ["excerpt_id", "target", "gain_db"]
    advisor_keys = set(map(tuple, advice[advice["system"] == "advisor"][keys].to_numpy()))
    vocal_keys = set(map(tuple, advice[advice["system"] == "anchor_vocals"][keys].to_numpy()))
    assert vocal_keys and vocal_keys <= advisor_keys
    # Each package carries what its inference needs to ask it the same way.
    manifest = json.loads(
        (Path(catalog.load("metered_advisor.model_package")) / "anchormix.json").read_text()
    )
    assert manifest["prompt"]["meter"] is True and manifest["anchor"] == "drums"
    manifest = json.loads(
        (Path(catalog.load("no_genre.model_package")) / "anchormix.json").read_text()
    )
    assert manifest["prompt"]["genre"] is False
