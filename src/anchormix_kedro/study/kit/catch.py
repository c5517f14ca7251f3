"""Catch trials: advice that plants the wrong direction, for raters' attention.

An example whose target is clearly too loud (or too soft) gets advice, worded as any
system's, that says the opposite ("... too soft: push the fader up by about 4 dB"): a
rater who listens rates it low. Its scenario has system ``catch`` in the key, so the
analysis uses it for quality control only.
"""

from __future__ import annotations

import random

import pandas as pd

from anchormix_kedro.advice_language.parsing import parse_advice
from anchormix_kedro.advice_language.wording import advice_text
from anchormix_kedro.study.design import CATCH_SYSTEM
from anchormix_kedro.study.kit.sampling import KEY_COLUMNS, scenario_id

OPPOSITE = {"too_loud": "too_soft", "too_soft": "too_loud"}
#: The smallest offset a catch trial is made from: the wrong direction must be audible.
MIN_CATCH_OFFSET_DB = 2.0


def catch_scenarios(key: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` catch scenarios from examples of ``key`` (columns :data:`KEY_COLUMNS`,
    placed after its scenarios), each with advice in the wrong direction."""
    if n <= 0 or key.empty:
        return pd.DataFrame(columns=list(KEY_COLUMNS))
    examples = key[key["label"].isin(list(OPPOSITE))
                   & (key["gain_db"].astype(float).abs() >= MIN_CATCH_OFFSET_DB)]  # fmt: skip
    examples = examples.drop_duplicates("example_id").sort_values("example_id")
    if examples.empty:
        raise ValueError(
            f"study_kit.catch_scenarios = {n}, but no example of the study is off by "
            f"{MIN_CATCH_OFFSET_DB} dB or more: raise study_kit.max_offset_db, or set "
            "catch_scenarios to 0"
        )
    rng = random.Random(seed)
    picked = examples.sample(n=min(n, len(examples)), random_state=seed)
    rows = []
    for number, row in enumerate(picked.itertuples(index=False), start=1):
        wrong = advice_text(
            OPPOSITE[row.label], row.target, row.anchor, abs(float(row.gain_db)), rng
        )
        rows.append({**row._asdict(), "system": CATCH_SYSTEM, "advice": wrong,
                     "advice_evaluated": wrong,
                     "scenario_id": scenario_id(row.study_id, row.example_id, CATCH_SYSTEM, wrong),
                     "advised_move_db": parse_advice(wrong).fader_move_db,
                     "position": int(key["position"].max()) + number})  # fmt: skip
    return pd.DataFrame(rows, columns=list(KEY_COLUMNS))
