"""How far each anchor-level measure sits from the loudness the truth is measured in.

The levelling plays each conversation with one common gain that brings its anchor to a
fixed level, measured on the log-mel frames the model hears
(``front_end.anchor_level_measure``). Whatever that measure misreads, the advisor hears as
imbalance. This script reads a run's cached features and its loudness table (pyloudnorm's
BS.1770 loudness of each stem at its native rate) and reports, for each measure, how far
(standard deviation over excerpts, and a robust one: the interquartile range / 1.35):

- each stem's reading sits from its loudness (the constant offset between them does not
  matter: a gain);
- the anchor-to-target relation read off the frames sits from the loudness relation,
  which is what the advice is about::

    MUSDB_PATH=/path/to/musdb18-7s kedro run --pipeline=ingestion
    kedro run --nodes=compute_log_mel_features
    python scripts/level_measures.py [--run-data data] [--anchor drums]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import anchormix_kedro  # noqa: F401  (sets the offline/telemetry defaults)

sys.path.insert(0, str(Path(__file__).parent))
from anchormix_kedro.datasets.npz_record_dataset import NpzRecordDataset  # noqa: E402
from anchormix_kedro.model.front_end import LEVEL_MEASURES, AnchorLevel  # noqa: E402
from benchmark_metrics import latest_catalog_file  # noqa: E402

EXCERPT_FRAMES = 500  # 5 s at Whisper's 10 ms hop: what the model hears of an excerpt


def readings(features: Path, loudness: pd.DataFrame) -> pd.DataFrame:
    """One row per (excerpt, stem) of the loudness table: its loudness and every measure."""
    rows = []
    for excerpt_id in sorted(loudness["excerpt_id"].unique()):
        path = features / f"{excerpt_id}.npz"
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no cached features; run `kedro run --nodes=compute_log_mel_features`"
            )
        record = NpzRecordDataset(str(path)).load()
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-data", type=Path, default=Path("data"), help="a run's data folder")
    parser.add_argument("--anchor", default="drums", help="the stem the others are set against")
    args = parser.parse_args(argv)
    loudness = pd.read_parquet(
        latest_catalog_file(args.run_data / "03_primary", "loudness.parquet")
    )
    read = readings(args.run_data / "04_feature" / "log_mel_features", loudness)
    if args.anchor not in set(read["stem"]):
        parser.error(f"--anchor {args.anchor!r}: the run has stems {sorted(set(read['stem']))}")
    print(report(read, args.anchor))


if __name__ == "__main__":
    main()
