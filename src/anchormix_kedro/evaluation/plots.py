"""Figures of the automated evaluation: the per-system summary and convention following."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from anchormix_kedro.evaluation.conditions import AS_MIXED, order_conditions
from anchormix_kedro.evaluation.meter_oracle import ORACLES
from anchormix_kedro.evaluation.summaries import POOLED, order_systems, system_header


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: figures are saved by the catalog, never shown
    import matplotlib.pyplot as plt

    return plt


#: One colour per evaluation condition, in their declared order.
CONDITION_COLOURS = ("#4C72B0", "#DD8452", "#55A868")


def plot_summary(summary: pd.DataFrame, metrics: Sequence[str] | None = None):
    """One panel per metric: each system's estimate with its confidence interval."""
    plt = _pyplot()
    available = summary[summary["estimate"].notna()]
    metrics = [
        m
        for m in (metrics or list(dict.fromkeys(available["metric"])))
        if m in set(available["metric"])
    ]
    if not metrics:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No metric has any value", ha="center", va="center")
        return fig
    columns = min(4, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    conditions = (
        order_conditions(available["condition"]) if "condition" in available else [AS_MIXED]
    )
    width = 0.8 / len(conditions)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        of_metric = available[available["metric"] == metric]
        systems = order_systems(of_metric["system"])
        x = np.arange(len(systems))
        for i, condition in enumerate(conditions):
            frame = (
                of_metric[of_metric["condition"] == condition]
                if "condition" in of_metric
                else of_metric
            )
            frame = frame.set_index("system").reindex(systems)
            lower = (frame["estimate"] - frame["ci_low"]).clip(lower=0).fillna(0)
            upper = (frame["ci_high"] - frame["estimate"]).clip(lower=0).fillna(0)
            offset = x - 0.4 + width * (i + 0.5)
            bars = ax.bar(offset, frame["estimate"], width, color=CONDITION_COLOURS[i % 3],
                          alpha=0.85, label=condition)  # fmt: skip
            for bar, system in zip(bars, systems, strict=True):
                if system in ORACLES:  # the ceiling, not a system: hatched
                    bar.set_hatch("//")
                    bar.set_alpha(0.4)
            ax.errorbar(offset, frame["estimate"], yerr=[lower, upper], fmt="none",
                        color="black", capsize=2)  # fmt: skip
        ax.set_xticks(x, [system_header(s) for s in systems], rotation=30, ha="right", fontsize=8)
        ax.set_title(of_metric["label"].iloc[0], fontsize=9)
    if len(conditions) > 1:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper right", fontsize=8, title="condition")
    fig.suptitle(
        "Automated metrics per system and condition (bars: estimate, whiskers: interval over "
        "songs; hatched: an oracle, not a system)"
    )
    fig.tight_layout(rect=(0, 0, 0.93 if len(conditions) > 1 else 1, 0.97))
    return fig


def plot_convention_following(frame: pd.DataFrame):
    """Per genre: distance from the convention after each system's advice, before it, and
    where the professional mixes sit (research question 2)."""
    plt = _pyplot()
    data = frame[frame["genre"] != POOLED]
    if data.empty:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No example has a genre convention", ha="center", va="center")
        return fig
    genres = sorted(data["genre"].unique())
    systems = order_systems(data["system"])
    width = 0.8 / max(1, len(systems))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(genres) + 2), 4.5))
    x = np.arange(len(genres))
    for i, system in enumerate(systems):
        rows = data[data["system"] == system].set_index("genre").reindex(genres)
        estimate = rows["distance_after_db"].astype(float)
        lower = (estimate - rows["distance_after_ci_low"].astype(float)).clip(lower=0).fillna(0)
        upper = (rows["distance_after_ci_high"].astype(float) - estimate).clip(lower=0).fillna(0)
        ax.bar(x + (i - (len(systems) - 1) / 2) * width, estimate, width, label=system)
        ax.errorbar(
            x + (i - (len(systems) - 1) / 2) * width,
            estimate,
            yerr=[lower, upper],
            fmt="none",
            color="black",
            capsize=2,
            linewidth=0.8,
        )
    first = data.drop_duplicates("genre").set_index("genre").reindex(genres)
    ax.scatter(x, first["distance_before_db"], marker="v", color="grey", zorder=3, label="before")
    ax.scatter(
        x, first["reference_distance_db"], marker="*", s=80, color="black", zorder=3,
        label="professional mix",
    )  # fmt: skip
    ax.set_xticks(x, genres, rotation=30, ha="right")
    ax.set_ylabel("|level - genre convention| (dB)")
    ax.set_title("Does the advice follow the genre conventions of the training split?")
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    return fig
