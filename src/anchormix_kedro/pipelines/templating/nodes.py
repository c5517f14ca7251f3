"""Nodes of the templating pipeline: examples -> conversations, conventions, card and plots."""

from __future__ import annotations

import json
import logging

import matplotlib

matplotlib.use("Agg")  # headless: figures are saved by the catalog, never shown
import matplotlib.pyplot as plt
import pandas as pd

from anchormix_kedro.instruction_data.advice import (
    advice_text,
    audio_uri,
    convention_sentence,
    conversation,
    example_rng,
    instruction_text,
)
from anchormix_kedro.instruction_data.conventions import (
    ALL_GENRES,
    convention_index,
    lookup_convention,
    measure_genre_conventions,
)
from anchormix_kedro.instruction_data.musdb import SPLITS, UNKNOWN_GENRE
from anchormix_kedro.vocabulary import ANCHOR_TARGET, FORMULATIONS, SINGLE_CLIP, TARGET_ONLY

logger = logging.getLogger(__name__)


def measure_conventions(examples: pd.DataFrame) -> pd.DataFrame:
    """Genre conventions (median, spread of each pair's reference level) of the training split."""
    conventions = measure_genre_conventions(examples, split="train")
    logger.info(
        "Genre conventions: %d (genre, pair) rows from the training split", len(conventions)
    )
    return conventions


def check_song_splits(examples: pd.DataFrame) -> None:
    """Raise if any song appears in more than one split (that would leak test audio into training)."""
    per_song = examples.groupby("song")["split"].nunique()
    leaking = per_song[per_song > 1].index.tolist()
    if leaking:
        raise ValueError(
            f"songs in more than one split: {leaking}; splits must be assigned per song"
        )
    unknown = sorted(set(examples["split"]) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split names {unknown}; expected {', '.join(SPLITS)}")


def build_instruction_dataset(
    examples: pd.DataFrame, conventions: pd.DataFrame, templating: dict
) -> pd.DataFrame:
    """One chat conversation per example and input formulation (``messages_<formulation>``).

    ``anchor_target`` (the method: anchor clip, target clip), ``target_only`` (the no-anchor
    ablation, advice phrased against the mix) and ``single_clip`` (the anchor, a pause and
    the target in one clip).

    The assistant turn is the reference advice: relation, direction, amount in dB and the
    fader move; with probability ``convention_sentence_probability`` it adds the genre's
    convention measured on the training split.
    """
    check_song_splits(examples)
    seed = int(templating["seed"])
    system_prompt = templating["system_prompt"]
    probability = float(templating["convention_sentence_probability"])
    min_songs = int(templating["convention_min_songs"])
    index = convention_index(conventions)
    rows = []
    for ex in examples.itertuples(index=False):
        rng_advice = example_rng(seed, ex.example_id, "advice")
        convention = None
        if example_rng(seed, ex.example_id, "convention").random() < probability:
            found = lookup_convention(index, ex.genre, ex.anchor, ex.target, min_songs)
            if found is not None:
                convention = convention_sentence(
                    ex.genre,
                    ex.anchor,
                    ex.target,
                    float(found["median_db"]),
                    pooled=found["genre"] == ALL_GENRES,
                )
        genre = (
            ex.genre
            if templating["mention_genre_in_prompt"] and ex.genre != UNKNOWN_GENRE
            else None
        )
        # The amount the advice names undoes the perturbation: a fader move of -gain_db.
        advice = advice_text(ex.label, ex.target, ex.anchor, ex.gain_db, rng_advice, convention)
        advice_target_only = advice_text(ex.label, ex.target, None, ex.gain_db, rng_advice)
        clips = {
            ANCHOR_TARGET: [
                audio_uri(ex.excerpt_id, ex.anchor),
                audio_uri(ex.excerpt_id, ex.target, ex.gain_db),
            ],
            TARGET_ONLY: [audio_uri(ex.excerpt_id, ex.target, ex.gain_db)],
            SINGLE_CLIP: [audio_uri(ex.excerpt_id, [ex.anchor, ex.target], ex.gain_db)],
        }
        row = {**ex._asdict(), "advice": advice}
        for formulation in FORMULATIONS:
            # The same draw for every formulation: they differ only in what they must convey.
            rng_prompt = example_rng(seed, ex.example_id, "instruction")
            instruction = instruction_text(formulation, ex.anchor, ex.target, rng_prompt, genre)
            answer = advice_target_only if formulation == TARGET_ONLY else advice
            row[f"messages_{formulation}"] = json.dumps(
                conversation(system_prompt, clips[formulation], instruction, answer)
            )
        rows.append(row)
    dataset = pd.DataFrame(rows)
    logger.info(
        "Instruction dataset: %d conversations (%s)",
        len(dataset),
        ", ".join(f"{k} {v}" for k, v in dataset["split"].value_counts().sort_index().items()),
    )
    return dataset


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
