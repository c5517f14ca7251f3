"""How well a package's belief tells a balanced target from a clear imbalance.

Median decoding (:mod:`anchormix_kedro.model.verdict_decoding`) reads the model's belief
over every sentence of the advice grammar. This analysis takes that belief for every
example of a split and asks what *any* decision rule on it could reach. The model's
direction certainty is ``|P(too loud) - P(too soft)|`` over their sum; a rule that says
"balanced" below a threshold on it, and otherwise the likelier direction with the median
amount of it, trades balanced F1 against direction accuracy. It reports:

- the AUC of that certainty for balanced examples against those of 4 dB or more (1: the
  belief separates them perfectly; 0.5: not at all);
- the trade-off over thresholds (direction accuracy at 4 and 10 dB or more, balanced F1,
  amount error), and median decoding's own point on it;
- a plot of the trade-off;
- how precisely the belief follows the level at all, whatever rule reads it: the rank
  correlation of its mean signed offset with the true offset, beside that of an exact
  meter (the stems' BS.1770 relation against the training songs' median for the pair),
  and the noise (dB, SD) that would make the exact meter follow the truth as loosely
  (``hearing_noise_db``; 0: the model hears as exactly as the meter).

Run it in a project whose run trained the package and cached its features::

    MUSDB_PATH=/path/to/musdb18-7s make run
    anchormix analyse belief-separation --split valid [--variant advisor] [--env ENV]

It writes ``data/08_reporting/analyses/belief-separation/<variant>_<split>.csv`` and ``.png``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu, spearmanr

from anchormix_kedro.errors import CliError
from anchormix_kedro.evaluation.statistics import balanced_f1
from anchormix_kedro.instruction_data.conventions import (
    ALL_GENRES,
    convention_index,
    measure_genre_conventions,
)
from anchormix_kedro.model.verdict_decoding import Belief, Outcome
from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT, messages_column

NAME = "belief-separation"
THRESHOLDS = (0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
NOISE_GRID_DB = np.arange(0.0, 12.01, 0.1)
NOISE_DRAWS = 20


def direction_certainty(probabilities: np.ndarray, signed_db: np.ndarray) -> np.ndarray:
    """``|P(too loud) - P(too soft)| / (P(too loud) + P(too soft))`` per example (rows)."""
    loud = probabilities[:, signed_db > 0].sum(axis=1)
    soft = probabilities[:, signed_db < 0].sum(axis=1)
    return np.abs(loud - soft) / np.maximum(loud + soft, 1e-300)


def thresholded_verdicts(
    probabilities: np.ndarray, signed_db: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and stated amounts: "balanced" below ``threshold`` of certainty, otherwise the
    likelier direction with the median amount of its belief."""
    outcomes = tuple(Outcome.from_signed(int(db)) for db in signed_db)
    certainty = direction_certainty(probabilities, signed_db)
    labels, amounts = [], []
    for row, sure in zip(probabilities, certainty, strict=True):
        if sure < threshold:
            labels.append(BALANCED)
            amounts.append(np.nan)
            continue
        belief = Belief(outcomes, row, {})
        likelier = TOO_LOUD if row[signed_db > 0].sum() >= row[signed_db < 0].sum() else TOO_SOFT
        labels.append(likelier)
        amounts.append(float(belief.median_amount(likelier).amount_db))
    return np.array(labels), np.array(amounts)


def scores(labels: np.ndarray, amounts: np.ndarray, truth: pd.DataFrame) -> dict[str, float]:
    """The evaluation's headline figures for these verdicts (``truth``: gain_db, label)."""
    gain, label = truth["gain_db"].to_numpy(), truth["label"].to_numpy()
    large, very = np.abs(gain) >= 4, np.abs(gain) >= 10
    said, true = labels == BALANCED, label == BALANCED
    outcomes = np.where(said, np.where(true, "tp", "fp"), np.where(true, "fn", "tn"))
    right = (labels == label) & ~true
    return {
        "direction_4db": float((labels[large] == label[large]).mean()),
        "direction_10db": float((labels[very] == label[very]).mean()),
        "balanced_f1": balanced_f1(outcomes),
        "amount_error_db": float(np.mean(np.abs(amounts[right] - np.abs(gain[right])))),
        "says_balanced": float(said.mean()),
    }


def separation_auc(probabilities: np.ndarray, signed_db: np.ndarray, truth: pd.DataFrame) -> float:
    """AUC of (un)certainty: balanced examples against those of 4 dB or more."""
    certainty = direction_certainty(probabilities, signed_db)
    balanced = certainty[(truth["label"] == "balanced").to_numpy()]
    large = certainty[(truth["gain_db"].abs() >= 4).to_numpy()]
    # The Mann-Whitney U of the uncertainty, scaled: the chance a balanced example is the
    # less certain of a random pair (ties count half).
    u = mannwhitneyu(-balanced, -large).statistic
    return float(u / (len(balanced) * len(large)))


def hearing_noise(
    probabilities: np.ndarray, signed_db: np.ndarray, truth: pd.DataFrame, seed: int = 0
) -> dict[str, float]:
    """How closely the belief's mean signed offset follows the true one (Spearman), the
    exact meter's (``truth["meter_db"]``), and the meter noise that matches the belief."""
    gain, meter = truth["gain_db"].to_numpy(float), truth["meter_db"].to_numpy(float)
    belief = spearmanr(probabilities @ signed_db, gain).statistic
    exact = spearmanr(meter, gain).statistic
    rng = np.random.default_rng(seed)
    draws = rng.standard_normal((NOISE_DRAWS, len(meter)))
    noisy = [
        np.mean([spearmanr(meter + sigma * d, gain).statistic for d in draws])
        for sigma in NOISE_GRID_DB
    ]
    # The first noise at which the noisy meter follows the truth no better than the belief
    # (the curve falls with the noise; above the exact meter's, the noise is 0).
    below = np.flatnonzero(np.array(noisy) <= belief)
    noise = float(NOISE_GRID_DB[below[0]]) if len(below) else float("inf")
    return {
        "belief_spearman": float(belief),
        "meter_spearman": float(exact),
        "hearing_noise_db": noise,
    }


def tradeoff(probabilities, signed_db, truth, median_labels, median_amounts) -> pd.DataFrame:
    rows = [
        {"rule": f"certainty below {t:g}", "threshold": t}
        | scores(*thresholded_verdicts(probabilities, signed_db, t), truth)
        for t in THRESHOLDS
    ]
    rows.append(
        {"rule": "median decoding", "threshold": np.nan}
        | scores(median_labels, median_amounts, truth)
    )
    return pd.DataFrame(rows)


def pooled_conventions(dataset: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Each row's convention: the training songs' median relative level for its pair, all
    genres pooled (the ``all`` rows of the run's genre conventions)."""
    index = convention_index(measure_genre_conventions(dataset))
    pairs = zip(rows["anchor"], rows["target"], strict=True)
    return np.array([float(index[(ALL_GENRES, a, t)]["median_db"]) for a, t in pairs])


def package_beliefs(package: str, dataset: pd.DataFrame, log_mel_features: dict, split: str,
                    decoding: dict | None = None):  # fmt: skip
    """The belief of ``package`` for every example of ``split`` of the instruction dataset,
    set up as the inference pipeline sets up median decoding: ``(probabilities,
    signed_db, truth, median labels, median amounts)``."""
    from anchormix_kedro.model.data import FeatureStore
    from anchormix_kedro.model.generation import load_package
    from anchormix_kedro.model.package import package_front_end
    from anchormix_kedro.model.verdict_decoding import (
        MEDIAN,
        DecodingSettings,
        MedianDecoder,
        stem_pairs,
    )
    from anchormix_kedro.pipelines.inference.nodes import select_test_examples

    try:
        rows = select_test_examples(dataset, {"split": split})
    except ValueError as error:
        raise CliError(str(error)) from None
    rows["meter_db"] = rows["perturbed_relative_db"] - pooled_conventions(dataset, rows)
    model, processor, manifest = load_package(package)
    formulation = manifest["formulation"]
    settings = DecodingSettings.from_params({**(decoding or {}), "method": MEDIAN})
    decoder = MedianDecoder(model, processor, settings)
    conversations = [json.loads(m) for m in rows[messages_column(formulation)]]
    pairs = stem_pairs(formulation, rows["anchor"], rows["target"])
    level = package_front_end(manifest).anchor_level
    found, labels, amounts = [], [], []
    store = FeatureStore(log_mel_features)
    for number, (belief, _) in enumerate(
        decoder.beliefs(conversations, pairs, store, level), start=1
    ):
        found.append(belief.probabilities)
        median = belief.median()
        labels.append(median.label)
        amounts.append(np.nan if median.amount_db is None else float(median.amount_db))
        if number % 200 == 0:
            sys.stderr.write(f"{number} of {len(rows)} examples\n")
    signed = np.array([o.signed_db for o in belief.outcomes])
    truth = rows[["gain_db", "label", "song", "meter_db"]].reset_index(drop=True)
    return np.array(found), signed, truth, labels, amounts


def package_of(run, variant: str) -> str:
    """The path of the latest version of ``variant``'s package in the run."""
    return str(run.load(f"{variant}.model_package"))


def beliefs(run, split: str, variant: str):
    """The belief of ``variant``'s package (the run's latest) for every example of
    ``split``, and their truth (:func:`package_beliefs`)."""
    package = package_of(run, variant)
    dataset = run.load("instruction_dataset")
    features = run.load("log_mel_features")
    decoding = (run.params.get("inference") or {}).get("decoding")
    return package_beliefs(package, dataset, features, split, decoding)


def plot(table: pd.DataFrame, auc: float, title: str, path: Path) -> None:
    from matplotlib.figure import Figure

    curve = table[table["threshold"].notna()]
    median = table[table["threshold"].isna()].iloc[0]
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    ax.plot(
        curve["balanced_f1"], curve["direction_4db"], "o-", label="'balanced' below a certainty"
    )
    for row in curve.itertuples():
        ax.annotate(
            f"{row.threshold:g}",
            (row.balanced_f1, row.direction_4db),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.plot(
        median["balanced_f1"], median["direction_4db"], "s", color="C3", label="median decoding"
    )
    ax.set_xlabel("balanced-detection F1")
    ax.set_ylabel("direction accuracy, 4 dB or more")
    ax.set_title(f"{title} (AUC balanced vs 4 dB+: {auc:.2f})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def write_report(probabilities, signed, truth, labels, amounts, title: str, stem: Path) -> dict:
    """The table (``<stem>.csv``) and plot (``<stem>.png``) of these beliefs; returns the
    AUC, the hearing figures and the table."""
    auc = separation_auc(probabilities, signed, truth)
    table = tradeoff(probabilities, signed, truth, np.array(labels), np.array(amounts))
    hearing = hearing_noise(probabilities, signed, truth)
    stem.parent.mkdir(parents=True, exist_ok=True)
    table.assign(auc_balanced_vs_4db=auc, **hearing).to_csv(f"{stem}.csv", index=False)
    plot(table, auc, title, Path(f"{stem}.png"))
    return {"auc": auc, "hearing": hearing, "table": table}


def command(args) -> int:
    """``anchormix analyse belief-separation``."""
    from anchormix_kedro.analyses.project import open_run

    run = open_run(args.project, args.env)
    probabilities, signed, truth, labels, amounts = beliefs(run, args.split, args.variant)
    stem = (args.output or run.output(NAME)) / f"{args.variant}_{args.split}"
    title = f"{args.variant}, {args.split} split, {len(truth)} examples"
    found = write_report(probabilities, signed, truth, labels, amounts, title, stem)
    out = sys.stdout.write
    out(f"AUC, balanced against 4 dB or more: {found['auc']:.3f}\n")
    out("Mean of the belief against the true offset, Spearman: {belief_spearman:.3f} (an exact "
        "meter: {meter_spearman:.3f}; as loose as the meter with {hearing_noise_db:.1f} dB "
        "of noise)\n".format(**found["hearing"]))  # fmt: skip
    out(found["table"].to_string(index=False, float_format=lambda v: f"{v:.3f}") + "\n")
    out(f"written to {stem}.csv and .png\n")
    return 0
