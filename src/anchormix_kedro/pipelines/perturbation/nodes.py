"""Nodes of the perturbation pipeline: excerpts x pairs x gain offsets -> examples."""

from __future__ import annotations

import logging

import pandas as pd

from anchormix_kedro.instruction_data.perturbation import (
    GainOffsets,
    anchor_target_pairs,
    make_examples,
)

logger = logging.getLogger(__name__)


def perturb_gains(
    loudness: pd.DataFrame, tracks: pd.DataFrame, pairs: dict, perturbation: dict
) -> tuple[pd.DataFrame, dict]:
    """The examples table (reference and perturbed relative levels, labels) and skipped pairs."""
    examples, summary = make_examples(
        loudness,
        tracks,
        anchor_target_pairs(pairs["anchors"], pairs["targets"]),
        GainOffsets.from_params(perturbation["offsets"]),
        tolerance_db=float(perturbation["balanced_tolerance_db"]),
        seed=int(perturbation["seed"]),
    )
    logger.info(
        "Examples: %d from %d pairs (%s); skipped pairs: %s",
        summary["examples"],
        summary["pairs_formed"],
        ", ".join(f"{k} {v}" for k, v in summary["examples_by_label"].items()),
        summary["pairs_skipped"] or "none",
    )
    return examples, summary
