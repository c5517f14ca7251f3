"""What averaging the beliefs of several independently trained packages would reach.

Runs of one recipe with other seeds lie a few points apart (docs/recipes.md). This
analysis asks whether their beliefs, averaged, hear the balance better than any one of
them: for every example of a split it reads each package's belief over the advice grammar
(as median decoding does, :mod:`anchormix_kedro.analyses.belief_separation`), averages the
probabilities over the packages (a mixture of their beliefs) and states the median of the
mixture. It scores every package alone and the mixture with the evaluation's headline
figures, the rank correlation of stated against true amounts, the AUC of the direction
certainty (balanced against 4 dB or more) and the hearing noise, and bootstraps the songs
for the mixture minus the mean of its members.

Train the members first, each in its own project folder (the runs differ by their seeds), e.g.::

    MUSDB_PATH=/path/to/musdb18-7s kedro run --to-nodes=advisor.train_advice_model \\
        --params training.seed=43          # in a second checkout, and so on
    anchormix analyse seed-ensemble --split valid \\
        --member . --member ../second --member ../third

The members' instruction datasets must hold the same examples (the same data and
templating settings). It writes ``data/08_reporting/analyses/seed-ensemble/<variant>_<split>.csv``
in the project of ``--project`` (default: the current folder) and caches each member's
beliefs beside it (``<variant>_<split>_member<N>.npz``, named by the package's path, so a
changed package is read again).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from anchormix_kedro.analyses.belief_separation import (
    beliefs,
    hearing_noise,
    package_of,
    scores,
    separation_auc,
)
from anchormix_kedro.errors import CliError
from anchormix_kedro.model.verdict_decoding import Belief, Outcome
from anchormix_kedro.vocabulary import BALANCED

NAME = "seed-ensemble"
BOOTSTRAP_RESAMPLES = 1000


def median_verdicts(probabilities: np.ndarray, signed_db: np.ndarray):
    """Median decoding of each row's belief: labels and stated amounts (NaN: balanced)."""
    outcomes = tuple(Outcome.from_signed(int(db)) for db in signed_db)
    labels, amounts = [], []
    for row in probabilities:
        verdict = Belief(outcomes, row, {}).median()
        labels.append(verdict.label)
        amounts.append(np.nan if verdict.amount_db is None else float(verdict.amount_db))
    return np.array(labels), np.array(amounts)


def figures(probabilities: np.ndarray, signed_db: np.ndarray, truth: pd.DataFrame) -> dict:
    labels, amounts = median_verdicts(probabilities, signed_db)
    found = scores(labels, amounts, truth)
    right = (labels == truth["label"].to_numpy()) & (labels != BALANCED)
    found["amount_spearman"] = float(
        spearmanr(amounts[right], truth["gain_db"].abs().to_numpy()[right]).statistic
    )
    found["auc_balanced_vs_4db"] = separation_auc(probabilities, signed_db, truth)
    found["hearing_noise_db"] = hearing_noise(probabilities, signed_db, truth)["hearing_noise_db"]
    return found


def member_beliefs(member: Path, env: str | None, split: str, variant: str, cache: Path):
    """One member's beliefs for every example of ``split``, read once and cached."""
    from anchormix_kedro.analyses.project import open_run

    run = open_run(member, env)
    package = str(Path(package_of(run, variant)).resolve())
    if cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        if str(stored["package"]) == package:
            truth = pd.read_json(cache.with_suffix(".truth.json"))
            return stored["probabilities"], stored["signed_db"], truth
    probabilities, signed, truth, _, _ = beliefs(run, split, variant)
    np.savez(cache, probabilities=probabilities, signed_db=signed, package=np.array(package))
    truth.to_json(cache.with_suffix(".truth.json"))
    return probabilities, signed, truth


def song_bootstrap(
    members: list[np.ndarray], signed_db: np.ndarray, truth: pd.DataFrame, seed: int = 0
) -> tuple[float, float]:
    """95 % interval over songs of the mixture's direction accuracy at 4 dB or more minus
    the mean of its members'."""
    large = (truth["gain_db"].abs() >= 4).to_numpy()
    label = truth["label"].to_numpy()
    hits = [median_verdicts(p, signed_db)[0] == label for p in members]
    mixture = median_verdicts(np.mean(members, axis=0), signed_db)[0] == label
    gain = mixture.astype(float) - np.mean(hits, axis=0)
    songs = truth["song"].to_numpy()
    names = np.unique(songs)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        chosen = rng.choice(names, size=len(names))
        mask = np.concatenate([np.flatnonzero((songs == s) & large) for s in chosen])
        draws.append(gain[mask].mean())
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def command(args) -> int:
    """``anchormix analyse seed-ensemble``."""
    from anchormix_kedro.analyses.project import ANALYSES_FOLDER, open_run, project_root

    members_given = list(args.member or [])
    if len(members_given) < 2:
        raise CliError("give at least two --member project folders: an ensemble needs two "
                       f"members, got {len(members_given)}")  # fmt: skip
    roots = [project_root(m) for m in members_given]
    if args.output:
        output = args.output
    else:
        here = open_run(args.project, args.env)
        output = here.data_root / ANALYSES_FOLDER / NAME
    output.mkdir(parents=True, exist_ok=True)
    stem = output / f"{args.variant}_{args.split}"
    members, signed, truth = [], None, None
    for number, root in enumerate(roots, start=1):
        probabilities, member_signed, member_truth = member_beliefs(
            root, args.env, args.split, args.variant, Path(f"{stem}_member{number}.npz")
        )
        if truth is not None and not member_truth[["gain_db", "song"]].equals(
            truth[["gain_db", "song"]]
        ):
            raise CliError(f"{root} holds other {args.split} examples than {roots[0]}: "
                           "the members must be trained on the same instruction dataset")  # fmt: skip
        members.append(probabilities)
        signed, truth = member_signed, member_truth
    rows = [
        {"system": f"member {n} ({path})"} | figures(p, signed, truth)
        for n, (path, p) in enumerate(zip(roots, members, strict=True), start=1)
    ]
    rows.append(
        {"system": f"mixture of {len(members)}"} | figures(np.mean(members, axis=0), signed, truth)
    )
    table = pd.DataFrame(rows)
    low, high = song_bootstrap(members, signed, truth)
    table.to_csv(f"{stem}.csv", index=False)
    out = sys.stdout.write
    out(table.to_string(index=False, float_format=lambda v: f"{v:.3f}") + "\n")
    gain = table["direction_4db"].iloc[-1] - table["direction_4db"].iloc[:-1].mean()
    out(f"mixture minus the members' mean, direction at 4 dB or more: {gain:+.3f} "
        f"[{low:+.3f}, {high:+.3f}] (95 %, {BOOTSTRAP_RESAMPLES} resamples of "
        f"{truth['song'].nunique()} songs)\n")  # fmt: skip
    out(f"written to {stem}.csv\n")
    return 0
