"""A tiny Qwen2-Audio built from a configuration, with a tokenizer trained on the dataset's text.

It needs no download, runs on a laptop CPU, and exercises exactly the code paths of
Qwen2-Audio-7B-Instruct: the same classes, processor, chat template and special tokens.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2AudioConfig,
    Qwen2AudioProcessor,
)

from anchormix_kedro.model.front_end import FrontEnd

#: Qwen2-Audio's special tokens: end of text, chat turns, audio placeholders.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|audio_bos|>",
    "<|AUDIO|>",
    "<|audio_eos|>",
]
_CHAT_SCAFFOLD = ["system\n", "user\n", "assistant\n", "Audio 1: ", "Audio 2: ", "\n"]


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (Qwen2's kind) trained on ``texts``; any text stays encodable."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*texts, *_CHAT_SCAFFOLD], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",  # generation appends on the right
    )


def tiny_processor(
    texts: Iterable[str], vocab_size: int, front_end: FrontEnd, audio_seconds: int
) -> Qwen2AudioProcessor:
    """Processor with a locally trained tokenizer and the front end's features of the first
    ``audio_seconds`` of each clip."""
    extractor = front_end.extractor(chunk_length=audio_seconds)
    return Qwen2AudioProcessor(
        feature_extractor=extractor, tokenizer=train_tokenizer(texts, vocab_size)
    )


def tiny_config(processor: Qwen2AudioProcessor, audio: dict, text: dict) -> Qwen2AudioConfig:
    """A small Qwen2-Audio configuration matched to the processor's vocabulary and clip length."""
    tokenizer = processor.tokenizer
    # The encoder takes exactly 2 * max_source_positions mel frames (its convolution has stride 2).
    max_source_positions = processor.feature_extractor.nb_max_frames // 2
    return Qwen2AudioConfig(
        audio_config={
            "num_mel_bins": processor.feature_extractor.feature_size,
            "max_source_positions": max_source_positions,
            **audio,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 4096,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            **text,
        },
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
