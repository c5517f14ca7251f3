"""How many raters and scenarios the study needs: its analysis run on simulated studies.

Each simulated study draws the raters' lists with the study's design
(:func:`~anchormix_kedro.study.simulation.draw_lists`), simulates their answers
(:mod:`~anchormix_kedro.study.simulation`, careless raters included), applies the
exclusion rule (:func:`~anchormix_kedro.study.quality.rater_quality`) and fits the primary
model (:func:`~anchormix_kedro.study.effects.mixed_model`) with its Holm adjustment over
every (system, criterion) contrast, exactly as the correlation pipeline does.

- **Power**: with the advisor planted ``effect`` points above every other system on every
  criterion, the share of contrasts whose Holm-adjusted p-value is below ``alpha``.
- **False-positive rate**: with nothing planted, the share of studies in which any
  adjusted p-value is below ``alpha`` (the family-wise error the adjustment controls).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from anchormix_kedro.study.design import CATCH_SYSTEM
from anchormix_kedro.study.effects import REFERENCE, long_ratings, mixed_model
from anchormix_kedro.study.quality import rater_quality
from anchormix_kedro.study.simulation import RaterModel, draw_lists, quality_tables, simulate
from anchormix_kedro.vocabulary import CRITERIA

#: MUSDB18's genres (the test songs hold seven).
GENRES: tuple[str, ...] = ("Pop/Rock", "Rap", "Electronic", "Heavy Metal", "Country",
                           "Reggae", "Jazz")  # fmt: skip
VERSION = "simulated"


def synthetic_key(n_examples: int, systems: Sequence[str], catch_scenarios: int = 4,
                  genres: Sequence[str] = GENRES) -> pd.DataFrame:  # fmt: skip
    """A study key of ``n_examples`` examples (genres in turn), each with every system's
    scenario, and ``catch_scenarios`` catch scenarios."""
    if REFERENCE not in systems:
        raise ValueError(f"the systems {list(systems)} lack the {REFERENCE}")
    rows = [{"scenario_id": f"e{e:03d}-{s}", "example_id": f"e{e:03d}", "system": s,
             "genre": genres[e % len(genres)]} for e in range(n_examples) for s in systems]  # fmt: skip
    rows += [{"scenario_id": f"catch-{k}", "example_id": f"e{k % n_examples:03d}",
              "system": CATCH_SYSTEM, "genre": genres[k % n_examples % len(genres)]}
             for k in range(catch_scenarios)]  # fmt: skip
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Trial:
    """One simulated study's outcome."""

    n_kept: int
    careless_found: int
    careless: int
    honest_excluded: int
    significant: int  # contrasts with an adjusted p below alpha
    contrasts: int
    estimate_mean: float
    covered: int  # contrasts whose interval holds the planted effect


def run_trial(key: pd.DataFrame, n_raters: int, design: Mapping, model: RaterModel,
              effect: float, seed: int, rules: Mapping | None = None,
              alpha: float = 0.05) -> Trial:  # fmt: skip
    """One simulated study analysed as the pipeline analyses a real one."""
    lists = draw_lists(key, n_raters, design)
    simulated = simulate(key, lists, model, {(REFERENCE, None): effect} if effect else {}, seed,
                         codes=())  # fmt: skip
    quality = rater_quality(quality_tables(simulated, VERSION), VERSION, rules)
    excluded = set(quality.loc[quality["excluded"], "rater"])
    careless = set(simulated.raters.loc[simulated.raters["careless"], "rater"])
    answers = simulated.answers
    kept = answers[(answers["kind"] == "scenario") & ~answers["rater"].isin(excluded)]
    table, _components = mixed_model(long_ratings(kept[["rater", "scenario_id", *CRITERIA]], key))
    holds = (table["ci_low"] <= effect) & (effect <= table["ci_high"])
    return Trial(n_kept=n_raters - len(excluded), careless_found=len(careless & excluded),
                 careless=len(careless), honest_excluded=len(excluded - careless),
                 significant=int((table["p_adjusted"] < alpha).sum()), contrasts=len(table),
                 estimate_mean=float(table["estimate"].mean()), covered=int(holds.sum()))  # fmt: skip


def summarise(trials: Sequence[Trial], effect: float) -> dict:
    """Power (or, with no effect, the family-wise false-positive rate) of a design, with a
    binomial standard error, and how well the exclusion rule and the estimates did."""
    frame = pd.DataFrame([asdict(t) for t in trials])
    n = len(frame)
    if effect:
        rate = frame["significant"].sum() / frame["contrasts"].sum()
        measure = "power"
    else:
        rate = float((frame["significant"] > 0).mean())
        measure = "false_positive_rate"
    careless = frame["careless"].sum()
    return {"measure": measure, "value": float(rate),
            "se": float(np.sqrt(rate * (1 - rate) / n)), "simulations": n,
            "raters_kept_mean": float(frame["n_kept"].mean()),
            "careless_excluded": float(frame["careless_found"].sum() / careless) if careless else None,
            "honest_excluded_mean": float(frame["honest_excluded"].mean()),
            "estimate_mean": float(frame["estimate_mean"].mean()),
            "interval_coverage": float(frame["covered"].sum() / frame["contrasts"].sum())}  # fmt: skip
