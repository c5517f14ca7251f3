"""Every setting only conf/pace uses, run end to end on a tiny Qwen2-Audio saved with
save_pretrained as the stand-in for the 7B checkpoint: the pretrained-loading path, 4-bit
QLoRA (on the CPU through bitsandbytes), bf16 compute, gradient checkpointing and
accumulation, scratch paths and the tracking URI from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anchormix_kedro.model.factory import ModelSettings, build_tiny_base
from anchormix_kedro.model.front_end import QWEN2_AUDIO_FRONT_END
from conftest import TINY_ARCHITECTURE
from test_preflight import cli_project

BIN = Path(sys.executable).parent
SMALL = {
    "model.require_cuda": "false",  # QLoRA on the CPU: the stand-in's stated fallback
    "ingestion.synthetic.n_songs": "6",
    "ingestion.synthetic.seconds": "4.0",
    "training.max_train_examples": "8",
    "training.max_eval_examples": "4",
    "training.finetune.args.max_steps": "2",
    "training.finetune.args.gradient_accumulation_steps": "2",
    "training.finetune.args.eval_steps": "1",
    "training.finetune.args.save_steps": "1",
    "training.finetune.args.logging_steps": "1",
    "training.direction_eval.max_examples": "2",
    "training.direction_eval.batch_size": "2",
}


@pytest.mark.slow
def test_the_pace_environment_trains_a_saved_stand_in_and_the_cli_uses_it(tmp_path):
    pytest.importorskip("bitsandbytes")
    standin = tmp_path / "Qwen2-Audio-standin"
    settings = ModelSettings.from_params(
        {
            "source": "tiny",
            "front_end": QWEN2_AUDIO_FRONT_END.as_dict(),
            "tiny": {"seed": 0, **TINY_ARCHITECTURE, "audio_seconds": 30},
        }
    )
    texts = ["Relative to the drums, the vocal is about 4 dB too loud.", "Audio 1: Audio 2:"] * 20
    model, processor = build_tiny_base(settings, texts)
    model.save_pretrained(standin)
    processor.save_pretrained(standin)

    project = cli_project(tmp_path)
    (project / "conf" / "local" / "parameters.yml").write_text(
        "perturbation:\n  offsets: {mode: grid, values: [0, -6, 6]}\n"
    )
    scratch = tmp_path / "scratch"
    environment = {
        **os.environ,
        "KEDRO_ENV": "pace",
        "ANCHORMIX_BASE_MODEL": str(standin),
        "ANCHORMIX_DATA_ROOT": str(scratch),
        "ANCHORMIX_MLFLOW_URI": f"sqlite:///{tmp_path}/mlflow.db",
    }
    environment.pop("MUSDB_PATH", None)
    params = ",".join(f"{k}={v}" for k, v in SMALL.items())
    run = subprocess.run(
        [str(BIN / "kedro"), "run", "--pipeline=training", "--env=pace", "--params", params],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    (package,) = (scratch / "06_models" / "advisor").glob("*/advisor")
    manifest = json.loads((package / "anchormix.json").read_text())
    assert manifest["base"] == str(standin)
    assert manifest["model_settings"]["load_in_4bit"] and manifest["model_settings"]["dtype"] == (
        "bfloat16"
    )
    (arguments,) = sorted(
        (scratch / "06_models" / "work").glob("finetune-*/checkpoints/*/training_args.bin")
    )[-1:]
    used = torch.load(arguments, weights_only=False)
    assert used.bf16 and used.gradient_checkpointing and used.gradient_accumulation_steps == 2
    assert (tmp_path / "mlflow.db").is_file()

    song = sorted((scratch / "01_raw" / "synthetic_musdb" / "train").iterdir())[0]
    advise = subprocess.run(
        [str(BIN / "anchormix"), "advise", str(song), "--model", str(package), "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert advise.returncode == 0, advise.stderr[-2000:]
    result = json.loads(advise.stdout)
    assert result["targets"] and all("model" in target for target in result["targets"])
