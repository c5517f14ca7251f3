"""Nodes of the inference pipeline: advice for the test examples from every system compared."""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import pandas as pd

from anchormix_kedro.evaluation.conditions import ConditionSettings, condition_examples
from anchormix_kedro.evaluation.dsp_baseline import judge_pair
from anchormix_kedro.instruction_data.audio import apply_gain_db, integrated_loudness
from anchormix_kedro.instruction_data.conventions import convention_index, lookup_convention
from anchormix_kedro.model.data import FeatureStore
from anchormix_kedro.model.generation import decode_advice, load_package
from anchormix_kedro.model.package import package_front_end
from anchormix_kedro.model.verdict_decoding import GREEDY, DecodingSettings, stem_pairs
from anchormix_kedro.vocabulary import ANCHOR_TARGET, messages_column

logger = logging.getLogger(__name__)

ADVICE_COLUMNS = ["example_id", "condition", "system", "advice", "latency_s"]
#: Excerpts the DSP baseline keeps loaded (anchors of other songs come and go).
_EXCERPTS_KEPT = 16


def select_test_examples(instruction_dataset: pd.DataFrame, inference: dict) -> pd.DataFrame:
    """The evaluated split (``split``, default test), or a sample of it (``max_test_examples``,
    stratified by label), by seed."""
    split = inference.get("split") or "test"
    test = instruction_dataset[instruction_dataset["split"] == split]
    if test.empty:
        present = ", ".join(sorted(instruction_dataset["split"].astype(str).unique())) or "none"
        raise ValueError(
            f"the instruction dataset has no {split!r} examples (its splits: {present}); "
            "set evaluation_split to one of them, or check splits.carve_when_missing"
        )
    limit = inference.get("max_test_examples")
    if limit and limit < len(test):
        share = limit / len(test)
        test = test.groupby("label", group_keys=False).apply(
            lambda group: group.sample(
                max(1, round(share * len(group))), random_state=int(inference["seed"])
            )
        )
    logger.info("Inference on %d %s examples", len(test), split)
    return test.sort_values("example_id", ignore_index=True)


def play_conditions(test_examples: pd.DataFrame, inference: dict) -> pd.DataFrame:
    """The test examples in every evaluation condition of ``inference["conditions"]``."""
    settings = ConditionSettings.from_params(
        inference.get("conditions"), int(inference.get("condition_seed", 0))
    )
    return condition_examples(test_examples, settings)


def generate_model_advice(
    model_package: str,
    test_examples: pd.DataFrame,
    log_mel_features: dict[str, Callable[[], dict]],
    inference: dict,
    with_adapter: bool = True,
) -> pd.DataFrame:
    """Advice from a trained package (its own formulation, decoded as ``inference.decoding``
    says), or from its base alone (asked the anchor-and-target question; greedy, as the
    base was never taught the advice grammar). The ``system`` column is filled in by
    :func:`combine_advice`."""
    model, processor, manifest = load_package(model_package, with_adapter=with_adapter)
    formulation = manifest["formulation"] if with_adapter else ANCHOR_TARGET
    decoding = (
        DecodingSettings.from_params(inference.get("decoding"))
        if with_adapter
        else DecodingSettings(method=GREEDY)
    )
    largest = float(test_examples["gain_db"].abs().max()) if len(test_examples) else 0.0
    if decoding.method != GREEDY and round(largest) > decoding.max_amount_db:
        logger.warning(
            "Test offsets reach %.0f dB but median decoding offers amounts up to %d dB: raise "
            "inference.decoding.max_amount_db to the largest perturbation offset",
            largest,
            decoding.max_amount_db,
        )
    conversations = [json.loads(m) for m in test_examples[messages_column(formulation)]]
    pairs = stem_pairs(formulation, test_examples["anchor"], test_examples["target"])
    outputs = decode_advice(
        model,
        processor,
        conversations,
        pairs,
        FeatureStore(log_mel_features),
        decoding,
        batch_size=int(inference["batch_size"]),
        max_new_tokens=int(inference["max_new_tokens"]),
        anchor_level=package_front_end(manifest).anchor_level,
    )
    logger.info(
        "%d pieces of advice from %s (%s, %s decoding), %.3f s each",
        len(outputs),
        model_package,
        "with its adapter" if with_adapter else "base model only",
        decoding.method,
        sum(s for _, s in outputs) / max(1, len(outputs)),
    )
    return pd.DataFrame(
        {
            "example_id": test_examples["example_id"],
            "condition": test_examples["condition"],
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
    """Measure the target's loudness relative to the anchor on the clips the models hear
    (in each example's condition: common gain, anchor of another song), compare it with the
    training split's genre convention, and word it with the templates."""
    index = convention_index(genre_conventions)
    tolerance = float(inference["balanced_tolerance_db"])
    rows = []
    audio_cache: OrderedDict[str, dict] = OrderedDict()

    def stems_of(excerpt_id: str) -> tuple[dict, int]:
        if excerpt_id in audio_cache:
            audio_cache.move_to_end(excerpt_id)
        else:
            audio_cache[excerpt_id] = excerpts[excerpt_id]()
            if len(audio_cache) > _EXCERPTS_KEPT:
                audio_cache.popitem(last=False)
        record = audio_cache[excerpt_id]
        return record["audio"], int(record["meta"]["sample_rate"])

    for ex in test_examples.itertuples(index=False):
        started = time.perf_counter()
        target_audio, rate = stems_of(ex.excerpt_id)
        anchor_audio, anchor_rate = stems_of(ex.anchor_excerpt_id)
        relative = integrated_loudness(
            apply_gain_db(target_audio[ex.target], ex.gain_db + ex.stage_db), rate
        ) - integrated_loudness(apply_gain_db(anchor_audio[ex.anchor], ex.stage_db), anchor_rate)
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
                "condition": ex.condition,
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
