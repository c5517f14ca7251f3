"""Nodes of the inference pipeline: advice for the test examples from every system compared."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import pandas as pd

from anchormix_kedro.evaluation.dsp_baseline import judge_pair
from anchormix_kedro.instruction_data.audio import apply_gain_db, integrated_loudness
from anchormix_kedro.instruction_data.conventions import convention_index, lookup_convention
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.generation import generate, load_package
from anchormix_kedro.vocabulary import ANCHOR_TARGET, messages_column

logger = logging.getLogger(__name__)

ADVICE_COLUMNS = ["example_id", "system", "advice", "latency_s"]


def select_test_examples(instruction_dataset: pd.DataFrame, inference: dict) -> pd.DataFrame:
    """The test split, or a sample of it (``max_test_examples``, stratified by label), by seed."""
    test = instruction_dataset[instruction_dataset["split"] == "test"]
    if test.empty:
        raise ValueError(
            "the instruction dataset has no test examples; check splits.carve_when_missing"
        )
    limit = inference.get("max_test_examples")
    if limit and limit < len(test):
        share = limit / len(test)
        test = test.groupby("label", group_keys=False).apply(
            lambda group: group.sample(
                max(1, round(share * len(group))), random_state=int(inference["seed"])
            )
        )
    logger.info("Inference on %d test examples", len(test))
    return test.sort_values("example_id", ignore_index=True)


def generate_model_advice(
    model_package: str,
    test_examples: pd.DataFrame,
    log_mel_features: dict[str, Callable[[], dict]],
    inference: dict,
    with_adapter: bool = True,
) -> pd.DataFrame:
    """Batched greedy advice from a trained package (its own formulation), or from its base
    alone (asked the anchor-and-target question). The ``system`` column is filled in by
    :func:`combine_advice`."""
    model, processor, manifest = load_package(model_package, with_adapter=with_adapter)
    formulation = manifest["formulation"] if with_adapter else ANCHOR_TARGET
    conversations = [json.loads(m) for m in test_examples[messages_column(formulation)]]
    outputs = generate(
        model,
        processor,
        conversations,
        FeatureStore(log_mel_features),
        batch_size=int(inference["batch_size"]),
        max_new_tokens=int(inference["max_new_tokens"]),
    )
    logger.info(
        "%d pieces of advice from %s (%s), %.3f s each",
        len(outputs),
        model_package,
        "with its adapter" if with_adapter else "base model only",
        sum(s for _, s in outputs) / max(1, len(outputs)),
    )
    return pd.DataFrame(
        {
            "example_id": test_examples["example_id"],
            "system": None,
            "advice": [text for text, _ in outputs],
            "latency_s": [seconds for _, seconds in outputs],
        }
    )[ADVICE_COLUMNS]


def package_advice(model_package, test_examples, log_mel_features, inference) -> pd.DataFrame:
    """A trained variant's advice."""
    return generate_model_advice(model_package, test_examples, log_mel_features, inference)


def generic_base_advice(model_package, test_examples, log_mel_features, inference) -> pd.DataFrame:
    """The base model without any adapter, asked the same anchor-and-target question."""
    return generate_model_advice(
        model_package, test_examples, log_mel_features, inference, with_adapter=False
    )


def dsp_baseline_advice(
    test_examples: pd.DataFrame,
    excerpts: dict[str, Callable[[], dict]],
    genre_conventions: pd.DataFrame,
    inference: dict,
) -> pd.DataFrame:
    """Measure the target's loudness relative to the anchor on the clips the models hear,
    compare it with the training split's genre convention, and word it with the templates."""
    index = convention_index(genre_conventions)
    tolerance = float(inference["balanced_tolerance_db"])
    rows = []
    audio_cache: dict[str, dict] = {}
    for ex in test_examples.itertuples(index=False):
        started = time.perf_counter()
        if ex.excerpt_id not in audio_cache:
            audio_cache.clear()  # examples are sorted by excerpt: keep one in memory
            audio_cache[ex.excerpt_id] = excerpts[ex.excerpt_id]()
        record = audio_cache[ex.excerpt_id]
        audio, rate = record["audio"], int(record["meta"]["sample_rate"])
        relative = integrated_loudness(
            apply_gain_db(audio[ex.target], ex.gain_db), rate
        ) - integrated_loudness(audio[ex.anchor], rate)
        convention = lookup_convention(
            index, ex.genre, ex.anchor, ex.target, int(inference["convention_min_songs"])
        )
        if convention is None:
            raise ValueError(
                f"no training-split convention for {ex.anchor} > {ex.target}: the pair has no training songs"
            )
        judgement = judge_pair(
            ex.anchor, ex.target, relative, convention, seed=ex.example_id, tolerance_db=tolerance
        )
        rows.append(
            {
                "example_id": ex.example_id,
                "system": None,
                "advice": judgement.advice,
                "latency_s": time.perf_counter() - started,
            }
        )
    return pd.DataFrame(rows, columns=ADVICE_COLUMNS)


def combine_advice(**advice_by_system: pd.DataFrame) -> pd.DataFrame:
    """One table: example, system (named as declared), advice text, latency."""
    combined = pd.concat(
        [table.assign(system=system) for system, table in advice_by_system.items()],
        ignore_index=True,
    )
    logger.info(
        "Advice from %s",
        ", ".join(f"{s} ({n})" for s, n in combined["system"].value_counts().items()),
    )
    return combined
