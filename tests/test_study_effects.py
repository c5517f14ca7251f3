"""The ratings model: a planted advisor effect is found with its size, and with none
planted the Holm-adjusted tests stay quiet."""

from __future__ import annotations

import numpy as np
import pandas as pd

from anchormix_kedro.study.effects import long_ratings, mixed_contrasts, robustness
from anchormix_kedro.vocabulary import CRITERIA

SYSTEMS = ("advisor", "no_anchor", "dsp_baseline")


def simulated(advisor_points: float, n_raters: int = 20, n_examples: int = 16, seed: int = 3):
    """Every rater rates every scenario: system, rater and example effects, noise, rounded
    to the 7-point scale."""
    rng = np.random.default_rng(seed)
    key = pd.DataFrame([{"scenario_id": f"{e}-{s}", "example_id": f"e{e}", "system": s}
                        for e in range(n_examples) for s in SYSTEMS])  # fmt: skip
    rater_effect = rng.normal(0, 0.5, n_raters)
    example_effect = dict(
        zip(key["example_id"].unique(), rng.normal(0, 0.5, n_examples), strict=True)
    )
    rows = []
    for r in range(n_raters):
        for scenario in key.itertuples(index=False):
            base = 4 + rater_effect[r] + example_effect[scenario.example_id]
            base += advisor_points if scenario.system == "advisor" else 0.0
            rows.append({"rater": f"r{r}", "scenario_id": scenario.scenario_id,
                         **{c: int(np.clip(np.rint(base + rng.normal(0, 1)), 1, 7))
                            for c in CRITERIA}})  # fmt: skip
    return pd.DataFrame(rows), key


def test_a_planted_advisor_effect_is_found_with_its_size():
    ratings, key = simulated(0.8)
    effects = mixed_contrasts(long_ratings(ratings, key))
    assert len(effects) == 2 * len(CRITERIA)
    assert set(effects["system"]) == {"no_anchor", "dsp_baseline"}
    assert (effects["ci_low"] < 0.8).all() and (effects["ci_high"] > 0.8).all()
    assert effects["estimate"].between(0.55, 1.05).all()
    assert (effects["p_adjusted"] < 0.001).all()
    assert (effects["p_adjusted"] >= effects["p_value"]).all()
    assert effects["n_raters"].eq(20).all() and effects["n_examples"].eq(16).all()
    checks = robustness(long_ratings(ratings, key))
    assert set(checks["test"]) == {"wilcoxon", "friedman", "ordinal logit (advisor minus system)"}
    assert (checks["p_adjusted"] < 0.01).all()
    assert (checks.loc[checks["test"].str.startswith("ordinal"), "statistic"] > 0).all()


def test_without_a_planted_effect_the_adjusted_tests_stay_quiet():
    ratings, key = simulated(0.0)
    effects = mixed_contrasts(long_ratings(ratings, key))
    assert (effects["p_adjusted"] > 0.05).all()
    assert (effects["ci_low"] < 0).all() and (effects["ci_high"] > 0).all()
    checks = robustness(long_ratings(ratings, key))
    assert (checks["p_adjusted"] > 0.05).all()


def test_without_ratings_the_tables_are_empty():
    empty, key = simulated(0.0, n_raters=0)
    assert mixed_contrasts(long_ratings(empty, key)).empty
    assert robustness(long_ratings(empty, key)).empty
