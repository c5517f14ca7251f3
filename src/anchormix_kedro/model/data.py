"""From conversations and cached features to model inputs: encoding, label masking, batching."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from anchormix_kedro.advice_language.wording import ClipPart, audio_items, audio_uri, clip_parts
from anchormix_kedro.model.features import (
    audio_token_count,
    concatenate_raw,
    equalisation_curve_db,
    features_for_clip,
)
from anchormix_kedro.model.front_end import LOUDNESS, AnchorLevel

IGNORE_INDEX = -100  # positions the loss ignores: the prompt, the clips and padding
GAP_FRAMES = 50  # 0.5 s of silence between the anchor and the target in a single clip
# An anchor below this mel-power level is silence: levelling it would amplify nothing but
# the floor, so such a conversation plays as recorded.
SILENT_ANCHOR_DB = -90.0
#: A gain that turns any clip into digital silence: every frame lands on Whisper's floor.
SILENCE_GAIN_DB = -200.0


class FeatureStore:
    """Cached raw log-mel frames per ``(excerpt, stem)``, loaded on first use and kept.

    ``partitions`` maps an excerpt id to its record ``{"meta": {...}, "audio": {stem: raw}}``
    or to a callable returning it (Kedro's lazy partitions).
    """

    def __init__(self, partitions: Mapping[str, Any]) -> None:
        self._partitions = partitions
        self._loaded: dict[str, dict] = {}

    def raw(self, excerpt_id: str, stem: str) -> tuple[np.ndarray, int]:
        if excerpt_id not in self._loaded:
            if excerpt_id not in self._partitions:
                raise KeyError(
                    f"no cached features for excerpt {excerpt_id!r}; re-run the fine_tuning pipeline's feature node"
                )
            record = self._partitions[excerpt_id]
            self._loaded[excerpt_id] = record() if callable(record) else record
        record = self._loaded[excerpt_id]
        return record["audio"][stem], int(record["meta"]["valid_frames"][stem])

    def part(self, part: ClipPart) -> tuple[np.ndarray, int]:
        """A clip part's raw frames with its EQ applied (its gain is applied later)."""
        raw, valid = self.raw(part.excerpt_id, part.stem)
        if not part.equalisation:
            return raw, valid
        eq = part.equalisation
        curve = equalisation_curve_db(raw.shape[0], eq.tilt_db, eq.bell_db, eq.bell_at)
        return raw + (curve / np.float32(10.0))[:, None], valid


class EqualisationLoudness:
    """How many dB louder a clip part's EQ makes it, read off the cached mel frames with the
    levelling's BS.1770 meter (:class:`AnchorLevel`, ``loudness``); 0 without an EQ or for a
    silent clip. Each plain clip is measured once, however many comparisons colour it."""

    def __init__(self, store: FeatureStore, sampling_rate: int) -> None:
        self._store = store
        self._meter = AnchorLevel(0.0, LOUDNESS, sampling_rate)
        self._plain: dict[tuple[str, str], float] = {}

    def __call__(self, part: ClipPart) -> float:
        if not part.equalisation:
            return 0.0
        key = (part.excerpt_id, part.stem)
        raw, valid = self._store.raw(*key)
        if key not in self._plain:
            self._plain[key] = self._meter.of_clip(raw, valid)
        before = self._plain[key]
        after = self._meter.of_clip(self._store.part(part)[0], valid)
        return after - before if np.isfinite(before) and np.isfinite(after) else 0.0


def anchor_levelling_db(
    store: FeatureStore, uris: Sequence[str], n_frames: int, anchor_level: AnchorLevel | None
) -> float:
    """The common gain (dB) that plays a conversation's first clip part at ``anchor_level``.

    The first part is the anchor (or, without one, the target). One gain for every clip
    keeps their balance and removes the session's absolute level, which carries no answer:
    the same mix 12 dB quieter sounds the same to the model. ``None``: no levelling.
    """
    if anchor_level is None or not uris:
        return 0.0
    first = clip_parts(uris[0])[0]
    raw, valid = store.part(first)
    level = anchor_level.of_clip(raw, min(valid, n_frames))
    # A silent anchor, or one played silent (the text-only floor), stays silent: levelling
    # it would apply the gain that silence lacks.
    if level < SILENT_ANCHOR_DB or level + first.gain_db < SILENT_ANCHOR_DB:
        return 0.0
    return float(anchor_level.db) - (level + first.gain_db)


def silenced(messages: Sequence[dict]) -> list[dict]:
    """A copy of a conversation whose every clip plays as silence (the same clips, the
    same lengths and prompt): what a model answers from the words alone."""
    copied = json.loads(json.dumps(list(messages)))
    for item in audio_items(copied):
        parts = clip_parts(item["audio_url"])
        last = parts[-1]
        item["audio_url"] = audio_uri(
            last.excerpt_id,
            [part.stem for part in parts],
            SILENCE_GAIN_DB,
            SILENCE_GAIN_DB if len(parts) > 1 else 0.0,
            parts[0].excerpt_id if len(parts) > 1 else None,
        )
    return copied


def clip_features(
    store: FeatureStore, uri: str, n_frames: int, gain_db: float = 0.0
) -> tuple[np.ndarray, int]:
    """Features ``(n_mels, n_frames)`` of one clip of a conversation and its valid frame count.

    ``gain_db`` is added to every stem of the clip (the conversation's levelling). A clip
    of two stems (the single-clip formulation) gives each stem an equal share of the
    window around a short silent gap, so the model hears both, whatever the excerpt length.
    """
    parts = clip_parts(uri)
    if len(parts) == 1:
        raw, valid = store.part(parts[0])
        return features_for_clip(raw, parts[0].gain_db + gain_db, n_frames), min(valid, n_frames)
    if len(parts) != 2:
        raise ValueError(f"a clip joins at most two stems (anchor, target): {uri!r}")
    share = max(1, (n_frames - GAP_FRAMES) // 2)
    (first, first_valid), (second, second_valid) = (store.part(p) for p in parts)
    first_valid, second_valid = min(first_valid, share), min(second_valid, share)
    joined = concatenate_raw(
        first[:, :first_valid] + np.float32((parts[0].gain_db + gain_db) / 10.0),
        first_valid,
        second[:, :second_valid],
        GAP_FRAMES,
        parts[1].gain_db + gain_db,
    )
    return features_for_clip(joined, 0.0, n_frames), min(
        first_valid + GAP_FRAMES + second_valid, n_frames
    )


def encode_conversation(
    messages: Sequence[dict],
    processor,
    store: FeatureStore,
    with_answer: bool = True,
    anchor_level: AnchorLevel | None = None,
) -> dict[str, Any]:
    """Token ids (audio placeholders expanded), labels masked to the answer, and clip features.

    ``anchor_level``: the front end's levelling (:func:`anchor_levelling_db`).
    """
    tokenizer = processor.tokenizer
    n_frames = processor.feature_extractor.nb_max_frames
    prompt_messages = list(messages[:-1]) if messages[-1]["role"] == "assistant" else list(messages)
    uris = [item["audio_url"] for item in audio_items(prompt_messages)]
    levelling = anchor_levelling_db(store, uris, n_frames, anchor_level)
    clips = [clip_features(store, uri, n_frames, levelling) for uri in uris]
    prompt = processor.apply_chat_template(
        prompt_messages, add_generation_prompt=True, tokenize=False
    )
    pieces = prompt.split(processor.audio_token)
    if len(pieces) != len(clips) + 1:
        raise ValueError(
            f"the chat template placed {len(pieces) - 1} audio tokens for {len(clips)} clips"
        )
    # Expand each placeholder to the number of audio tokens its clip becomes in the model.
    expanded = pieces[0] + "".join(
        processor.audio_token * audio_token_count(v) + p
        for (_, v), p in zip(clips, pieces[1:], strict=True)
    )
    prompt_ids = tokenizer(expanded, add_special_tokens=False)["input_ids"]
    answer_ids: list[int] = []
    if with_answer:
        answer_ids = tokenizer(
            messages[-1]["content"] + tokenizer.eos_token, add_special_tokens=False
        )["input_ids"]
    features = (
        np.stack([f for f, _ in clips]) if clips else np.zeros((0, 128, n_frames), np.float32)
    )
    mask = np.zeros((len(clips), n_frames), dtype=np.int64)
    for i, (_, valid) in enumerate(clips):
        mask[i, :valid] = 1
    return {
        "input_ids": prompt_ids + answer_ids,
        "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids,
        "input_features": features,
        "feature_attention_mask": mask,
    }


class ConversationDataset(torch.utils.data.Dataset):
    """Conversations of one formulation, encoded on access (features come from the cache)."""

    def __init__(
        self,
        conversations: Sequence[str | list],
        processor,
        store: FeatureStore,
        with_answer: bool = True,
        anchor_level: AnchorLevel | None = None,
    ):
        self._conversations = conversations
        self._processor = processor
        self._store = store
        self._with_answer = with_answer
        self._anchor_level = anchor_level

    def __len__(self) -> int:
        return len(self._conversations)

    def __getitem__(self, index: int) -> dict[str, Any]:
        messages = self._conversations[index]
        if isinstance(messages, str):
            messages = json.loads(messages)
        return encode_conversation(
            messages, self._processor, self._store, self._with_answer, self._anchor_level
        )


class AudioChatCollator:
    """Pads token ids (left for generation, right for training) and stacks every clip's features."""

    def __init__(self, pad_token_id: int, padding_side: str = "right") -> None:
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(item["input_ids"]) for item in batch)

        def pad(values: list[int], fill: int) -> list[int]:
            padding = [fill] * (longest - len(values))
            return padding + values if self.padding_side == "left" else values + padding

        input_ids = torch.tensor([pad(item["input_ids"], self.pad_token_id) for item in batch])
        attention = torch.tensor([pad([1] * len(item["input_ids"]), 0) for item in batch])
        inputs = {"input_ids": input_ids, "attention_mask": attention}
        if "labels" in batch[0]:
            inputs["labels"] = torch.tensor([pad(item["labels"], IGNORE_INDEX) for item in batch])
        features = [item["input_features"] for item in batch if len(item["input_features"])]
        if features:
            inputs["input_features"] = torch.from_numpy(np.concatenate(features))
            inputs["feature_attention_mask"] = torch.from_numpy(
                np.concatenate([item["feature_attention_mask"] for item in batch])
            )
        return inputs
