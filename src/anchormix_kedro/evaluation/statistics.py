"""Seeded percentile-bootstrap estimates: means, balanced-detection F1, the settings.

:func:`seeded_rng` gives each (seed, labels) combination its own generator, so adding a
system or a metric does not change the others' intervals; :func:`bootstrap_settings` reads
the ``bootstrap`` entry of the ``evaluation_common`` parameters.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
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


# --------------------------------------------------------------------------- by song

# Examples of one song share its mix, its genre and often its excerpt: they are not
# independent. The bootstrap below resamples songs (clusters), each with all its examples.


def _codes(clusters: Sequence) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(pd.Series(list(clusters), dtype="object"), sort=True)
    return codes, len(uniques)


def _interval(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return math.nan, math.nan
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return float(low), float(high)


def song_bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    songs: Sequence,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float, int]:
    """The mean over examples and its interval from resampling songs: ``(mean, low, high,
    songs)``. Missing values are dropped first (with their songs, when a song has none)."""
    x = np.asarray(pd.to_numeric(pd.Series(list(values)), errors="coerce").astype(float))
    keep = ~np.isnan(x)
    codes, n_songs = _codes(np.asarray(list(songs), dtype=object)[keep])
    x = x[keep]
    if x.size == 0:
        return math.nan, math.nan, math.nan, 0
    sums = np.bincount(codes, weights=x, minlength=n_songs)
    counts = np.bincount(codes, minlength=n_songs).astype(float)
    rng = rng or np.random.default_rng(0)
    draws = rng.integers(0, n_songs, size=(int(n_resamples), n_songs))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = _interval(means, confidence)
    return float(x.mean()), low, high, n_songs


def song_bootstrap_statistic(
    statistic: Callable[[np.ndarray], float],
    songs: Sequence,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float, int]:
    """Any statistic of rows and its interval from resampling songs: ``(estimate, low,
    high, songs)``. ``statistic`` takes the indices of the rows to use (a song drawn twice
    brings its rows twice); the estimate is over every row."""
    codes, n_songs = _codes(list(songs))
    by_song = [np.flatnonzero(codes == k) for k in range(n_songs)]
    rng = rng or np.random.default_rng(0)
    draws = [
        statistic(np.concatenate([by_song[k] for k in rng.integers(0, n_songs, n_songs)]))
        for _ in range(int(n_resamples) if n_songs > 1 else 0)
    ]
    low, high = _interval(np.array(draws, dtype=float), confidence)
    return float(statistic(np.arange(len(codes)))), low, high, n_songs


def _outcome_counts(outcomes: Sequence, codes: np.ndarray, n_songs: int) -> np.ndarray:
    labels = np.asarray(list(outcomes), dtype=object)
    return np.stack(
        [
            np.bincount(codes, weights=(labels == k).astype(float), minlength=n_songs)
            for k in ("tp", "fp", "fn")
        ]
    )


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)


def song_bootstrap_balanced_f1(
    outcomes: Sequence[str | None],
    songs: Sequence,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float, float, int]:
    """Balanced-detection F1 over parsed advice, its interval from resampling songs."""
    parsed = np.array([isinstance(o, str) for o in outcomes], dtype=bool)
    labels = np.asarray(list(outcomes), dtype=object)[parsed]
    if labels.size == 0:
        return math.nan, math.nan, math.nan, 0
    codes, n_songs = _codes(np.asarray(list(songs), dtype=object)[parsed])
    counts = _outcome_counts(labels, codes, n_songs)
    rng = rng or np.random.default_rng(0)
    draws = rng.integers(0, n_songs, size=(int(n_resamples), n_songs))
    tp, fp, fn = (counts[i][draws].sum(axis=1) for i in range(3))
    low, high = _interval(_f1(tp, fp, fn), confidence)
    return balanced_f1(labels), low, high, n_songs


def paired_song_bootstrap(
    first: Sequence,
    second: Sequence,
    songs: Sequence,
    kind: str = "mean",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> dict[str, float | int]:
    """``first - second`` on the same examples (a metric of two systems, row by row), with
    an interval and a two-sided bootstrap p-value from resampling songs.

    ``kind`` is ``"mean"`` (rows where both values exist) or ``"balanced_f1"`` (outcomes;
    each system's F1 over its parsed rows). Returns ``difference``, ``ci_low``,
    ``ci_high``, ``p_value``, ``n`` (rows) and ``n_songs``.
    """
    songs = np.asarray(list(songs), dtype=object)
    rng = rng or np.random.default_rng(0)
    if kind == "balanced_f1":
        a, b = np.asarray(list(first), dtype=object), np.asarray(list(second), dtype=object)
        codes, n_songs = _codes(songs)
        if n_songs == 0:
            return _no_comparison()
        ca, cb = _outcome_counts(a, codes, n_songs), _outcome_counts(b, codes, n_songs)
        draws = rng.integers(0, n_songs, size=(int(n_resamples), n_songs))
        diffs = _f1(*(ca[i][draws].sum(axis=1) for i in range(3))) - _f1(
            *(cb[i][draws].sum(axis=1) for i in range(3))
        )
        estimate = balanced_f1(a) - balanced_f1(b)
        n = len(songs)
    else:
        a = np.asarray(pd.to_numeric(pd.Series(list(first)), errors="coerce").astype(float))
        b = np.asarray(pd.to_numeric(pd.Series(list(second)), errors="coerce").astype(float))
        keep = ~(np.isnan(a) | np.isnan(b))
        if not keep.any():
            return _no_comparison()
        codes, n_songs = _codes(songs[keep])
        sums = np.bincount(codes, weights=a[keep] - b[keep], minlength=n_songs)
        counts = np.bincount(codes, minlength=n_songs).astype(float)
        draws = rng.integers(0, n_songs, size=(int(n_resamples), n_songs))
        with np.errstate(invalid="ignore", divide="ignore"):
            diffs = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
        estimate = float((a[keep] - b[keep]).mean())
        n = int(keep.sum())
    low, high = _interval(diffs, confidence)
    valid = diffs[~np.isnan(diffs)]
    p_value = (
        min(1.0, 2 * min(float((valid <= 0).mean()), float((valid >= 0).mean())))
        if valid.size
        else math.nan
    )
    return {
        "difference": float(estimate),
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "n": n,
        "n_songs": n_songs,
    }


def _no_comparison() -> dict[str, float | int]:
    return {
        "difference": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "p_value": math.nan,
        "n": 0,
        "n_songs": 0,
    }
