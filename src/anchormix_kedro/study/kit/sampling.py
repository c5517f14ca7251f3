"""Sampling the rating study: a blind, seeded, stratified draw of scenarios (the key).

Each scenario is one example with one system's advice; it gets an opaque id
(:func:`scenario_id`) and a place on the page. The key (columns :data:`KEY_COLUMNS`) maps
those ids back to the example and system and is kept apart from the page. The proposal
asks for *subtle* imbalances: by default only examples whose offset is at most
``max_offset_db`` (6 dB) are drawn, balanced ones included.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from anchormix_kedro.advice_language.parsing import parse_advice
from anchormix_kedro.evaluation.summaries import order_systems

# The package's logger, as before the kit was split into modules.
logger = logging.getLogger(__package__)

KEY_COLUMNS: tuple[str, ...] = (
    "study_id",
    "position",
    "scenario_id",
    "example_id",
    "system",
    "excerpt_id",
    "genre",
    "anchor",
    "target",
    "label",
    "gain_db",
    "advice",  # as shown to raters
    "advised_move_db",  # the fader move read from the advice (empty: none can be read)
    "advice_evaluated",  # as the system wrote it (the metrics'); differs when blinding reworded it
)
#: The largest offset shown to engineers by default (the proposal's "subtle imbalance").
DEFAULT_MAX_OFFSET_DB = 6.0


def scenario_id(study_id: str, example_id: str, system: str, advice: str) -> str:
    """An opaque, stable id: the same study, example, system and advice give the same id.

    Changed advice gives a new id, so ratings of an earlier page never attach to new text.
    """
    digest = hashlib.sha256(f"{study_id}\x1f{example_id}\x1f{system}\x1f{advice}".encode())
    return "s-" + digest.hexdigest()[:12]


def _round_robin(frame: pd.DataFrame, levels: Sequence[str], rng: np.random.Generator) -> list:
    """Row labels in an order that cycles through the values of each level in turn.

    The first rows cover as many values of ``levels[0]`` as exist, then within each value
    as many of ``levels[1]``, and so on; ties and the leaf order are broken by ``rng``.
    """
    if not levels:
        labels = list(frame.index)
        return [labels[i] for i in rng.permutation(len(labels))]
    groups = [group for _, group in frame.groupby(levels[0], sort=True)]
    orders = [_round_robin(group, levels[1:], rng) for group in groups]
    orders = [orders[i] for i in rng.permutation(len(orders))]
    merged = []
    for depth in range(max((len(o) for o in orders), default=0)):
        merged.extend(order[depth] for order in orders if depth < len(order))
    return merged


def _genre_minimum(examples: pd.DataFrame, order: list, minimum: int) -> list:
    """The first ``minimum`` examples of each genre in ``order`` (round-robin order)."""
    if minimum <= 0:
        return []
    genre = examples["genre"].to_dict()
    taken: dict[str, int] = {}
    first = []
    for label in order:
        if taken.get(genre[label], 0) < minimum:
            taken[genre[label]] = taken.get(genre[label], 0) + 1
            first.append(label)
    short = sorted(g for g in set(genre.values()) if taken.get(g, 0) < minimum)
    if short:
        logger.warning("Rating study: fewer than %d examples of %s", minimum, ", ".join(short))
    return first


def sample_scenarios(
    candidates: pd.DataFrame,
    n_examples: int,
    study_id: str,
    seed: int = 0,
    systems: Sequence[str] | None = None,
    strata: Sequence[str] = ("genre", "pair", "label"),
    max_offset_db: float | None = DEFAULT_MAX_OFFSET_DB,
    min_per_genre: int = 0,
) -> pd.DataFrame:
    """The study key: ``n_examples`` examples, each with the advice of every system, shuffled.

    ``candidates`` is one row per (example, system) with the example's fields and
    ``advice`` (as :func:`anchormix_kedro.evaluation.metric_table.join_advice` gives). Missing or empty
    advice is not shown to engineers. Examples are drawn among those with advice from every
    chosen system (``systems``; default all present), so each is compared across systems;
    where none has, among those with the most (with a warning). They are drawn round robin
    over ``strata`` (``pair`` is "anchor>target"), among examples whose offset is at most
    ``max_offset_db`` in size (``None``: any). Columns :data:`KEY_COLUMNS`; ``position`` is
    the 1-based place on the page. No advice at all gives an empty key (with a warning).
    ``min_per_genre`` examples of every genre present are drawn first (all of a genre's
    when it has fewer, with a warning), so the genre question has ratings in each.
    """
    if n_examples < 1:
        raise ValueError(f"n_examples must be at least 1, got {n_examples}")
    if max_offset_db is not None:
        subtle = candidates["gain_db"].astype(float).abs() <= float(max_offset_db)
        if not subtle.any():
            offsets = sorted(float(g) for g in candidates["gain_db"].unique())
            raise ValueError(
                f"study_kit.max_offset_db = {max_offset_db}: no example has an offset that "
                f"small (offsets: {offsets[:12]}); raise it, or set it to null for any offset"
            )
        candidates = candidates[subtle]
    present = order_systems(candidates["system"])
    chosen = list(systems) if systems else present
    unknown = sorted(set(chosen) - set(present))
    if unknown and len(unknown) == len(set(chosen)):
        raise ValueError(f"study systems {unknown} have no advice; systems present: {present}")
    if unknown:
        logger.warning("Rating study: %s gave no advice and are not shown", unknown)
        chosen = [s for s in chosen if s in present]
    rows = candidates[candidates["system"].isin(chosen)].copy()
    if "advice_evaluated" not in rows:
        rows["advice_evaluated"] = rows["advice"]
    has_text = rows["advice"].map(lambda a: isinstance(a, str) and bool(a.strip()))
    if (~has_text).any():
        logger.info(
            "Rating study: %d empty or missing advice rows left out", int((~has_text).sum())
        )
    rows = rows[has_text]
    if rows.empty:
        logger.warning("Rating study: no system gave any advice; there is nothing to rate")
        return pd.DataFrame(columns=list(KEY_COLUMNS))
    coverage = rows.groupby("example_id")["system"].nunique()
    complete = coverage[coverage == coverage.max()].index
    if coverage.max() < len(chosen):
        logger.warning(
            "Rating study: no example has advice from every system %s; using examples with "
            "advice from %d of them",
            chosen,
            int(coverage.max()),
        )
    examples = (
        rows[rows["example_id"].isin(complete)]
        .drop_duplicates("example_id")
        .assign(pair=lambda f: f["anchor"] + ">" + f["target"])
        .set_index("example_id", drop=False)
        .sort_index()
    )
    rng = np.random.default_rng(int(seed))
    order = _round_robin(examples, list(strata), rng)
    first = _genre_minimum(examples, order, int(min_per_genre))
    if len(first) > n_examples:
        raise ValueError(
            f"study_kit.min_examples_per_genre = {min_per_genre} over "
            f"{examples['genre'].nunique()} genres needs {len(first)} examples, more than "
            f"study_kit.n_examples = {n_examples}: raise n_examples or lower the minimum"
        )
    picked = (first + [e for e in order if e not in set(first)])[: int(n_examples)]
    if len(picked) < n_examples:
        logger.warning(
            "Rating study: only %d examples have advice from every system (%d asked)",
            len(picked),
            n_examples,
        )
    key = rows[rows["example_id"].isin(picked)].copy()
    key["study_id"] = study_id
    key["scenario_id"] = [
        scenario_id(study_id, e, s, a)
        for e, s, a in zip(key["example_id"], key["system"], key["advice"], strict=True)
    ]
    key["advised_move_db"] = [parse_advice(a).fader_move_db for a in key["advice"]]
    key = key.sort_values(["example_id", "system"]).reset_index(drop=True)
    key = key.iloc[rng.permutation(len(key))].reset_index(drop=True)
    key["position"] = np.arange(1, len(key) + 1)
    logger.info(
        "Rating study %s: %d scenarios (%d examples, %d systems) over %d genres and %d pairs",
        study_id,
        len(key),
        len(picked),
        key["system"].nunique(),
        key["genre"].nunique(),
        (key["anchor"] + ">" + key["target"]).nunique(),
    )
    return key[list(KEY_COLUMNS)]
