"""How far each anchor-level measure sits from the loudness the truth is measured in.

The levelling plays each conversation with one common gain that brings its anchor to a
fixed level, measured on the log-mel frames the model hears
(``front_end.anchor_level_measure``). Whatever that measure misreads, the advisor hears as
imbalance. This analysis reads a run's cached features (``log_mel_features``) and its
loudness table (``loudness``: pyloudnorm's BS.1770 loudness of each stem at its native
rate) and reports, for each measure, how far (standard deviation over excerpts, and a
robust one: the interquartile range / 1.35):

- each stem's reading sits from its loudness (the constant offset between them does not
  matter: a gain);
- the anchor-to-target relation read off the frames sits from the loudness relation,
  which is what the advice is about::

    MUSDB_PATH=/path/to/musdb18-7s kedro run --pipeline=ingestion
    kedro run --nodes=compute_log_mel_features
    anchormix analyse level-measures [--anchor drums] [--env ENV]

It prints the table and writes it to ``data/08_reporting/analyses/level-measures/level_measures.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from anchormix_kedro.errors import CliError
from anchormix_kedro.model.front_end import LEVEL_MEASURES, AnchorLevel

NAME = "level-measures"
EXCERPT_FRAMES = 500  # 5 s at Whisper's 10 ms hop: what the model hears of an excerpt


def readings(features: Mapping[str, Callable[[], dict]], loudness: pd.DataFrame) -> pd.DataFrame:
    """One row per (excerpt, stem) of the loudness table: its loudness and every measure.
    ``features``: the run's ``log_mel_features`` (excerpt id -> loader of its record)."""
    rows = []
    for excerpt_id in sorted(loudness["excerpt_id"].unique()):
        if excerpt_id not in features:
            raise FileNotFoundError(
                f"{excerpt_id}: no cached features; run `kedro run --nodes=compute_log_mel_features`"
            )
        record = features[excerpt_id]()
        for stem, raw in record["audio"].items():
            frames = min(int(record["meta"]["valid_frames"][stem]), EXCERPT_FRAMES)
            rows.append(
                {"excerpt_id": excerpt_id, "stem": stem}
                | {m: AnchorLevel(0.0, m).of_clip(raw, frames) for m in LEVEL_MEASURES}
            )
    read = loudness[["excerpt_id", "stem", "lufs"]].merge(pd.DataFrame(rows))
    return read[np.isfinite(read[list(LEVEL_MEASURES)]).all(axis=1) & np.isfinite(read["lufs"])]


def spread(errors: pd.Series) -> str:
    q1, q3 = errors.quantile([0.25, 0.75])
    return f"{errors.std():.2f} ({(q3 - q1) / 1.35:.2f})"


def report(read: pd.DataFrame, anchor: str) -> str:
    lines = [
        f"{read['excerpt_id'].nunique()} excerpts. SD (robust SD) in dB over excerpts.",
        "",
        "| measure | " + " | ".join(f"{s} reading vs loudness" for s in sorted(read["stem"].unique()))
        + " | "
        + " | ".join(f"{anchor} to {t} vs loudness" for t in sorted(set(read["stem"]) - {anchor}))
        + " |",
    ]  # fmt: skip
    lines.append("|" + "---|" * (lines[-1].count("|") - 1))
    wide = read.pivot_table(index="excerpt_id", columns="stem", values=["lufs", *LEVEL_MEASURES])
    for measure in LEVEL_MEASURES:
        stems = [
            spread(group["lufs"] - group[measure]) for _, group in read.groupby("stem", sort=True)
        ]
        relations = [
            spread(
                (wide["lufs"][t] - wide["lufs"][anchor])
                - (wide[measure][t] - wide[measure][anchor])
            ).strip()
            for t in sorted(set(read["stem"]) - {anchor})
        ]
        lines.append(f"| {measure} | " + " | ".join(stems + relations) + " |")
    return "\n".join(lines)


def command(args) -> int:
    """``anchormix analyse level-measures``."""
    from anchormix_kedro.analyses.project import open_run

    run = open_run(args.project, args.env)
    loudness = run.load("loudness")
    features = run.load("log_mel_features")
    try:
        read = readings(features, loudness)
    except FileNotFoundError as missing:
        raise CliError(str(missing)) from None
    if args.anchor not in set(read["stem"]):
        raise CliError(f"--anchor {args.anchor!r}: the run has stems {sorted(set(read['stem']))}")
    table = report(read, args.anchor)
    path = (args.output or run.output(NAME)) / "level_measures.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table + "\n")
    sys.stdout.write(table + "\n")
    sys.stderr.write(f"written to {path}\n")
    return 0
