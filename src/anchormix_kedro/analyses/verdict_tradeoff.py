"""The trade-off of the outer band of ``anchormix advise``'s verdict, on songs not used to measure it.

A wide outer band calls few professional mixes "too loud" or "too soft" but misses more
real errors; a narrow one catches more errors but flags more professional mixes. This
analysis measures both on MUSDB18 songs whose levels were *not* used for the percentiles:

- ``validation``: percentiles from the 80 training songs (as shipped), judged on the 14
  validation songs of ``train/`` (MUSDB18's own held-out songs);
- ``cross-validation``: every song of ``train/`` (training and validation) judged by
  percentiles measured on the other folds (10 folds by song), for a steadier estimate.

For every outer band ``p``-``100 - p`` each held-out pair (all 12 ordered pairs of the four
stems where both play) is judged as it is (a ``too_loud``/``too_soft`` verdict is a false
alarm) and with the target raised and lowered by 12 dB and by 6 dB (caught when the verdict
says the right direction). It writes a table per estimate (CSV; Markdown on stdout) and a
plot, ``verdict_tradeoff.png``, to ``data/08_reporting/analyses/verdict-tradeoff/``::

    anchormix analyse verdict-tradeoff [--musdb-root /path/to/musdb18] [--genre-ranges]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from anchormix_kedro.analyses.shipped_conventions import (
    measure_examples,
    musdb_root,
    pipeline_settings,
)
from anchormix_kedro.errors import CliError
from anchormix_kedro.evaluation.professional_range import (
    RANGE_MIN_SONGS,
    band_tradeoff,
    reference_levels,
)

NAME = "verdict-tradeoff"
OUTER_LOWS = (2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0, 25.0)
ERRORS_DB = (12.0, 6.0)
FOLDS = 10


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
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 5.6))
    axis = figure.subplots()
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


def command(args) -> int:
    """``anchormix analyse verdict-tradeoff``."""
    from anchormix_kedro.analyses.project import output_folder, project_root

    project = project_root(args.project)
    root = musdb_root(args.musdb_root, project)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings, tolerance_db = pipeline_settings(project / "conf")
    examples = measure_examples(root, settings, tolerance_db, ("train", "valid"))
    if examples.empty:
        raise CliError(f"no song under {root} could be measured")
    levels = reference_levels(examples)
    split_of = examples.drop_duplicates("song").set_index("song")["split"]
    training = levels[levels["song"].map(split_of) == "train"]
    validation = levels[levels["song"].map(split_of) == "valid"]
    if training.empty or validation.empty:
        raise CliError(f"{root} needs both training and validation songs of MUSDB18's train/ "
                       f"(it has {training['song'].nunique()} and {validation['song'].nunique()})")  # fmt: skip
    genre_min_songs = RANGE_MIN_SONGS if args.genre_ranges else None
    tables = {
        "validation": tradeoff(training, validation, genre_min_songs),
        "cross-validation": cross_validated(levels, genre_min_songs),
    }
    output = args.output or output_folder(project, NAME)
    output.mkdir(parents=True, exist_ok=True)
    out = sys.stdout.write
    for name, table in tables.items():
        table.to_csv(output / f"verdict_tradeoff_{name}.csv", index=False)
        ranges = "genre ranges" if args.genre_ranges else "ranges of every genre"
        out(f"\n{name} ({ranges}):\n\n")
        out(markdown(table) + "\n")
    plot_path = args.plot or output / "verdict_tradeoff.png"
    plot(tables, plot_path)
    out(f"wrote the tables to {output} and the plot to {plot_path}\n")
    return 0
