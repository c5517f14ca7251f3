"""The trade-off of the outer band of ``anchormix advise``'s verdict, on songs not used to measure it.

A wide outer band calls few professional mixes "too loud" or "too soft" but misses more
real errors; a narrow one catches more errors but flags more professional mixes. This
script measures both on MUSDB18 songs whose levels were *not* used for the percentiles:

- ``validation``: percentiles from the 80 training songs (as shipped), judged on the 14
  validation songs of ``train/`` (MUSDB18's own held-out songs);
- ``cross-validation``: every song of ``train/`` (training and validation) judged by
  percentiles measured on the other folds (10 folds by song), for a steadier estimate.

For every outer band ``p``-``100 - p`` each held-out pair (all 12 ordered pairs of the four
stems where both play) is judged as it is (a ``too_loud``/``too_soft`` verdict is a false
alarm) and with the target raised and lowered by 12 dB and by 6 dB (caught when the verdict
says the right direction). It writes a table (CSV and Markdown) and a plot.

    python scripts/verdict_tradeoff.py [--musdb-root /path/to/musdb18] [--plot docs/verdict_tradeoff.png]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchormix_kedro.evaluation.professional_range import (  # noqa: E402
    RANGE_MIN_SONGS,
    band_tradeoff,
    reference_levels,
)
from measure_shipped_conventions import (  # noqa: E402
    CONF,
    DEFAULT_ROOT,
    measure_examples,
    pipeline_settings,
)

OUTER_LOWS = (2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0)
ERRORS_DB = (12.0, 6.0)
FOLDS = 10
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = PROJECT_ROOT / "data" / "08_reporting" / "verdict_tradeoff"

logger = logging.getLogger("verdict_tradeoff")


def tradeoff(
    reference: pd.DataFrame, held_out: pd.DataFrame, genre_min_songs: int | None
) -> pd.DataFrame:
    """:func:`band_tradeoff` for every error size, side by side."""
    tables = [
        band_tradeoff(
            reference, held_out, OUTER_LOWS, error, genre_min_songs=genre_min_songs
        ).rename(columns={"errors_caught": f"caught_{error:g}_db"})
        for error in ERRORS_DB
    ]
    merged = tables[0]
    for table in tables[1:]:
        merged[table.columns[-1]] = table[table.columns[-1]]
    return merged


def cross_validated(
    levels: pd.DataFrame, genre_min_songs: int | None, folds: int = FOLDS
) -> pd.DataFrame:
    """Every song judged by percentiles of the others, pooled over ``folds`` folds by song."""
    songs = np.array(sorted(levels["song"].unique()))
    order = np.random.default_rng(0).permutation(len(songs))
    counts = []
    for fold in range(folds):
        held = set(songs[order[fold::folds]])
        table = tradeoff(
            levels[~levels["song"].isin(held)], levels[levels["song"].isin(held)], genre_min_songs
        )
        counts.append(table)
    pairs = sum(t["pairs"] for t in counts)
    combined = counts[0][["outer_low", "outer_high"]].copy()
    combined["pairs"] = pairs
    combined["songs"] = len(songs)
    for column in ["professional_flagged", *(f"caught_{e:g}_db" for e in ERRORS_DB)]:
        combined[column] = sum(t[column] * t["pairs"] for t in counts) / pairs
    return combined


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| outer band | held-out songs | pairs | professional pairs flagged | 12 dB errors caught "
        "| 6 dB errors caught |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        lines.append(
            f"| {row.outer_low:g}-{row.outer_high:g} | {row.songs} | {row.pairs} | "
            f"{row.professional_flagged:.0%} | {row.caught_12_db:.0%} | {row.caught_6_db:.0%} |"
        )
    return "\n".join(lines) + "\n"


def plot(tables: dict[str, pd.DataFrame], path: Path) -> None:
    figure, axis = plt.subplots(figsize=(7.5, 5.6))
    styles = {"validation": "-", "cross-validation": "--"}
    curves = (
        ("professional_flagged", "professional pairs called too loud/soft", "tab:red", "o"),
        ("caught_12_db", "12 dB errors caught", "tab:blue", "s"),
        ("caught_6_db", "6 dB errors caught", "tab:green", "^"),
    )
    for name, table in tables.items():
        for column, label, color, marker in curves:
            axis.plot(table["outer_low"], 100 * table[column], styles[name], color=color,
                      marker=marker, label=f"{label} ({name})")  # fmt: skip
    axis.axhline(20, color="tab:red", linewidth=0.8, alpha=0.5)
    axis.axhline(90, color="tab:blue", linewidth=0.8, alpha=0.5)
    axis.axvline(10, color="grey", linewidth=0.8, linestyle=":")
    axis.text(10.2, 3, "default 10-90", fontsize=8, color="grey")
    axis.set_xticks(list(OUTER_LOWS), [f"{p:g}-{100 - p:g}" for p in OUTER_LOWS], rotation=30)
    axis.set_xlabel("outer band (percentiles); beyond it: too loud / too soft")
    axis.set_ylabel("% of held-out pairs")
    axis.set_ylim(0, 101)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
    axis.set_title("Verdict of anchormix advise on MUSDB18 songs not used for the percentiles\n"
                   "(goals: at most 20% flagged, at least 90% of 12 dB errors caught)",
                   fontsize=9)  # fmt: skip
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--musdb-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--conf", type=Path, default=CONF, help="the project's conf/ folder")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder for the tables")
    parser.add_argument("--plot", type=Path, help="where to write the plot (default: --output)")
    parser.add_argument(
        "--genre-ranges",
        action="store_true",
        help=f"a genre's own range where it has at least {RANGE_MIN_SONGS} songs for a pair "
        "(as anchormix advise --genre-ranges); default: every genre's songs",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings, tolerance_db = pipeline_settings(args.conf)
    examples = measure_examples(args.musdb_root, settings, tolerance_db, ("train", "valid"))
    levels = reference_levels(examples)
    split_of = examples.drop_duplicates("song").set_index("song")["split"]
    training = levels[levels["song"].map(split_of) == "train"]
    validation = levels[levels["song"].map(split_of) == "valid"]
    genre_min_songs = RANGE_MIN_SONGS if args.genre_ranges else None
    tables = {
        "validation": tradeoff(training, validation, genre_min_songs),
        "cross-validation": cross_validated(levels, genre_min_songs),
    }
    args.output.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(args.output / f"verdict_tradeoff_{name}.csv", index=False)
        ranges = "genre ranges" if args.genre_ranges else "ranges of every genre"
        print(f"\n{name} ({ranges}):\n")
        print(markdown(table))
    plot_path = args.plot or args.output / "verdict_tradeoff.png"
    plot(tables, plot_path)
    print(f"wrote the tables to {args.output} and the plot to {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
