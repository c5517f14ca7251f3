"""Loading a trained package and generating advice in batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoProcessor

from anchormix_kedro.model.data import AudioChatCollator, FeatureStore, encode_conversation
from anchormix_kedro.model.factory import ModelSettings, load_base
from anchormix_kedro.model.front_end import AnchorLevel
from anchormix_kedro.model.package import (
    ADAPTER,
    DEFAULT_ADAPTER,
    member_adapters,
    read_manifest,
)
from anchormix_kedro.model.verdict_decoding import (
    GREEDY,
    DecodingSettings,
    MedianDecoder,
    adapter_names,
)

logger = logging.getLogger(__name__)


def load_package(package: str | Path, with_adapter: bool = True, device_map: str | None = None):
    """The model of a package (its base, plus the adapter unless ``with_adapter`` is False;
    every member's adapter for an ensemble, the first active).

    Returns ``(model, processor, manifest)``. The processor saved with the package is the
    one training used, so token ids and features match exactly.
    """
    package = Path(package)
    manifest = read_manifest(package)
    settings = ModelSettings(**manifest["model_settings"])
    base = package / "base" if (package / "base").is_dir() else settings.name_or_path
    if not torch.cuda.is_available() and settings.load_in_4bit:
        logger.info("No GPU: 4-bit quantisation runs on the CPU through bitsandbytes")
    model, _ = load_base(replace(settings), base, device_map=device_map)
    if with_adapter:
        model = PeftModel.from_pretrained(model, package / ADAPTER)
        for member in member_adapters(package):
            model.load_adapter(member, adapter_name=member.name)
        model.set_adapter(DEFAULT_ADAPTER)
    processor = AutoProcessor.from_pretrained(package / "processor")
    model.eval()
    return model, processor, manifest


@torch.inference_mode()
def generate(
    model,
    processor,
    conversations: Sequence[list[dict]],
    store: FeatureStore,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    anchor_level: AnchorLevel | None = None,
) -> list[tuple[str, float]]:
    """Greedy advice for each conversation (its assistant turn is ignored), with seconds per item.

    ``anchor_level`` is the package's front end's (:func:`package_front_end`).

    Latency is the batch's wall time shared equally among its items.
    """
    tokenizer = processor.tokenizer
    collator = AudioChatCollator(tokenizer.pad_token_id, padding_side="left")
    end_ids = list({tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")} - {None})
    device = next(model.parameters()).device
    results: list[tuple[str, float]] = []
    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start : start + batch_size]
        started = time.perf_counter()
        items = [
            encode_conversation(messages, processor, store, False, anchor_level)
            for messages in chunk
        ]
        for item in items:
            item.pop("labels")
        inputs = {k: v.to(device) for k, v in collator(items).items()}
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=end_ids,
            pad_token_id=tokenizer.pad_token_id,
        )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        seconds = (time.perf_counter() - started) / len(chunk)
        results.extend((text.strip(), seconds) for text in texts)
    return results


def decode_advice(
    model,
    processor,
    conversations: Sequence[list[dict]],
    pairs: Sequence[tuple[str | None, str]],
    store: FeatureStore,
    decoding: DecodingSettings,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    anchor_level: AnchorLevel | None = None,
) -> list[tuple[str, float]]:
    """Advice for each conversation as ``decoding`` says: greedy (:func:`generate`) or the
    median of the model's belief (:class:`MedianDecoder`). ``pairs``: each conversation's
    ``(anchor, target)``, the anchor ``None`` for the target-only formulation."""
    if decoding.method == GREEDY:
        members = len(adapter_names(model))
        if members > 1:
            logger.info("Greedy decoding answers with the first of the %d members alone", members)
        return generate(
            model, processor, conversations, store, batch_size, max_new_tokens, anchor_level
        )
    decoder = MedianDecoder(model, processor, decoding)
    return decoder.advise_all(conversations, pairs, store, anchor_level)
