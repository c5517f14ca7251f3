"""LoRA on the language model's projections (QLoRA when the base is loaded in 4 bits)."""

from __future__ import annotations

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

from anchormix_kedro.model.factory import (
    LANGUAGE_MODEL_PROJECTIONS,
    ModelSettings,
    disable_cpu_bf16_repacking,
)


def lora_model(model, settings: ModelSettings, lora: dict, gradient_checkpointing: bool):
    """Wrap a base model with LoRA on the language model's projections (QLoRA when 4-bit)."""
    if settings.load_in_4bit:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing
        )
        disable_cpu_bf16_repacking(model)
    options = {
        "r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "target_modules": LANGUAGE_MODEL_PROJECTIONS,
        **lora,
    }
    config = LoraConfig(task_type="CAUSAL_LM", **options)
    model = get_peft_model(model, config)
    return model


def trainable_parameter_count(model: torch.nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
