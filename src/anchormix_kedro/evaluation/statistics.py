"""Seeded percentile-bootstrap estimates: means, balanced-detection F1, the settings.

:func:`seeded_rng` gives each (seed, labels) combination its own generator, so adding a
system or a metric does not change the others' intervals; :func:`bootstrap_settings` reads
the ``bootstrap`` entry of the ``evaluation_common`` parameters.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd


def bootstrap_settings(evaluation_common: Mapping[str, Any]) -> dict[str, Any]:
    """``n_resamples``, ``confidence`` and ``seed`` from ``evaluation_common["bootstrap"]``.

    Defaults: 1000 resamples, 0.95 confidence, seed 0. The dict is the keyword arguments
    :func:`anchormix_kedro.evaluation.summaries.summarize`,
    :func:`anchormix_kedro.evaluation.convention_following.convention_following` and
    :func:`anchormix_kedro.evaluation.correlation.correlation_table` take.
    """
    settings = evaluation_common.get("bootstrap", {})
    return {
        "n_resamples": int(settings.get("n_resamples", 1000)),
        "confidence": float(settings.get("confidence", 0.95)),
        "seed": int(settings.get("seed", 0)),
    }


def seeded_rng(seed: int, *labels: str) -> np.random.Generator:
    """A generator for one (seed, labels) combination, independent of call order."""
    return np.random.default_rng([int(seed), zlib.crc32("|".join(labels).encode("utf-8"))])


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """The mean and its percentile-bootstrap confidence interval: ``(mean, low, high)``.

    Missing values are dropped first. No values give NaNs; a single value gives a
    zero-width interval.
    """
    x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").astype(float))
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    rng = rng or np.random.default_rng(0)
    draws = rng.integers(0, x.size, size=(int(n_resamples), x.size))
    means = x[draws].mean(axis=1)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(x.mean()), float(low), float(high)


def balanced_f1(outcomes: Sequence[str | None]) -> float:
    """F1 of "balanced" detection from ``tp``/``fp``/``fn``/``tn`` outcomes (NaN if undefined)."""
    labels = pd.Series(list(outcomes), dtype="object")
    tp, fp, fn = ((labels == k).sum() for k in ("tp", "fp", "fn"))
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else math.nan


def bootstrap_balanced_f1(
    outcomes: Sequence[str | None],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float]:
    """Balanced-detection F1 over parsed advice, with a percentile-bootstrap interval."""
    labels = np.array([o for o in outcomes if isinstance(o, str)], dtype=object)
    if labels.size == 0:
        return math.nan, math.nan, math.nan
    rng = rng or np.random.default_rng(0)
    draws = rng.integers(0, labels.size, size=(int(n_resamples), labels.size))
    tp, fp, fn = ((labels == k).astype(float)[draws].sum(axis=1) for k in ("tp", "fp", "fn"))
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, np.nan)
    alpha = (1.0 - confidence) / 2
    if np.isnan(f1).all():
        return balanced_f1(labels), math.nan, math.nan
    low, high = np.nanquantile(f1, [alpha, 1.0 - alpha])
    return balanced_f1(labels), float(low), float(high)
