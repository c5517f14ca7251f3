"""Stand-in advice for evaluation tests: three systems of known quality on real examples."""

from __future__ import annotations

import random

import pandas as pd

from anchormix_kedro.advice_language.wording import advice_text
from anchormix_kedro.evaluation.dsp_baseline import judge_pair
from anchormix_kedro.instruction_data.conventions import convention_index, lookup_convention
from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT

OPPOSITE = {TOO_LOUD: TOO_SOFT, TOO_SOFT: TOO_LOUD, BALANCED: TOO_LOUD}


def stand_in_advice(
    instruction_dataset: pd.DataFrame, conventions: pd.DataFrame, split: str | None = "test"
) -> pd.DataFrame:
    """``advice_by_system`` for the examples of ``split``: three systems of known quality.

    - ``advisor``: the reference advice itself (perfect by construction);
    - ``dsp_baseline``: :func:`anchormix_kedro.evaluation.dsp_baseline.judge_pair` on the perturbed
      level against the training split's conventions;
    - ``generic_base``: deliberately wrong, the opposite direction by a random amount; one
      answer is empty and one missing, as a failing model's would be.
    """
    examples = instruction_dataset
    if split is not None:
        examples = examples[examples["split"] == split]
    index = convention_index(conventions)
    rows = []
    for i, ex in enumerate(examples.itertuples(index=False)):
        rows.append(
            {
                "example_id": ex.example_id,
                "system": "advisor",
                "advice": ex.advice,
                "latency_s": 1.0,
            }  # fmt: skip
        )
        convention = lookup_convention(index, ex.genre, ex.anchor, ex.target)
        if convention is None:
            convention = {"genre": "all", "median_db": 0.0}
        dsp = judge_pair(
            ex.anchor, ex.target, float(ex.perturbed_relative_db), convention, ex.example_id
        )
        rows.append(
            {
                "example_id": ex.example_id,
                "system": "dsp_baseline",
                "advice": dsp.advice,
                "latency_s": 0.01,
            }  # fmt: skip
        )
        rng = random.Random(f"wrong:{ex.example_id}")
        wrong = advice_text(
            OPPOSITE[ex.label], ex.target, ex.anchor, rng.uniform(2, 9), rng, convention=None
        )
        if i == 0:
            wrong = ""
        elif i == 1:
            wrong = None
        rows.append(
            {
                "example_id": ex.example_id,
                "system": "generic_base",
                "advice": wrong,
                "latency_s": 2.0,
            }  # fmt: skip
        )
    return pd.DataFrame(rows)
