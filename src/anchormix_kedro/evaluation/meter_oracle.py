"""The ceiling beside the systems: an exact level meter, evaluated like every system.

The truth of every example is its offset from the song's *original* mix. A listener hears
only the mix in front of them: the target's level relative to the anchor, which is the
offset plus wherever that song's engineer put the stem. Even a meter that reads every
stem's BS.1770 loudness exactly must guess that second part from how other songs sit, so
each goal has a ceiling that no system judging by level can pass.

:func:`meter_oracle_advice` gives that meter's advice for every example of every
condition: the exact relative level of the clips as played (the target's loudness plus
its perturbation minus the loudness of the anchor it is heard with, another song's in
``anchor_swapped``; a common gain cancels), judged against the split's genre conventions
with the DSP rule's tolerance and worded as the DSP rule words it. It is not a trained
system: its rows carry the kind :data:`ORACLE`, are scored with the systems and shown
after them, and never enter the listening study.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from anchormix_kedro.evaluation.dsp_baseline import judge_pair
from anchormix_kedro.instruction_data.conventions import convention_index, lookup_convention
from anchormix_kedro.vocabulary import BALANCED_TOLERANCE_DB, BASELINES, CONVENTION_MIN_SONGS

#: The oracle's name wherever systems are listed (after the systems, never in the study).
ORACLE_METER = "oracle_meter"
#: Every system name that is an oracle rather than a system.
ORACLES: tuple[str, ...] = (ORACLE_METER,)
#: What a row of the evaluation is: a trained system, a baseline, or an oracle.
TRAINED, BASELINE, ORACLE = "trained", "baseline", "oracle"
ORACLE_COLUMNS: tuple[str, ...] = ("example_id", "condition", "system", "advice", "latency_s")
_NEEDED: tuple[str, ...] = (
    "example_id",
    "condition",
    "excerpt_id",
    "anchor_excerpt_id",
    "genre",
    "anchor",
    "target",
    "gain_db",
    "anchor_lufs",
    "target_lufs",
)


def system_kind(system: str, systems: Mapping | None = None) -> str:
    """``oracle`` for :data:`ORACLES`, ``baseline`` for the declared (or known) baselines,
    else ``trained``."""
    if system in ORACLES:
        return ORACLE
    declared = list((systems or {}).get("baselines") or ())
    return BASELINE if system in declared or system in BASELINES else TRAINED


def exact_relative_db(condition_examples: pd.DataFrame) -> pd.Series:
    """Target minus anchor loudness of each row's clips as played, in dB.

    The anchor's loudness is that of ``anchor_excerpt_id``'s anchor stem (read from the
    rows that play it as their own anchor); a common gain on both clips cancels.
    """
    missing = [c for c in _NEEDED if c not in condition_examples.columns]
    if missing:
        raise ValueError(
            f"condition_examples lacks columns {missing}: re-run the inference pipeline"
        )
    own = condition_examples.drop_duplicates(["excerpt_id", "anchor"]).set_index(
        ["excerpt_id", "anchor"]
    )["anchor_lufs"]
    keys = pd.MultiIndex.from_arrays(
        [condition_examples["anchor_excerpt_id"], condition_examples["anchor"]]
    )
    anchor_lufs = own.reindex(keys).to_numpy(float)
    unknown = np.isnan(anchor_lufs)
    if unknown.any():
        first = condition_examples.loc[unknown, ["anchor_excerpt_id", "anchor"]].iloc[0]
        raise ValueError(
            f"no loudness for anchor {first['anchor']} of excerpt {first['anchor_excerpt_id']} "
            "in condition_examples: re-run the inference pipeline"
        )
    target = condition_examples["target_lufs"].to_numpy(float) + condition_examples[
        "gain_db"
    ].to_numpy(float)
    return pd.Series(target - anchor_lufs, index=condition_examples.index)


def meter_oracle_advice(
    condition_examples: pd.DataFrame,
    genre_conventions: pd.DataFrame,
    tolerance_db: float = BALANCED_TOLERANCE_DB,
    min_songs: int = CONVENTION_MIN_SONGS,
) -> pd.DataFrame:
    """The exact meter's advice per example and condition (columns :data:`ORACLE_COLUMNS`,
    system :data:`ORACLE_METER`, no latency)."""
    relative = exact_relative_db(condition_examples)
    index = convention_index(genre_conventions)
    rows = []
    for ex, level in zip(condition_examples.itertuples(index=False), relative, strict=True):
        convention = lookup_convention(index, ex.genre, ex.anchor, ex.target, min_songs)
        if convention is None:
            raise ValueError(
                f"no training-split convention for {ex.anchor} > {ex.target} in "
                "genre_conventions: the pair has no training songs"
            )
        judgement = judge_pair(
            ex.anchor, ex.target, float(level), convention, seed=ex.example_id,
            tolerance_db=tolerance_db,
        )  # fmt: skip
        rows.append((ex.example_id, ex.condition, ORACLE_METER, judgement.advice, np.nan))
    return pd.DataFrame(rows, columns=list(ORACLE_COLUMNS))
