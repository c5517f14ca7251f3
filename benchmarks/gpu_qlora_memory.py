"""Peak GPU memory and seconds per step of full-size Qwen2-Audio-7B under QLoRA.

Memory and speed do not depend on the weights' values, so the model is built from
Qwen2-Audio-7B's published architecture with random weights (no download), saved once in
bf16, and loaded back through the project's own factory with 4-bit NF4 quantisation,
LoRA on the language model's projections and gradient checkpointing. Each step trains on
one conversation with two 30 s clips (batch size 1) through the project's own encoding
and collator.

    python benchmarks/gpu_qlora_memory.py --steps 5 --workdir /tmp/qwen2audio-random

``--scale tiny`` runs the same path on a miniature of the architecture (for a CPU check).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import (
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
)

from anchormix_kedro.advice_language.wording import audio_uri, conversation
from anchormix_kedro.model.adapter import lora_model
from anchormix_kedro.model.data import AudioChatCollator, FeatureStore, encode_conversation
from anchormix_kedro.model.factory import ModelSettings, load_base
from anchormix_kedro.model.features import log_mel_record
from anchormix_kedro.model.front_end import QWEN2_AUDIO_FRONT_END as QWEN2_AUDIO
from anchormix_kedro.model.tiny import tiny_processor

#: Qwen/Qwen2-Audio-7B-Instruct's published config.json (architecture fields).
QWEN2_AUDIO_7B = {
    "audio_config": {
        "d_model": 1280,
        "encoder_attention_heads": 20,
        "encoder_ffn_dim": 5120,
        "encoder_layers": 32,
        "num_mel_bins": 128,
        "max_source_positions": 1500,
    },
    "text_config": {
        "model_type": "qwen2",
        "vocab_size": 156032,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
    },
    "audio_token_index": 151646,
}
TINY_SCALE = {
    "audio_config": {
        **QWEN2_AUDIO_7B["audio_config"],
        "d_model": 64,
        "encoder_attention_heads": 4,
        "encoder_ffn_dim": 128,
        "encoder_layers": 2,
    },
    "text_config": {
        **QWEN2_AUDIO_7B["text_config"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
    },
}


def build_random_checkpoint(workdir: Path, scale: str) -> Path:
    """Save a randomly initialised Qwen2-Audio of the chosen scale, with a processor, once."""
    target = workdir / f"qwen2-audio-{scale}"
    if (target / "config.json").is_file():
        return target
    texts = [
        "Relative to the drums, the vocal is about 4 dB too loud: pull the vocal fader down by about 4 dB."
    ]
    processor = tiny_processor(texts * 20, 400, QWEN2_AUDIO, audio_seconds=30)
    architecture = QWEN2_AUDIO_7B if scale == "full" else TINY_SCALE
    # The tokenizer is local and small; the embedding keeps the real vocabulary size.
    config = Qwen2AudioConfig(
        audio_config=architecture["audio_config"],
        text_config=architecture["text_config"],
        audio_token_index=processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = Qwen2AudioForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(target, max_shard_size="5GB")
    processor.save_pretrained(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/qwen2audio-random"))
    parser.add_argument("--scale", choices=["full", "tiny"], default="full")
    parser.add_argument(
        "--output", type=Path, default=Path("data/08_reporting/gpu_qlora_memory.json")
    )
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    started = time.perf_counter()
    checkpoint = build_random_checkpoint(args.workdir, args.scale)
    build_seconds = time.perf_counter() - started
    settings = ModelSettings.from_params(
        {
            "source": "pretrained",
            "name_or_path": str(checkpoint),
            "dtype": "bfloat16" if cuda else "float32",
            "load_in_4bit": True,
            "quantization": {"bnb_4bit_compute_dtype": "bfloat16" if cuda else "float32"},
        }
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    model, processor = load_base(settings, checkpoint, device_map={"": 0} if cuda else None)
    model = lora_model(
        model,
        settings,
        {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05},
        gradient_checkpointing=cuda,
    )
    if cuda:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    loaded_gb = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")

    extractor = QWEN2_AUDIO.extractor()
    rng = np.random.default_rng(0)
    clips = {
        stem: (
            0.1 * rng.standard_normal(QWEN2_AUDIO.max_clip_seconds * QWEN2_AUDIO.sampling_rate)
        ).astype(np.float32)
        for stem in ("drums", "vocals")
    }
    store = FeatureStore({"random": log_mel_record(clips, extractor)})
    messages = conversation(
        "You are an experienced mixing engineer.",
        [audio_uri("random", "drums"), audio_uri("random", "vocals", 4.0)],
        "Relative to the drums, is the vocal balanced?",
        "Relative to the drums, the vocal is about 4 dB too loud: pull the vocal fader down by about 4 dB.",
    )
    batch = AudioChatCollator(processor.tokenizer.pad_token_id)(
        [encode_conversation(messages, processor, store)]
    )
    device = next(p for p in model.parameters() if p.requires_grad).device
    batch = {k: v.to(device) for k, v in batch.items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    model.train()
    timings = []
    for _ in range(args.steps):
        step_started = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - step_started)
    result = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "scale": args.scale,
        "sequence_tokens": int(batch["input_ids"].shape[1]),
        "clips": 2,
        "clip_seconds": 30,
        "batch_size": 1,
        "gradient_checkpointing": cuda,
        "loaded_gib": round(loaded_gb, 2) if cuda else None,
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "seconds_per_step": round(float(np.median(timings[1:] or timings)), 3),
        "build_checkpoint_s": round(build_seconds, 1),
        "loss": float(loss.detach().float().cpu()),
    }
    print(json.dumps(result, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
