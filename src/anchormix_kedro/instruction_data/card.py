"""The instruction dataset's card (Markdown) and its picture of the professional balance."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are saved by the catalog, never shown
import matplotlib.pyplot as plt
import pandas as pd
import yaml

#: Where the songs came from, and on what terms (the dataset's and each model's card).
CORPORA: dict[str, dict[str, str | None]] = {
    "musdb18": {
        "name": "MUSDB18",
        "license": "other",
        "license_name": "musdb18",
        "license_link": "https://zenodo.org/records/1117372",
        "terms": "MUSDB18's licence: non-commercial research use only",
    },
    "musdb18-hq": {
        "name": "MUSDB18-HQ",
        "license": "other",
        "license_name": "musdb18-hq",
        "license_link": "https://zenodo.org/records/3338373",
        "terms": "MUSDB18-HQ's licence: non-commercial research use only",
    },
    "synthetic": {
        "name": "AnchorMix synthetic multitracks",
        "license": "cc0-1.0",
        "license_name": None,
        "license_link": None,
        "terms": "rendered by AnchorMix from code, CC0",
    },
    "unknown": {
        "name": "unknown",
        "license": "unknown",
        "license_name": None,
        "license_link": None,
        "terms": "unknown: the songs' source was not recorded",
    },
}


def corpus_source(tracks: pd.DataFrame | None) -> str:
    """The corpus the tracks table came from: a key of :data:`CORPORA`."""
    if tracks is None or tracks.empty:
        return "unknown"
    if set(tracks["source"]) == {"synthetic"}:
        return "synthetic"
    layouts = set(tracks.loc[tracks["source"] != "synthetic", "layout"])
    return "musdb18-hq" if layouts == {"wav_folder"} else "musdb18"


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return name
    return "100K<n<1M"


def dataset_card_header(dataset: pd.DataFrame, tracks: pd.DataFrame | None) -> str:
    """The card's metadata header (Hugging Face's YAML block): source, licence, counts."""
    source = corpus_source(tracks)
    corpus = CORPORA[source]
    splits = dataset.groupby("split")
    metadata = {
        "pretty_name": "AnchorMix instruction dataset",
        **{k: corpus[k] for k in ("license", "license_name", "license_link") if corpus[k]},
        "language": ["en"],
        "task_categories": ["audio-text-to-text"],
        "tags": ["music", "mixing", "gain-balancing", "instruction-tuning"],
        "source_datasets": [source],
        "size_categories": [_size_category(len(dataset))],
        "dataset_info": {
            "splits": [{"name": str(s), "num_examples": int(len(f))} for s, f in splits]
        },
        "anchormix": {
            "source": corpus["name"],
            "terms": corpus["terms"],
            "conversations": int(len(dataset)),
            "songs": {str(s): int(f["song"].nunique()) for s, f in splits},
        },
    }
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---"


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
    tracks: pd.DataFrame | None = None,
) -> str:
    """A Markdown card: a metadata header (source and licence from ``tracks``, counts), then
    sizes by split, label, pair and genre; conventions; what was skipped."""
    data = instruction_dataset.assign(
        pair=instruction_dataset["anchor"] + " > " + instruction_dataset["target"]
    )
    songs_per_split = data.groupby("split")["song"].nunique()
    skipped_songs = ingestion_summary["songs_skipped"]
    corpus = CORPORA[corpus_source(tracks)]
    lines = [
        dataset_card_header(instruction_dataset, tracks),
        "",
        "# AnchorMix instruction dataset",
        "",
        f"Source: {corpus['name']} ({corpus['terms']}).",
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
