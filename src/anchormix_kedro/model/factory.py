"""One factory for the base model and processor: a model id or path, or the tiny default.

After construction everything is the same code for both: LoRA or QLoRA on top, training,
saving, reloading and generation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoProcessor, BitsAndBytesConfig, Qwen2AudioForConditionalGeneration

from anchormix_kedro.model.front_end import QWEN2_AUDIO_FRONT_END, FrontEnd
from anchormix_kedro.model.tiny import tiny_config, tiny_processor

logger = logging.getLogger(__name__)

TINY, PRETRAINED = "tiny", "pretrained"
#: LoRA goes into the language model's projections only: the audio tower has q/k/v too and stays frozen.
LANGUAGE_MODEL_PROJECTIONS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
)


@dataclass(frozen=True)
class ModelSettings:
    """The ``model`` parameters block."""

    source: str = TINY
    name_or_path: str | None = None
    cache_dir: str | None = None
    dtype: str = "float32"
    load_in_4bit: bool = False
    # The preflight stops a run without CUDA when set (conf/pace); else QLoRA may run on CPU.
    require_cuda: bool = False
    quantization: dict = field(default_factory=dict)
    attn_implementation: str | None = "sdpa"
    tiny: dict = field(default_factory=dict)
    # The feature front end (the `features` parameters): the tiny base's processor is built
    # for it; a pretrained base brings its own processor, which must match it.
    front_end: dict | None = None

    @classmethod
    def from_params(cls, params: dict) -> ModelSettings:
        settings = cls(**params)
        if settings.source not in (TINY, PRETRAINED):
            raise ValueError(
                f"model.source must be '{TINY}' or '{PRETRAINED}', got {settings.source!r}"
            )
        if settings.source == PRETRAINED and not settings.name_or_path:
            raise ValueError("model.name_or_path is required when model.source is 'pretrained'")
        if settings.front_end is None:
            raise ValueError("model.front_end is required (conf/base/globals.yml: front_end)")
        return settings

    @property
    def front_end_settings(self) -> FrontEnd:
        """The front end as settings (packages written before it was recorded: the legacy one)."""
        return FrontEnd.from_params(self.front_end) if self.front_end else QWEN2_AUDIO_FRONT_END

    @property
    def torch_dtype(self) -> torch.dtype:
        try:
            return getattr(torch, self.dtype)
        except AttributeError:
            raise ValueError(
                f"model.dtype {self.dtype!r} is not a torch dtype (float32, bfloat16, float16)"
            ) from None


def build_tiny_base(settings: ModelSettings, texts: Iterable[str]):
    """A randomly initialised tiny Qwen2-Audio and its processor (tokenizer trained on ``texts``)."""
    tiny = settings.tiny
    processor = tiny_processor(
        texts, int(tiny["vocab_size"]), settings.front_end_settings, int(tiny["audio_seconds"])
    )
    config = tiny_config(processor, dict(tiny["audio"]), dict(tiny["text"]))
    torch.manual_seed(int(tiny["seed"]))
    model = Qwen2AudioForConditionalGeneration(config)
    return model, processor


def quantization_config(settings: ModelSettings) -> BitsAndBytesConfig | None:
    """4-bit NF4 (QLoRA) when ``load_in_4bit``; the projector and head stay in full precision."""
    if not settings.load_in_4bit:
        return None
    options = {
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": settings.dtype,
        "llm_int8_skip_modules": ["multi_modal_projector", "lm_head"],
        **settings.quantization,
    }
    options["bnb_4bit_compute_dtype"] = getattr(torch, options["bnb_4bit_compute_dtype"])
    return BitsAndBytesConfig(load_in_4bit=True, **options)


def load_base(
    settings: ModelSettings, name_or_path: str | Path, device_map: str | dict | None = None
):
    """Load a base model (a hub id or a saved directory) and its processor, quantised if asked."""
    name_or_path = str(name_or_path)
    processor = AutoProcessor.from_pretrained(name_or_path, cache_dir=settings.cache_dir)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(
        name_or_path,
        cache_dir=settings.cache_dir,
        dtype=settings.torch_dtype,
        quantization_config=quantization_config(settings),
        attn_implementation=settings.attn_implementation,
        device_map=device_map,
    )
    disable_cpu_bf16_repacking(model)
    return model, processor


def disable_cpu_bf16_repacking(model: torch.nn.Module) -> int:
    """Keep bitsandbytes' 4-bit layers trainable on CPUs with AVX512-BF16.

    There, the first no-grad forward repacks the weights in place and every later training
    forward fails ("a view of a leaf Variable that requires grad ..."): switch it off
    before the first forward. Returns how many layers were changed.
    """
    changed = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed
