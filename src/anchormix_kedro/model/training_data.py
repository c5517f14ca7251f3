"""Data preparation: the instruction dataset -> what one fine-tuning learns from.

The variant's conversations (its formulation's column, training examples repeated by
label, sampled and coloured), its validation conversations, and for the tiny base the
texts its tokenizer is trained on and its generic pre-training conversations
(:mod:`~anchormix_kedro.model.pretraining`). Reads a
:class:`~anchormix_kedro.model.spec.TrainingSpec`; imports nothing above it.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from anchormix_kedro.instruction_data.card import CORPORA, corpus_source
from anchormix_kedro.instruction_data.prompts import stem_loudness, variant_conversations
from anchormix_kedro.model.data import EqualisationLoudness, FeatureStore
from anchormix_kedro.model.pretraining import conversation_texts, listening_conversations
from anchormix_kedro.model.spec import TrainingSpec
from anchormix_kedro.model.timbre import coloured_conversations
from anchormix_kedro.model.tracking import data_fingerprint
from anchormix_kedro.vocabulary import FORMULATIONS, messages_column

logger = logging.getLogger(__name__)

__all__ = [
    "FineTuneData",
    "fine_tune_data",
    "repeated_by_label",
    "sample_rows",
    "training_data_description",
    "variant_messages",
    "variant_rows",
]


@dataclass(frozen=True)
class FineTuneData:
    """What one fine-tuning run learns from.

    ``train`` and ``valid`` are JSON conversations of the variant's formulation; the tiny
    base also needs texts to train its tokenizer on and its generic pre-training
    conversations (``pretrain``, ``pretrain_valid``). ``data_id`` names the data (a resumed
    run must train on the same); ``description`` tells the model card where it came from
    (source, licence, examples and songs per split).
    """

    train: Sequence[str]
    valid: Sequence[str]
    store: FeatureStore
    data_id: str
    system_prompt: str
    tokenizer_texts: Sequence[str] = ()
    pretrain: Sequence[str] = ()
    pretrain_valid: Sequence[str] = ()
    description: dict = field(default_factory=dict)


def sample_rows(rows: Sequence[Any], limit: int | None, seed: int) -> list[Any]:
    """Up to ``limit`` rows drawn without replacement, the same ones for the same seed."""
    rows = list(rows)
    if limit is None or limit >= len(rows):
        return rows
    return random.Random(seed).sample(rows, limit)


def variant_rows(dataset: pd.DataFrame, spec: TrainingSpec) -> pd.DataFrame:
    """The examples of the variant's anchor (every example when it names none): the one
    dataset holds every anchor of ``pairs.anchors``."""
    if spec.anchor is None:
        return dataset
    rows = dataset[dataset["anchor"] == spec.anchor]
    if rows.empty and not dataset.empty:
        present = ", ".join(sorted(dataset["anchor"].astype(str).unique()))
        raise ValueError(
            f"variant {spec.variant!r} is anchored on {spec.anchor}, but the instruction "
            f"dataset's anchors are {present}: add {spec.anchor} to pairs.anchors "
            "(conf/base/parameters/ingestion.yml)"
        )
    return rows


def variant_messages(
    rows: pd.DataFrame, spec: TrainingSpec, levels: dict | None = None
) -> list[str]:
    """The rows' conversations in the variant's formulation, asked as its prompt says."""
    return variant_conversations(rows, spec.formulation, spec.prompt, levels)


def repeated_by_label(
    rows: pd.DataFrame, conversations: Sequence[str], repeats: dict | None
) -> list:
    """The ``conversations`` of ``rows``, each repeated as its label says (default once)."""
    times = rows["label"].map(lambda label: int((repeats or {}).get(label, 1)))
    unknown = sorted(set(repeats or {}) - set(rows["label"]))
    if unknown:
        logger.warning("training.label_repeats names labels without examples: %s", unknown)
    return [m for m, k in zip(conversations, times, strict=True) for _ in range(k)]


def training_data_description(
    dataset: pd.DataFrame, tracks: pd.DataFrame | None, used: dict[str, int]
) -> dict:
    """What the model card says of the training data: source and terms, examples and songs
    per split, and how many of each split training used."""
    source = corpus_source(tracks)
    return {
        "source": source,
        **CORPORA[source],
        "splits": {
            str(split): {"examples": int(len(rows)), "songs": int(rows["song"].nunique())}
            for split, rows in dataset.groupby("split")
        },
        "examples_used": used,
    }


def fine_tune_data(
    dataset: pd.DataFrame,
    store: FeatureStore,
    spec: TrainingSpec,
    tracks: pd.DataFrame | None = None,
) -> FineTuneData:
    """The variant's conversations, plus the tiny base's tokenizer texts and pre-training.
    ``tracks`` (the ingestion's table) tells where the songs came from."""
    seed = spec.seed
    by_split = {split: dataset[dataset["split"] == split] for split in ("train", "valid")}
    if by_split["train"].empty:
        raise ValueError(
            "the instruction dataset has no training examples; check the ingestion summary"
        )
    # The variant learns from its anchor's examples, asked its way; the tiny base's
    # stand-in below hears every example, so every variant shares one base.
    levels = stem_loudness(dataset)
    own = {split: variant_rows(rows, spec) for split, rows in by_split.items()}
    train = sample_rows(
        repeated_by_label(
            own["train"], variant_messages(own["train"], spec, levels), spec.label_repeats
        ),
        spec.max_train_examples,
        seed,
    )
    loudness_change = EqualisationLoudness(store, spec.front_end.sampling_rate)
    train = coloured_conversations(train, spec.finetune_timbre, loudness_change, seed)
    valid = sample_rows(variant_messages(own["valid"], spec, levels), spec.max_eval_examples, seed)
    system_prompt = json.loads(train[0])[0]["content"]
    logger.info(
        "Fine-tuning on %d training and %d validation conversations (%s)",
        len(train),
        len(valid),
        spec.formulation,
    )
    description = training_data_description(
        dataset, tracks, {"train": len(train), "valid": len(valid)}
    )
    data = FineTuneData(
        train, valid, store, data_fingerprint(dataset), system_prompt, description=description
    )
    pretraining = spec.pretrain
    if pretraining is None:  # a pretrained base: nothing to build
        return data
    language = by_split["train"]["advice"].tolist()
    absolute_levels = spec.front_end.anchor_level_db is None
    pretrain = sample_rows(
        listening_conversations(
            by_split["train"],
            system_prompt,
            pretraining.seed,
            language,
            absolute_levels,
            pretraining.comparisons,
            pretraining.timbre,
            loudness_change,
        ),
        pretraining.max_examples,
        pretraining.seed,
    )
    pretrain_valid = sample_rows(
        listening_conversations(
            by_split["valid"],
            system_prompt,
            pretraining.seed,
            (),
            absolute_levels,
            pretraining.comparisons,
        ),
        spec.max_eval_examples,
        pretraining.seed,
    )
    every_formulation = [m for f in FORMULATIONS for m in by_split["train"][messages_column(f)]]
    return FineTuneData(
        train,
        valid,
        store,
        data.data_id,
        system_prompt,
        tokenizer_texts=conversation_texts(every_formulation + pretrain),
        pretrain=pretrain,
        pretrain_valid=pretrain_valid,
        description=description,
    )
