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
from anchormix_kedro.instruction_data.prompts import (
    PromptSettings,
    loudness_levels,
    variant_conversations,
)
from anchormix_kedro.model.data import FeatureStore, silenced
from anchormix_kedro.model.generation import decode_advice, load_package
from anchormix_kedro.model.package import package_front_end
from anchormix_kedro.model.spec import variant_anchor
from anchormix_kedro.model.verdict_decoding import GREEDY, DecodingSettings, stem_pairs
from anchormix_kedro.vocabulary import ANCHOR_TARGET

logger = logging.getLogger(__name__)

ADVICE_COLUMNS = ["example_id", "condition", "system", "advice", "latency_s"]
#: Excerpts the DSP baseline keeps loaded (anchors of other songs come and go).
_EXCERPTS_KEPT = 16


#: What pairs examples across anchors: the same target of the same excerpt at the same offset.
PAIRING_KEYS = ["excerpt_id", "target", "gain_db"]


def select_test_examples(instruction_dataset: pd.DataFrame, inference: dict) -> pd.DataFrame:
    """The evaluated split (``split``, default test), or a sample of it (``max_test_examples``
    of the split's (excerpt, target, offset), stratified by label, each with its example of
    every anchor, so variants anchored on different stems pair up), by seed."""
    split = inference.get("split") or "test"
    test = instruction_dataset[instruction_dataset["split"] == split]
    if test.empty:
        present = ", ".join(sorted(instruction_dataset["split"].astype(str).unique())) or "none"
        raise ValueError(
            f"the instruction dataset has no {split!r} examples (its splits: {present}); "
            "set evaluation_split to one of them, or check splits.carve_when_missing"
        )
    limit = inference.get("max_test_examples")
    keys = test.drop_duplicates(PAIRING_KEYS)  # with one anchor: every row, in its order
    if limit and limit < len(keys):
        share = limit / len(keys)
        chosen = keys.groupby("label", group_keys=False).apply(
            lambda group: group.sample(
                max(1, round(share * len(group))), random_state=int(inference["seed"])
            )
        )
        test = test.merge(chosen[PAIRING_KEYS], on=PAIRING_KEYS)
    logger.info("Inference on %d %s examples", len(test), split)
    return test.sort_values("example_id", ignore_index=True)


def play_conditions(test_examples: pd.DataFrame, inference: dict) -> pd.DataFrame:
    """The test examples in every evaluation condition of ``inference["conditions"]``."""
    settings = ConditionSettings.from_params(
        inference.get("conditions"), int(inference.get("condition_seed", 0))
    )
    return condition_examples(test_examples, settings)


def package_examples(test_examples: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """The test examples a package advises on: those of the anchor it was trained on
    (every example for a package that names none)."""
    anchor = manifest.get("anchor")
    return test_examples if anchor is None else test_examples[test_examples["anchor"] == anchor]


def generate_model_advice(
    model_package: str,
    test_examples: pd.DataFrame,
    log_mel_features: dict[str, Callable[[], dict]],
    inference: dict,
    loudness: pd.DataFrame | None = None,
    with_adapter: bool = True,
    silent: bool = False,
) -> pd.DataFrame:
    """Advice from a trained package (its anchor's examples, its own formulation and
    prompt, decoded as ``inference.decoding`` says), or from its base alone (asked the
    anchor-and-target question; greedy, as the base was never taught the advice grammar).
    ``silent``: every clip plays as silence, so the advice comes from the words alone.
    ``loudness`` (ingestion's table) gives a metered prompt its readings. The ``system``
    column is filled in by :func:`combine_advice`."""
    model, processor, manifest = load_package(model_package, with_adapter=with_adapter)
    formulation = manifest["formulation"] if with_adapter else ANCHOR_TARGET
    prompt = PromptSettings.from_params(manifest.get("prompt") if with_adapter else None)
    test_examples = package_examples(test_examples, manifest)
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
    levels = None if loudness is None else loudness_levels(loudness)
    asked = variant_conversations(test_examples, formulation, prompt, levels)
    conversations = [json.loads(m) for m in asked]
    if silent:
        conversations = [silenced(m) for m in conversations]
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
        "%d pieces of advice from %s (%s%s, %s decoding), %.3f s each",
        len(outputs),
        model_package,
        "with its adapter" if with_adapter else "base model only",
        ", silent clips" if silent else "",
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


def package_advice(
    model_package, test_examples, log_mel_features, loudness, inference
) -> pd.DataFrame:
    """A trained variant's advice."""
    return generate_model_advice(
        model_package, test_examples, log_mel_features, inference, loudness
    )


def generic_base_advice(model_package, test_examples, log_mel_features, inference) -> pd.DataFrame:
    """The base model without any adapter, asked the same anchor-and-target question."""
    return generate_model_advice(
        model_package, test_examples, log_mel_features, inference, with_adapter=False
    )


def text_only_advice(
    model_package, test_examples, log_mel_features, loudness, inference
) -> pd.DataFrame:
    """The text-only floor: the fine-tuned package asked its own question with every clip
    silent, so what it scores is what the prompt's words alone earn."""
    return generate_model_advice(
        model_package, test_examples, log_mel_features, inference, loudness, silent=True
    )


def dsp_baseline_advice(
    test_examples: pd.DataFrame,
    excerpts: dict[str, Callable[[], dict]],
    genre_conventions: pd.DataFrame,
    inference: dict,
    training: dict | None = None,
    method: dict | None = None,
) -> pd.DataFrame:
    """Measure the target's loudness relative to the anchor on the clips the models hear
    (in each example's condition: common gain, anchor of another song), compare it with the
    training split's genre convention, and word it with the templates. On the examples of
    the method's anchor (``training`` with the first variant's block ``method`` laid over
    it), as the model baselines."""
    anchor = variant_anchor(training or {}, method or {})
    if anchor is not None:
        test_examples = test_examples[test_examples["anchor"] == anchor]
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
