"""The instruction dataset's card (Markdown) and its picture of the professional balance."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are saved by the catalog, never shown
import matplotlib.pyplot as plt
import pandas as pd


def _count_table(frame: pd.DataFrame, by: list[str]) -> str:
    counts = frame.groupby(by).size().rename("examples").reset_index()
    header = "| " + " | ".join([*by, "examples"]) + " |"
    rule = "|" + "---|" * (len(by) + 1)
    lines = [
        "| " + " | ".join(str(v) for v in row) + " |" for row in counts.itertuples(index=False)
    ]
    return "\n".join([header, rule, *lines])


def make_dataset_card(
    instruction_dataset: pd.DataFrame,
    conventions: pd.DataFrame,
    ingestion_summary: dict,
    perturbation_summary: dict,
) -> str:
    """A Markdown card: sizes by split, label, pair and genre; conventions; what was skipped."""
    data = instruction_dataset.assign(
        pair=instruction_dataset["anchor"] + " > " + instruction_dataset["target"]
    )
    songs_per_split = data.groupby("split")["song"].nunique()
    skipped_songs = ingestion_summary["songs_skipped"]
    lines = [
        "# AnchorMix instruction dataset",
        "",
        f"{len(data)} conversations from {data['song'].nunique()} songs "
        f"({', '.join(f'{s}: {n} songs' for s, n in songs_per_split.items())}); no song is in two splits.",
        "Each conversation holds the anchor clip, the target clip (gain-perturbed from the professional mix) "
        "and reference advice; a target-only variant serves the no-anchor ablation.",
        "",
        "## By split and label",
        _count_table(data, ["split", "label"]),
        "",
        "## By pair",
        _count_table(data, ["split", "pair"]),
        "",
        "## By genre",
        _count_table(data, ["split", "genre"]),
        "",
        "## Genre conventions (training split, reference target-minus-anchor level in dB)",
        "| genre | pair | songs | median | IQR |",
        "|---|---|---|---|---|",
        *[
            f"| {r.genre} | {r.anchor} > {r.target} | {r.n_songs} | {r.median_db:+.1f} | {r.q25_db:+.1f} .. {r.q75_db:+.1f} |"
            for r in conventions.itertuples(index=False)
        ],
        "",
        "## Skipped",
        f"- songs listed: {ingestion_summary['songs_listed']}, ingested: {ingestion_summary['songs_ingested']}, "
        f"skipped: {len(skipped_songs)}",
        *[f"  - {song}: {reason}" for song, reason in skipped_songs.items()],
        f"- pairs formed: {perturbation_summary['pairs_formed']}; pairs skipped (silent or sparse stems):",
        *[f"  - {reason}: {n}" for reason, n in perturbation_summary["pairs_skipped"].items()],
        *(["  - none"] if not perturbation_summary["pairs_skipped"] else []),
        f"- warnings: {len(ingestion_summary['warnings'])}",
        *[f"  - {w}" for w in ingestion_summary["warnings"]],
        "",
    ]
    return "\n".join(lines)


def plot_reference_levels(examples: pd.DataFrame) -> plt.Figure:
    """Reference relative level (target minus anchor, dB) per pair, one box per genre."""
    references = examples.drop_duplicates(["song", "anchor", "target"])
    pairs = references[["anchor", "target"]].drop_duplicates().itertuples(index=False)
    pairs = list(pairs)
    genres = sorted(references["genre"].unique())
    fig, axes = plt.subplots(
        1, len(pairs), figsize=(4.5 * len(pairs), 4.5), sharey=True, squeeze=False
    )
    for ax, (anchor, target) in zip(axes[0], pairs, strict=True):
        subset = references[(references["anchor"] == anchor) & (references["target"] == target)]
        data = [
            subset.loc[subset["genre"] == g, "reference_relative_db"].to_numpy() for g in genres
        ]
        ax.boxplot(data, tick_labels=genres, showfliers=False)
        for i, values in enumerate(data, start=1):
            ax.scatter([i] * len(values), values, s=10, alpha=0.6)
        ax.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_title(f"{target} relative to {anchor}")
        plt.setp(ax.get_xticklabels(), rotation=40, ha="right")
    axes[0][0].set_ylabel("reference level, target - anchor (dB LUFS)")
    fig.suptitle("Balance in the professional mixes, by genre")
    fig.tight_layout()
    return fig
