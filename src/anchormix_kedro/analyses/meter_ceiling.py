"""What a perfect level meter reaches on a run's test split: the ceiling of judging by ear.

The truth of every example is its offset from the song's *original* mix. A listener hears
only the mix in front of them: the target's level relative to the anchor, which is the
offset plus wherever that song's engineer put the stem. Even a meter that reads every
stem's BS.1770 loudness exactly must guess that second part from how other songs sit, so
each goal of the evaluation has a ceiling set by how far songs' balances spread.

This analysis measures that ceiling. For every test example of a run (its ``examples``)
it takes the exact relative level of the stems as delivered (``perturbed_relative_db``)
and judges it as the DSP rule does
(:func:`anchormix_kedro.evaluation.dsp_baseline.judge_pair`, worded with the dataset's
templates, scored with the evaluation's own parser and truth metrics), against:

- ``genre_convention``: the run's genre conventions (the DSP rule's own; a check that the
  figures match the run's report for ``dsp_baseline`` as mixed);
- ``pooled_convention``: the training songs' median of each pair, all genres pooled;
- ``pooled_shrunk``: the same verdicts, amounts shrunk towards the middle
  (``a + b * |deviation|``, fitted on the training songs by least absolute error), the
  amount that minimises the expected error when the deviation is a noisy reading.

It reports each goal with a 95 % interval from resampling the test songs, and how far the
test songs' own balances sit from the pooled convention (which no listener can hear)::

    MUSDB_PATH=/path/to/musdb18-7s make run
    anchormix analyse meter-ceiling [--env ENV]

It writes ``data/08_reporting/analyses/meter-ceiling/meter_ceiling.json`` and ``.md``.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from anchormix_kedro.errors import CliError
from anchormix_kedro.evaluation.by_offset import amount_tracking
from anchormix_kedro.evaluation.dsp_baseline import dsp_advice, judge_pair
from anchormix_kedro.evaluation.statistics import (
    song_bootstrap_balanced_f1,
    song_bootstrap_mean,
)
from anchormix_kedro.evaluation.truth import truth_metrics_frame
from anchormix_kedro.instruction_data.conventions import (
    ALL_GENRES,
    convention_index,
    lookup_convention,
)
from anchormix_kedro.vocabulary import BALANCED, BALANCED_TOLERANCE_DB, CONVENTION_MIN_SONGS

NAME = "meter-ceiling"
METERS = ("genre_convention", "pooled_convention", "pooled_shrunk")
GOALS = (
    ("direction_4db", "direction, 4 dB or more"),
    ("direction_10db", "direction, 10 dB or more"),
    ("balanced_f1", "balanced F1"),
    ("amount_error_db", "amount error, right direction (dB)"),
    ("amount_spearman", "Spearman, stated vs true amount"),
)


def _pooled_index(conventions: pd.DataFrame) -> dict[tuple[str, str], dict]:
    pooled = conventions[conventions["genre"] == ALL_GENRES]
    return {(r["anchor"], r["target"]): r for r in pooled.to_dict("records")}


def _pooled_medians(examples: pd.DataFrame, pooled: dict[tuple[str, str], dict]) -> np.ndarray:
    """Each example's pooled convention (the training songs' median for its pair), in dB."""
    pairs = zip(examples["anchor"], examples["target"], strict=True)
    return np.array([float(pooled[pair]["median_db"]) for pair in pairs])


def fit_shrinkage(deviation_db: np.ndarray, gain_db: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` minimising mean ``|a + b * |deviation| - |gain||`` over the given rows."""
    x, y = np.abs(deviation_db), np.abs(gain_db)

    def loss(p: np.ndarray) -> float:
        return float(np.abs(p[0] + p[1] * x - y).mean())

    start = np.polyfit(x, y, 1)[::-1]
    fitted = minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-6})
    return float(fitted.x[0]), float(fitted.x[1])


def _advice(
    examples: pd.DataFrame,
    conventions: pd.DataFrame,
    meter: str,
    tolerance_db: float,
    min_songs: int,
    shrinkage: tuple[float, float] | None = None,
) -> list[str]:
    """The meter's advice for each example, worded as the DSP rule words it."""
    genre_index, pooled = convention_index(conventions), _pooled_index(conventions)
    advices = []
    for ex in examples.itertuples(index=False):
        if meter == "genre_convention":
            convention = lookup_convention(genre_index, ex.genre, ex.anchor, ex.target, min_songs)
        else:
            convention = pooled.get((ex.anchor, ex.target))
        if convention is None:
            raise CliError(f"no training-split convention for {ex.anchor} > {ex.target}")
        judgement = judge_pair(
            ex.anchor,
            ex.target,
            float(ex.perturbed_relative_db),
            convention,
            seed=ex.example_id,
            tolerance_db=tolerance_db,
        )
        advice = judgement.advice
        if shrinkage is not None and judgement.label != BALANCED:
            a, b = shrinkage
            amount = a + b * abs(judgement.deviation_db)
            advice = dsp_advice(
                judgement.label,
                ex.anchor,
                ex.target,
                np.sign(judgement.deviation_db) * amount,
                ex.example_id,
                convention,
            )
        advices.append(advice)
    return advices


def _goals(examples: pd.DataFrame, advice: list[str], meter: str) -> dict[str, list[float]]:
    frame = truth_metrics_frame(
        advice,
        examples["label"].tolist(),
        examples["gain_db"].tolist(),
        examples["target"].tolist(),
        examples["anchor"].tolist(),
    )
    frame["song"] = examples["song"].to_numpy()
    frame["gain_db"] = examples["gain_db"].to_numpy()
    frame["system"] = meter
    correct = frame["direction_correct"].fillna(False).astype(float)
    size = frame["gain_db"].abs()
    goals = {}
    for key, threshold in (("direction_4db", 4.0), ("direction_10db", 10.0)):
        keep = (size >= threshold).to_numpy()
        goals[key] = list(song_bootstrap_mean(correct[keep], frame["song"][keep])[:3])
    goals["balanced_f1"] = list(
        song_bootstrap_balanced_f1(frame["balanced_outcome"].tolist(), frame["song"])[:3]
    )
    goals["amount_error_db"] = list(
        song_bootstrap_mean(frame["amount_error_db"], frame["song"])[:3]
    )
    tracking = amount_tracking(frame).iloc[0]
    goals["amount_spearman"] = [tracking["spearman"], tracking["ci_low"], tracking["ci_high"]]
    return goals


def measure(
    examples: pd.DataFrame,
    conventions: pd.DataFrame,
    tolerance: float = BALANCED_TOLERANCE_DB,
    min_songs: int = CONVENTION_MIN_SONGS,
) -> dict:
    """The ceiling of each meter on the test examples of a run's ``examples`` (its
    perturbation table), against its ``genre_conventions``; ``tolerance`` and
    ``min_songs``: the ``balanced_tolerance_db`` and ``convention_min_songs`` globals."""
    if not (examples["split"] == "test").any():
        raise CliError("the run's examples hold no test examples: nothing to measure")
    test = examples[examples["split"] == "test"].reset_index(drop=True)
    train = examples[examples["split"] == "train"].reset_index(drop=True)

    pooled = _pooled_index(conventions)
    deviation = train["perturbed_relative_db"].to_numpy(float) - _pooled_medians(train, pooled)
    gain = train["gain_db"].to_numpy(float)
    audible = (
        (np.sign(deviation) == np.sign(gain))
        & (np.abs(gain) > tolerance)
        & (np.abs(deviation) > tolerance)
    )
    shrinkage = fit_shrinkage(deviation[audible], gain[audible])

    songs = test.drop_duplicates(["song", "anchor", "target"])
    spread = songs["reference_relative_db"].to_numpy(float) - _pooled_medians(songs, pooled)
    results = {
        "test_examples": len(test),
        "test_songs": int(test["song"].nunique()),
        "own_balance_vs_pooled_convention_db": {
            "sd": float(spread.std(ddof=1)),
            "mean_abs": float(np.abs(spread).mean()),
            "pairs": len(spread),
        },
        "shrinkage": {"a": shrinkage[0], "b": shrinkage[1]},
        "meters": {},
    }
    for meter in METERS:
        advice = _advice(
            test,
            conventions,
            meter,
            tolerance,
            min_songs,
            shrinkage if meter == "pooled_shrunk" else None,
        )
        results["meters"][meter] = _goals(test, advice, meter)
    return results


def markdown(results: dict) -> str:
    lines = [
        f"{results['test_examples']} test examples of {results['test_songs']} songs; "
        "a song's own balance sits {sd:.1f} dB (SD) from the pooled convention "
        "(mean |difference| {mean_abs:.1f} dB, {pairs} song-pairs).".format(
            **results["own_balance_vs_pooled_convention_db"]
        ),
        "",
        "| goal | " + " | ".join(METERS) + " |",
        "|---|" + "---|" * len(METERS),
    ]
    for key, name in GOALS:
        cells = []
        for meter in METERS:
            value, low, high = results["meters"][meter][key]
            digits = 2 if key == "amount_error_db" else 3
            cells.append(f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    a, b = results["shrinkage"]["a"], results["shrinkage"]["b"]
    lines += [
        "",
        f"Shrunk amount: {a:.2f} + {b:.2f} x |deviation| dB (fitted on the training songs).",
    ]
    return "\n".join(lines) + "\n"


def command(args) -> int:
    """``anchormix analyse meter-ceiling``."""
    from anchormix_kedro.analyses.project import open_run

    run = open_run(args.project, args.env)
    examples = run.load("examples")
    conventions = run.load("genre_conventions")
    results = measure(
        examples,
        conventions,
        float(run.globals.get("balanced_tolerance_db", BALANCED_TOLERANCE_DB)),
        int(run.globals.get("convention_min_songs", CONVENTION_MIN_SONGS)),
    )
    output = args.output or run.output(NAME)
    output.mkdir(parents=True, exist_ok=True)
    (output / "meter_ceiling.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (output / "meter_ceiling.md").write_text(table)
    sys.stdout.write(table)
    sys.stdout.write(f"written to {output}\n")
    return 0
