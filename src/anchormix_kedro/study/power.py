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

:func:`power_table` runs ``simulations`` such studies per design (``anchormix study power``):
by default the power to detect the advisor ``effect`` points above every other system for
each number of invited raters and scenarios per rater, with the study's examples and
systems (``study_kit``) and the simulated raters' assumptions (``study.simulation``); with
``check``, at the configured design, the false-positive rate with nothing planted and the
power with ``effect`` planted. A simulated study of 24 raters costs about 9 CPU-seconds
(four model fits); ``workers`` processes run simulations at once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class PowerSettings:
    """What :func:`power_table` simulates (the options of ``anchormix study power``)."""

    check: bool = False
    raters: tuple[int, ...] = (16, 20, 24, 30)
    per_rater: tuple[int, ...] = ()  # none: study.design.per_rater
    examples: int | None = None  # None: study_kit.n_examples
    effect: float = 0.5
    simulations: int = 60
    workers: int = 1

    def __post_init__(self) -> None:
        for option, value, least in (
            ("--simulations", self.simulations, 1),
            ("--workers", self.workers, 1),
            ("--examples", 1 if self.examples is None else self.examples, 1),
            *(("--raters", n, 2) for n in self.raters),
            *(("--per-rater", n, 1) for n in self.per_rater),
        ):
            if value < least:
                raise ValueError(f"{option} must be at least {least}, got {value}")


def _trial(job: tuple) -> Trial:
    key, raters, design, model, effect, seed, rules = job
    return run_trial(key, raters, design, model, effect, seed, rules)


def _evaluate(key, raters: int, design: dict, model: RaterModel, effect: float, simulations: int,
              rules: dict, mapper: Callable[[Callable, Iterable], Iterable], label: str) -> dict:  # fmt: skip
    from tqdm import tqdm

    jobs = [(key, raters, design, model, effect, 1000 + s, rules) for s in range(simulations)]
    trials = list(tqdm(mapper(_trial, jobs), total=simulations, desc=label, leave=False))
    return summarise(trials, effect)


def power_table(params: Mapping, settings: PowerSettings) -> tuple[pd.DataFrame, str]:
    """The power (or ``check``) table of the project's ``params`` (its ``study`` and
    ``study_kit`` parameters), and a line saying what was simulated."""
    from concurrent.futures import ProcessPoolExecutor

    study, kit = params["study"], params["study_kit"]
    design = dict(study["design"])
    model = RaterModel.from_params(study.get("simulation"))
    rules = dict(study.get("exclusion") or {})
    examples = settings.examples or int(kit["n_examples"])
    key = synthetic_key(examples, list(kit["systems"]), int(kit.get("catch_scenarios") or 0))
    rows = []
    pool = ProcessPoolExecutor(max_workers=settings.workers) if settings.workers > 1 else None
    mapper = pool.map if pool else map
    try:
        if settings.check:
            raters = int(design.get("raters_planned") or max(settings.raters))
            for effect in (0.0, settings.effect):
                rows.append({"raters": raters, "per_rater": design["per_rater"],
                             "examples": examples, "effect": effect,
                             **_evaluate(key, raters, design, model, effect,
                                         settings.simulations, rules, mapper,
                                         f"effect {effect}")})  # fmt: skip
        else:
            for per_rater in settings.per_rater or [int(design["per_rater"])]:
                for raters in settings.raters:
                    cell = {**design, "per_rater": per_rater}
                    rows.append({"raters": raters, "per_rater": per_rater, "examples": examples,
                                 "effect": settings.effect,
                                 **_evaluate(key, raters, cell, model, settings.effect,
                                             settings.simulations, rules, mapper,
                                             f"{raters} raters x {per_rater}")})  # fmt: skip
                    sys.stderr.write(f"{raters} raters x {per_rater} scenarios: power "
                                     f"{rows[-1]['value']:.2f}\n")  # fmt: skip
    finally:
        if pool is not None:
            pool.shutdown()
    what = (f"{len(key)} scenarios ({examples} examples x {len(kit['systems'])} systems + "
            f"catch); raters' model: {model}; {settings.simulations} simulations per row")  # fmt: skip
    return pd.DataFrame(rows), what


def power_report(params: Mapping, settings: PowerSettings, output: Path) -> str:
    """:func:`power_table` written to ``output`` (CSV); returns it as Markdown, with what
    was simulated and how long it took."""
    import time

    from anchormix_kedro.study.report import markdown_table

    started = time.perf_counter()
    table, what = power_table(params, settings)
    output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, index=False)
    minutes = (time.perf_counter() - started) / 60
    return "\n".join([f"{what}; {minutes:.1f} min with {settings.workers} workers",
                      *markdown_table(table, digits=3), f"Wrote {output}", ""])  # fmt: skip
