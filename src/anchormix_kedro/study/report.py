"""The study's report: ``study_report.md`` and its figures, from the analysis' tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def cell(value: object, digits: int = 2) -> str:
    """A table cell: numbers rounded, missing values as n/a, pipes escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame, digits: int = 2) -> list[str]:
    """``frame`` as Markdown table lines."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]  # fmt: skip
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v, digits) for v in row) + " |")
    return lines


SIMULATED_BANNER = ("**Simulated ratings** (`anchormix study simulate`): a rehearsal of the "
                    "analysis; no engineer gave these ratings.")  # fmt: skip


def title(text: str, simulated: bool) -> str:
    """A title that says so when the ratings are simulated."""
    return f"SIMULATED: {text}" if simulated else text


def plot_rating_bars(long: pd.DataFrame, heading: str):
    """Diverging stacked bars: per criterion (panels) and system (bars), the share of
    ratings at each point of the scale, 4 centred on zero, lower ratings to the left."""
    import matplotlib.pyplot as plt

    from anchormix_kedro.vocabulary import CRITERIA, LIKERT_LABELS, LIKERT_MAX, LIKERT_MIN

    points = list(range(LIKERT_MIN, LIKERT_MAX + 1))
    middle = (LIKERT_MIN + LIKERT_MAX) / 2
    colours = plt.get_cmap("RdBu")(np.linspace(0.1, 0.9, len(points)))
    systems = sorted(long["system"].unique()) if len(long) else []
    figure, axes = plt.subplots(len(CRITERIA), 1, figsize=(8.5, 1.2 + 0.55 * len(systems) * 4),
                                sharex=True, squeeze=False)  # fmt: skip
    for axis, criterion in zip(axes[:, 0], CRITERIA, strict=True):
        data = long[long["criterion"] == criterion]
        shares = (data.groupby("system")["rating"].value_counts(normalize=True).unstack()
                  .reindex(index=systems, columns=points, fill_value=0.0).fillna(0.0))  # fmt: skip
        for row, system in enumerate(systems):
            share = shares.loc[system].to_numpy(float)
            below = share[[p < middle for p in points]].sum() + share[points.index(int(middle))] / 2
            left = -below
            for point, value, colour in zip(points, share, colours, strict=True):
                axis.barh(row, value, left=left, color=colour, edgecolor="white", linewidth=0.5,
                          label=f"{point} {LIKERT_LABELS.get(point, '')}".strip() if row == 0 else None)  # fmt: skip
                left += value
        axis.axvline(0, color="0.3", linewidth=0.8)
        axis.set_yticks(range(len(systems)), systems)
        axis.set_title(criterion, loc="left", fontsize=10)
        axis.set_xlim(-1, 1)
    axes[-1, 0].set_xlabel("share of ratings (lower ratings to the left of 0, higher to the right)")
    axes[0, 0].legend(ncol=len(points), fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.15),
                      frameon=False)  # fmt: skip
    figure.suptitle(heading, fontsize=11, y=0.995)
    figure.tight_layout()
    return figure


def plot_genre_panels(genres: pd.DataFrame, heading: str, criterion: str = "mean of criteria"):
    """One panel per genre: each system's mean rating with its interval over examples, and
    the share of its advice that leaves the level inside the genre's usual range."""
    import matplotlib.pyplot as plt

    data = genres[genres["criterion"] == criterion] if len(genres) else genres
    names = sorted(data["genre"].unique()) if len(data) else []
    columns = min(4, max(1, len(names)))
    rows = max(1, -(-len(names) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows),
                                sharey=True, squeeze=False)  # fmt: skip
    for axis in axes.flat[len(names) :]:
        axis.set_visible(False)
    for axis, genre in zip(axes.flat, names, strict=False):
        cell = data[data["genre"] == genre].sort_values("system")
        x = np.arange(len(cell))
        low = (cell["mean"] - cell["ci_low"]).clip(lower=0).fillna(0)
        high = (cell["ci_high"] - cell["mean"]).clip(lower=0).fillna(0)
        axis.bar(x, cell["mean"], yerr=[low, high], color="#4c72b0", capsize=3)
        for xi, share in zip(x, cell["share_within_range"], strict=True):
            if pd.notna(share):
                axis.text(xi, 1.15, f"{share:.0%}", ha="center", fontsize=8, color="white")
        axis.set_xticks(x, cell["system"], rotation=30, ha="right", fontsize=8)
        examples = int(cell["n_examples"].max()) if len(cell) else 0
        axis.set_title(f"{genre} ({examples} examples)", fontsize=9)
        axis.set_ylim(1, 7)
    axes[0, 0].set_ylabel(f"{criterion} (1-7)")
    figure.suptitle(f"{heading}\nbars: mean rating, interval over examples; figures: share of "
                    "advice leaving the level in the genre's usual range", fontsize=10)  # fmt: skip
    figure.tight_layout()
    return figure


def _effect_cell(row) -> str:
    if pd.isna(row.estimate):
        return "n/a"
    p = "n/a" if pd.isna(row.p_adjusted) else f"{row.p_adjusted:.3g}"
    return f"{row.estimate:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}], p = {p}"


def effects_lines(after: pd.DataFrame, before: pd.DataFrame) -> list[str]:
    """The advisor's contrasts after exclusion, beside those with every rater."""
    if after.empty:
        return [
            "No contrast could be estimated (no ratings of the advisor and another system).",
            "",
        ]
    both = after.merge(before, on=["system", "criterion"], how="left", suffixes=("", "_all"))
    lines = ["| criterion | advisor minus | after exclusion: estimate [95% CI], Holm p | "
             "every rater: estimate [95% CI], Holm p |", "|---|---|---|---|"]  # fmt: skip
    for row in both.itertuples(index=False):
        everyone = (pd.Series({"estimate": row.estimate_all, "ci_low": row.ci_low_all,
                               "ci_high": row.ci_high_all, "p_adjusted": row.p_adjusted_all}))  # fmt: skip
        lines.append(f"| {row.criterion} | {row.system} | {_effect_cell(row)} | "
                     f"{_effect_cell(everyone)} |")  # fmt: skip
    return [*lines, ""]


def robustness_lines(checks: pd.DataFrame) -> list[str]:
    if checks.empty:
        return []
    shown = checks.assign(result=[f"{s:.3g} (Holm p = {p:.3g})" for s, p in
                                  zip(checks["statistic"], checks["p_adjusted"], strict=True)])  # fmt: skip
    table = shown.pivot_table(index=["criterion", "system"], columns="test", values="result",
                              aggfunc="first").reset_index()  # fmt: skip
    return [*markdown_table(table), ""]


def quality_lines(quality: pd.DataFrame) -> list[str]:
    if quality.empty:
        return ["No rater of the study database (ratings from files only, or none).", ""]
    excluded = quality[quality["excluded"]]
    lines = [f"{len(quality)} raters in the study database; the exclusion rule (`study.exclusion`)"
             f" leaves out {len(excluded)}:"]  # fmt: skip
    lines += [f"- {row.rater}: {row.reason}" for row in excluded.itertuples(index=False)]
    return [*lines, ""]


def genre_lines(genres: pd.DataFrame) -> list[str]:
    if genres.empty:
        return ["No genre has ratings yet.", ""]
    mean = genres[genres["criterion"] == "mean of criteria"]
    musical = genres[genres["criterion"] == "musicality"].set_index(["genre", "system"])
    rows = []
    for row in mean.itertuples(index=False):
        m = (
            musical.loc[(row.genre, row.system)]
            if (row.genre, row.system) in musical.index
            else None
        )
        rows.append({"genre": row.genre, "system": row.system, "examples": row.n_examples,
                     "mean of criteria [CI]": f"{row.mean:.2f} [{cell(row.ci_low)}, {cell(row.ci_high)}]",
                     "musicality": cell(None if m is None else m["mean"]),
                     "advice within the genre's usual range": (
                         "n/a" if pd.isna(row.share_within_range)
                         else f"{row.share_within_range:.0%} of {row.n_with_move}"),
                     "distance from genre median after (dB)": cell(row.distance_after_db, 1)})  # fmt: skip
    return [*markdown_table(pd.DataFrame(rows)), ""]


def study_report(*, merged: pd.DataFrame, quality: pd.DataFrame, after: pd.DataFrame,
                 before: pd.DataFrame, checks: pd.DataFrame, components: pd.DataFrame,
                 agreement: pd.DataFrame, genres: pd.DataFrame, theme_lines: list[str],
                 validity_lines: list[str], simulated: bool) -> str:  # fmt: skip
    """``study_report.md``: who rated, the effects, genres, themes, metric validity."""
    lines = [f"# {title('The listening study: what engineers said of the advice', simulated)}", ""]
    if simulated:
        lines += [SIMULATED_BANNER, ""]
    if merged.empty:
        lines += ["No ratings yet: invite raters (`anchormix study invite`), or rehearse the "
                  "analysis on simulated ones (`anchormix study simulate --raters 24`, then "
                  "`kedro run --pipeline=correlation --params study.ratings=simulated`).", "",
                  *quality_lines(quality)]  # fmt: skip
        return "\n".join(lines).rstrip() + "\n"
    lines += [f"{len(merged)} rated scenarios by {merged['rater'].nunique()} raters after "
              f"exclusion, on {merged['scenario_id'].nunique()} scenarios.", ""]  # fmt: skip
    lines += quality_lines(quality)
    lines += ["## Is the advisor's advice better? (5.1, 5.4)", "",
              "Advisor minus each other system, in points of the 7-point scale, from a linear "
              "mixed model per criterion with crossed random effects for rater, example and "
              "scenario (REML); Holm-adjusted over every contrast. The field's usual model, a "
              "cumulative-link mixed model, has no maintained Python equivalent with crossed "
              "effects: the ordinal logit and the paired tests below check the result.", "",
              *effects_lines(after, before),
              "![Ratings per system and criterion](rating_bars.png)", "",
              "Robustness checks (ordinal logit without random effects: advisor minus system in "
              "log-odds; Wilcoxon on per-example means; Friedman over all systems):", "",
              *robustness_lines(checks)]  # fmt: skip
    if not components.empty:
        wide = components.pivot_table(
            index="criterion", columns="component", values="sd"
        ).reset_index()
        lines += ["Variance components (standard deviations, scale points): what the next "
                  "power analysis should assume (`study.simulation`).", "",
                  *markdown_table(wide), ""]  # fmt: skip
    if not agreement.empty:
        lines += ["Agreement between raters (Krippendorff's alpha):", "",
                  *markdown_table(agreement[["criterion", "level", "alpha", "n_raters",
                                             "n_scenarios"]], digits=3), ""]  # fmt: skip
    lines += ["## Does the advice follow genre norms? (5.2)", "",
              "Per genre: each system's mean rating (interval over the genre's examples) and "
              "the share of its advice whose move leaves the level inside the usual range "
              "(25th-75th percentile) of the genre's professional mixes.", "",
              *genre_lines(genres), "![Per genre](genre_panels.png)", ""]  # fmt: skip
    lines += [*theme_lines, "", *validity_lines, ""]
    return "\n".join(lines).rstrip() + "\n"
