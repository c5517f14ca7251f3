"""Power of the listening study's design, and its false-positive rate, by simulation.

Runs the study's analysis (:mod:`anchormix_kedro.study.power`: the design's lists, simulated
raters with careless ones, the exclusion rule, the crossed-effects mixed model with Holm
over every contrast) on ``--simulations`` simulated studies per design and prints:

- by default: the power to detect the advisor ``--effect`` points (default
  0.5) above every other system, for each number of invited raters (``--raters``) and
  scenarios per rater (``--per-rater``), with the study's examples and systems
  (``study_kit``) and the simulated raters' assumptions (``study.simulation``);
- ``--check``: at the configured design, the family-wise false-positive rate with nothing
  planted and the power with ``--effect`` planted, with the mean estimate, the intervals'
  coverage and how the exclusion rule did.

Results go to ``data/08_reporting/study_power.csv`` (the table) or
``study_power_check.csv`` (``--check``) and are printed as Markdown; the figures in
docs/study.md ("How many raters") come from this script, with the commands named there.
A simulated study of 24 raters costs about 9 CPU-seconds (four model fits): the default
(60 simulations per row, four rows) takes about 17 minutes on two idle cores. ``--workers``
processes run simulations at once (default: the cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

for name, value in {"DO_NOT_TRACK": "true", "KEDRO_DISABLE_TELEMETRY": "true",
                    "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1",
                    "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}.items():  # fmt: skip
    os.environ.setdefault(name, value)

import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

from anchormix_kedro.study.power import run_trial, summarise, synthetic_key  # noqa: E402
from anchormix_kedro.study.report import markdown_table  # noqa: E402
from anchormix_kedro.study.simulation import RaterModel  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def project_parameters() -> dict:
    from kedro.config import OmegaConfigLoader

    from anchormix_kedro.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        conf_source=str(ROOT / "conf"), env="local",
        **{k: v for k, v in CONFIG_LOADER_ARGS.items() if k != "default_run_env"},
    )  # fmt: skip
    return loader["parameters"]


def _trial(job: tuple) -> object:
    key, raters, design, model, effect, seed, rules = job
    return run_trial(key, raters, design, model, effect, seed, rules)


def evaluate(key, raters: int, design: dict, model: RaterModel, effect: float, simulations: int,
             rules: dict, pool: ProcessPoolExecutor, label: str) -> dict:  # fmt: skip
    jobs = [(key, raters, design, model, effect, 1000 + s, rules) for s in range(simulations)]
    trials = list(tqdm(pool.map(_trial, jobs), total=simulations, desc=label, leave=False))
    return summarise(trials, effect)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="false-positive rate and power at the configured design")  # fmt: skip
    parser.add_argument("--raters", type=int, nargs="+", default=[16, 20, 24, 30])
    parser.add_argument("--per-rater", type=int, nargs="+", default=None,
                        help="scenarios per rater (default: study.design.per_rater)")  # fmt: skip
    parser.add_argument("--examples", type=int, default=None,
                        help="examples in the study (default: study_kit.n_examples)")  # fmt: skip
    parser.add_argument("--effect", type=float, default=0.5)
    parser.add_argument("--simulations", type=int, default=60)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    params = project_parameters()
    study, kit = params["study"], params["study_kit"]
    design = dict(study["design"])
    model = RaterModel.from_params(study.get("simulation"))
    rules = dict(study.get("exclusion") or {})
    examples = args.examples or int(kit["n_examples"])
    key = synthetic_key(examples, list(kit["systems"]), int(kit.get("catch_scenarios") or 0))
    started = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        if args.check:
            raters = int(design.get("raters_planned") or max(args.raters))
            for effect in (0.0, args.effect):
                rows.append({"raters": raters, "per_rater": design["per_rater"],
                             "examples": examples, "effect": effect,
                             **evaluate(key, raters, design, model, effect, args.simulations,
                                        rules, pool, f"effect {effect}")})  # fmt: skip
        else:
            for per_rater in args.per_rater or [int(design["per_rater"])]:
                for raters in args.raters:
                    cell = {**design, "per_rater": per_rater}
                    rows.append({"raters": raters, "per_rater": per_rater, "examples": examples,
                                 "effect": args.effect,
                                 **evaluate(key, raters, cell, model, args.effect,
                                            args.simulations, rules, pool,
                                            f"{raters} raters x {per_rater}")})  # fmt: skip
                    print(f"{raters} raters x {per_rater} scenarios: power "
                          f"{rows[-1]['value']:.2f}", file=sys.stderr, flush=True)  # fmt: skip
    table = pd.DataFrame(rows)
    name = "study_power_check.csv" if args.check else "study_power.csv"
    output = args.output or ROOT / "data" / "08_reporting" / name
    output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(output, index=False)
    minutes = (time.perf_counter() - started) / 60
    print(f"{len(key)} scenarios ({examples} examples x {len(kit['systems'])} systems + catch); "
          f"raters' model: {model}; {args.simulations} simulations per row; "
          f"{minutes:.1f} min with {args.workers} workers")  # fmt: skip
    print("\n".join(markdown_table(table, digits=3)))
    print(f"Wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
