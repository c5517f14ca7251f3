"""Nodes of the templating pipeline: examples -> conversations, conventions, card and plots."""

from __future__ import annotations

import logging

import pandas as pd

from anchormix_kedro.instruction_data import building
from anchormix_kedro.instruction_data.card import make_dataset_card, plot_reference_levels
from anchormix_kedro.instruction_data.conventions import measure_genre_conventions
from anchormix_kedro.instruction_data.spectrograms import example_spectrograms, pick_example

__all__ = [
    "build_instruction_dataset",
    "make_dataset_card",
    "measure_conventions",
    "plot_example_spectrograms",
    "plot_reference_levels",
]

logger = logging.getLogger(__name__)


def measure_conventions(examples: pd.DataFrame) -> pd.DataFrame:
    """Genre conventions (median, spread of each pair's reference level) of the training split."""
    conventions = measure_genre_conventions(examples, split="train")
    logger.info(
        "Genre conventions: %d (genre, pair) rows from the training split", len(conventions)
    )
    return conventions


def build_instruction_dataset(
    examples: pd.DataFrame, conventions: pd.DataFrame, templating: dict
) -> pd.DataFrame:
    """One chat conversation per example and input formulation (``messages_<formulation>``),
    with the reference advice as the assistant turn (see
    :func:`anchormix_kedro.instruction_data.building.build_instruction_dataset`)."""
    return building.build_instruction_dataset(
        examples, conventions, building.TemplatingSettings.from_params(templating)
    )


def plot_example_spectrograms(instruction_dataset: pd.DataFrame, excerpts: dict):
    """Mel spectrograms of one training example: anchor, target as mixed, target perturbed."""
    record = excerpts[pick_example(instruction_dataset)["excerpt_id"]]()
    return example_spectrograms(
        instruction_dataset, record["audio"], int(record["meta"]["sample_rate"])
    )
