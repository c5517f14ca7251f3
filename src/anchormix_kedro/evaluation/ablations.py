"""The ablation table: the method (the advisor) minus every other system, condition by
condition, on paired examples, and where genre context changes the advice.

Every system is compared with the reference on the same judgements: the same excerpt,
target and offset in the same condition. A system that answers the reference's examples
pairs on those examples alone; a variant anchored on other stems only pairs on (excerpt,
target, offset) with the reference's example of its own (most frequent) anchor, where the
targets coincide. The difference is *reference minus system* (what the reference's choice adds),
with an interval from resampling songs (each song with all its pairs,
:func:`anchormix_kedro.evaluation.statistics.paired_song_bootstrap`) and two paired tests:
the bootstrap's two-sided p-value and Wilcoxon's signed-rank test on the songs' mean
differences (``scipy.stats.wilcoxon``; songs, not examples, are independent).

:func:`genre_table` gives each system's accuracy per genre with its song interval and,
per genre, the paired difference from the reference; :func:`genre_context` says which
systems are asked with a genre context other than the reference's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from anchormix_kedro.evaluation.conditions import order_conditions
from anchormix_kedro.evaluation.meter_oracle import system_kind
from anchormix_kedro.evaluation.statistics import (
    balanced_f1,
    paired_song_bootstrap,
    seeded_rng,
    song_bootstrap_mean,
)
from anchormix_kedro.evaluation.summaries import (
    AUTOMATED_METRICS,
    BETTER_WORDS,
    MetricSpec,
    order_systems,
    system_header,
)

#: How a system's rows met the reference's.
SAME_EXAMPLE, OTHER_ANCHOR = "same example", "same target, other anchor"
PAIRING_KEYS: tuple[str, ...] = ("condition", "excerpt_id", "target", "gain_db")
ABLATION_COLUMNS: tuple[str, ...] = (
    "condition",
    "system",
    "kind",
    "reference",
    "metric",
    "label",
    "pairing",
    "n",
    "n_songs",
    "reference_estimate",
    "system_estimate",
    "difference",
    "ci_low",
    "ci_high",
    "p_bootstrap",
    "p_wilcoxon",
    "better",
    "digits",
)
#: The metrics the Markdown shows (the CSV holds every automated metric with values).
HEADLINE: tuple[str, ...] = (
    "direction_accuracy_4db",
    "direction_accuracy",
    "balanced_f1",
    "amount_mae_db",
    "bertscore_f1",
    "meteor",
)
GENRE_METRIC = "direction_accuracy_4db"
GENRE_COLUMNS: tuple[str, ...] = (
    "condition",
    "genre",
    "system",
    "kind",
    "genre_context",
    "metric",
    "n",
    "n_songs",
    "estimate",
    "ci_low",
    "ci_high",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "p_bootstrap",
)


def _declared(systems: Mapping | None, reference: str) -> list[str]:
    """The reference, then the systems in their declared order (variants, baselines)."""
    systems = systems or {}
    names = [reference, *(systems.get("variants") or {}), *(systems.get("baselines") or ())]
    return list(dict.fromkeys(names))


def _label(metric: str) -> str:
    return next((s.label for s in AUTOMATED_METRICS if s.name == metric), metric)


def _specs() -> list[MetricSpec]:
    return [s for s in AUTOMATED_METRICS if s.name != "latency_s"]


def paired_rows(table: pd.DataFrame, reference: str, system: str) -> pd.DataFrame:
    """The system's rows beside the reference's (columns suffixed ``_ref``), with how each
    pair met (``pairing``). A system that answers any of the reference's examples is
    compared on those alone (the same example); one anchored on other stems only pairs on
    (condition, excerpt, target, offset) with the reference's most frequent anchor."""
    ref = table[table["system"] == reference]
    own = table[table["system"] == system]
    if ref.empty or own.empty:
        return pd.DataFrame()
    same = own.merge(ref, on=["condition", "example_id"], suffixes=("", "_ref"))
    if len(same):
        return same.assign(pairing=SAME_EXAMPLE)
    anchor = ref["anchor"].value_counts().index[0]
    by_key = ref[ref["anchor"] == anchor].drop_duplicates(list(PAIRING_KEYS))
    other = own.merge(by_key, on=list(PAIRING_KEYS), suffixes=("", "_ref"))
    return other.assign(pairing=OTHER_ANCHOR)


def _wilcoxon(first: pd.Series, second: pd.Series, songs: pd.Series) -> float:
    """Wilcoxon's signed-rank p-value on the songs' mean differences (NaN with under two
    songs; 1 when every song's difference is zero)."""
    a = pd.to_numeric(first.astype("Float64"), errors="coerce").astype(float)
    b = pd.to_numeric(second.astype("Float64"), errors="coerce").astype(float)
    keep = a.notna() & b.notna()
    per_song = (a[keep] - b[keep]).groupby(songs[keep].to_numpy()).mean()
    if len(per_song) < 2:
        return math.nan
    if np.allclose(per_song.to_numpy(), 0.0):
        return 1.0
    d = per_song.to_numpy()
    # With ties or zeros SciPy's exact test falls back to a slow permutation; the normal
    # approximation is what such data get in the textbooks.
    tied = len(np.unique(np.abs(d))) < len(d) or (d == 0).any()
    method = "approx" if tied else "auto"
    return float(stats.wilcoxon(d, zero_method="zsplit", method=method).pvalue)


def _estimate(values: pd.Series, kind: str) -> float:
    if kind == "balanced_f1":
        return balanced_f1(values)
    return float(pd.to_numeric(values.astype("Float64"), errors="coerce").astype(float).mean())


def ablation_comparisons(
    table: pd.DataFrame,
    reference: str,
    systems: Mapping | None = None,
    specs: Sequence[MetricSpec] | None = None,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """``reference`` minus every other system of the metric ``table``, per condition and
    metric, on paired rows (:func:`paired_rows`). Long format, :data:`ABLATION_COLUMNS`;
    ``systems`` (the ``systems`` parameters) tells trained systems from baselines."""
    rows = []
    specs = list(specs or _specs())
    conditions = order_conditions(table["condition"])
    for system in order_systems(table["system"], _declared(systems, reference)):
        if system == reference:
            continue
        pairs = paired_rows(table, reference, system)
        for condition in conditions:
            part = pairs[pairs["condition"] == condition] if len(pairs) else pairs
            if part.empty:
                continue
            pairing = " + ".join(sorted(set(part["pairing"])))
            for spec in specs:
                if spec.column not in part.columns:
                    continue
                kind = "balanced_f1" if spec.kind == "balanced_f1" else "mean"
                mine, theirs = part[f"{spec.column}_ref"], part[spec.column]
                if kind == "mean" and (
                    pd.to_numeric(mine.astype("Float64"), errors="coerce").isna().all()
                    or pd.to_numeric(theirs.astype("Float64"), errors="coerce").isna().all()
                ):
                    continue
                result = paired_song_bootstrap(
                    mine, theirs, part["song"], kind, n_resamples, confidence,
                    seeded_rng(seed, "ablation", condition, reference, system, spec.name),
                )  # fmt: skip
                rows.append(
                    {
                        "condition": condition,
                        "system": system,
                        "kind": system_kind(system, systems),
                        "reference": reference,
                        "metric": spec.name,
                        "label": spec.label,
                        "pairing": pairing,
                        "n": result["n"],
                        "n_songs": result["n_songs"],
                        "reference_estimate": _estimate(mine, kind),
                        "system_estimate": _estimate(theirs, kind),
                        "difference": result["difference"],
                        "ci_low": result["ci_low"],
                        "ci_high": result["ci_high"],
                        "p_bootstrap": result["p_value"],
                        "p_wilcoxon": (
                            math.nan if kind != "mean" else _wilcoxon(mine, theirs, part["song"])
                        ),
                        "better": BETTER_WORDS[spec.higher_is_better],
                        "digits": spec.digits,
                    }
                )
    return pd.DataFrame(rows, columns=list(ABLATION_COLUMNS))


def _p(value: float) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _condition_lines(part: pd.DataFrame, metrics: list[str], labels: dict) -> list[str]:
    reference = part["reference"].iloc[0]
    lines = [
        "| system | kind | pairs (songs) | "
        + " | ".join(labels[m] for m in metrics)
        + " | p bootstrap | p Wilcoxon |",
        "|---|---|---|" + "---|" * (len(metrics) + 2),
    ]
    for system in dict.fromkeys(part["system"]):  # as compared: the declared order
        mine = part[part["system"] == system].set_index("metric")
        cells = []
        for metric in metrics:
            row = mine.loc[metric] if metric in mine.index else None
            if row is None or pd.isna(row["difference"]):
                cells.append("n/a")
                continue
            digits = int(row["digits"])
            cells.append(
                f"{row['difference']:+.{digits}f} [{row['ci_low']:+.{digits}f}, "
                f"{row['ci_high']:+.{digits}f}]"
            )
        first = mine.loc[metrics[0]] if metrics and metrics[0] in mine.index else None
        counts = mine.iloc[0]
        lines.append(
            f"| {system_header(system)} | {counts['kind']} | {int(counts['n'])} "
            f"({int(counts['n_songs'])}) | " + " | ".join(cells) + " | "
            f"{_p(None if first is None else first['p_bootstrap'])} | "
            f"{_p(None if first is None else first['p_wilcoxon'])} |"
        )
    other = sorted(part.loc[part["pairing"] != SAME_EXAMPLE, "system"].unique())
    if other:
        lines += ["", f"Paired on the same excerpt, target and offset with `{reference}`'s "
                  f"own anchor: {', '.join(other)}."]  # fmt: skip
    return lines


def ablation_sections(comparisons: pd.DataFrame, confidence: float = 0.95) -> dict[str, str]:
    """Per condition, the reference minus each system in Markdown: one row per system, the
    headline metrics as ``difference [interval]``, the paired tests of the first."""
    if comparisons.empty:
        return {}
    reference = comparisons["reference"].iloc[0]
    metrics = [m for m in HEADLINE if m in set(comparisons["metric"])]
    labels = dict(zip(comparisons["metric"], comparisons["label"], strict=False))
    note = (
        f"Each cell: `{reference}` minus the system on paired examples [{confidence:.0%} "
        f"interval over songs]; positive: `{reference}` higher. p: a paired bootstrap over "
        "songs and Wilcoxon's signed-rank test on the songs' mean differences, for "
        f"{labels[metrics[0]] if metrics else 'n/a'}."
    )
    return {
        str(condition): "\n".join(
            [
                f"**`{reference}` minus each system, paired**",
                "",
                note,
                "",
                *_condition_lines(part, metrics, labels),
            ]
        )
        + "\n"  # fmt: skip
        for condition, part in comparisons.groupby("condition", sort=False)
    }


def _genre_setting(block: Mapping | None) -> object:
    return ((block or {}).get("prompt") or {}).get("genre")


def genre_context(systems: Mapping | None, reference: str) -> dict[str, str]:
    """Per declared variant: ``as the reference`` or what its prompt's genre setting
    (``systems.variants.<name>.prompt.genre``) makes of the genre context."""
    variants = dict((systems or {}).get("variants") or {})
    mine = _genre_setting(variants.get(reference))
    words = {True: "genre named", False: "genre not named", None: "as the dataset"}
    return {
        name: "as the reference"
        if _genre_setting(block) == mine
        else words.get(_genre_setting(block), str(_genre_setting(block)))
        for name, block in variants.items()
    }


def genre_table(
    table: pd.DataFrame,
    reference: str,
    systems: Mapping | None = None,
    metric: str = GENRE_METRIC,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per condition, genre and system: ``metric``'s estimate with its song interval and,
    for the other systems, ``reference`` minus the system on paired rows of that genre.
    Columns :data:`GENRE_COLUMNS`."""
    spec = next(s for s in AUTOMATED_METRICS if s.name == metric)
    contexts = genre_context(systems, reference)
    rows = []
    pairs = {
        s: paired_rows(table, reference, s)
        for s in order_systems(table["system"], _declared(systems, reference))
        if s != reference
    }
    for condition in order_conditions(table["condition"]):
        rows_of = table[table["condition"] == condition]
        for genre in sorted(rows_of["genre"].dropna().unique()):
            of_genre = rows_of[rows_of["genre"] == genre]
            for system in order_systems(of_genre["system"], _declared(systems, reference)):
                own = of_genre[of_genre["system"] == system]
                estimate, low, high, songs = song_bootstrap_mean(
                    own[spec.column], own["song"], n_resamples, confidence,
                    seeded_rng(seed, "genre", condition, genre, system),
                )  # fmt: skip
                difference = {"difference": math.nan, "ci_low": math.nan,
                              "ci_high": math.nan, "p_value": math.nan}  # fmt: skip
                if system != reference and len(pairs[system]):
                    part = pairs[system]
                    part = part[(part["condition"] == condition) & (part["genre"] == genre)]
                    if len(part):
                        difference = paired_song_bootstrap(
                            part[f"{spec.column}_ref"], part[spec.column], part["song"],
                            "mean", n_resamples, confidence,
                            seeded_rng(seed, "genre-paired", condition, genre, system),
                        )  # fmt: skip
                rows.append(
                    {
                        "condition": condition,
                        "genre": genre,
                        "system": system,
                        "kind": system_kind(system, systems),
                        "genre_context": contexts.get(system, "none (not a trained variant)"),
                        "metric": metric,
                        "n": int(pd.to_numeric(own[spec.column], errors="coerce").notna().sum()),
                        "n_songs": songs,
                        "estimate": estimate,
                        "ci_low": low,
                        "ci_high": high,
                        "difference": difference["difference"],
                        "difference_ci_low": difference["ci_low"],
                        "difference_ci_high": difference["ci_high"],
                        "p_bootstrap": difference["p_value"],
                    }
                )
    return pd.DataFrame(rows, columns=list(GENRE_COLUMNS))


def genre_markdown(genres: pd.DataFrame, reference: str, condition: str) -> str:
    """Condition ``condition``: one row per genre, one column per system (its accuracy;
    for a system asked with another genre context, the difference from the reference)."""
    part = genres[genres["condition"] == condition]
    if part.empty:
        return ""
    systems = list(dict.fromkeys(part["system"]))  # the reference first, then as compared
    differs = {
        s for s in systems
        if part.loc[part["system"] == s, "genre_context"].iloc[0] not in (
            "as the reference", "none (not a trained variant)")
    }  # fmt: skip
    lines = [
        f"**{_label(part['metric'].iloc[0])} per genre, condition `{condition}`** (estimate "
        "[interval over songs]; for a variant asked with another genre context than "
        f"`{reference}`, also `{reference}` minus it on paired examples)",
        "",
        "| genre | " + " | ".join(system_header(s) for s in systems) + " |",
        "|---|" + "---|" * len(systems),
    ]
    for genre, rows in part.groupby("genre", sort=True):
        by_system = rows.set_index("system")
        cells = []
        for system in systems:
            if system not in by_system.index or pd.isna(by_system.loc[system, "estimate"]):
                cells.append("n/a")
                continue
            r = by_system.loc[system]
            cell = f"{r['estimate']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] ({int(r['n'])})"
            if system in differs and not pd.isna(r["difference"]):
                cell += (
                    f"; {r['difference']:+.2f} [{r['difference_ci_low']:+.2f}, "
                    f"{r['difference_ci_high']:+.2f}]"
                )
            cells.append(cell)
        lines.append(f"| {genre} | " + " | ".join(cells) + " |")
    if differs:
        lines += ["", "Asked with another genre context: " + ", ".join(
            f"`{s}` ({part.loc[part['system'] == s, 'genre_context'].iloc[0]})"
            for s in sorted(differs)) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_ablation(comparisons: pd.DataFrame, metric: str = GENRE_METRIC, confidence: float = 0.95):
    """Reference minus each system on ``metric``, one panel per condition, with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = comparisons[comparisons["metric"] == metric]
    if data.empty:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"No paired comparison on {metric}", ha="center", va="center")
        return fig
    conditions = order_conditions(data["condition"])
    systems = list(dict.fromkeys(data["system"]))  # as compared: the declared order
    fig, axes = plt.subplots(
        1, len(conditions), figsize=(4.2 * len(conditions), 0.5 * len(systems) + 1.6),
        sharey=True, sharex=True, squeeze=False,
    )  # fmt: skip
    y = np.arange(len(systems))[::-1]
    for ax, condition in zip(axes[0], conditions, strict=True):
        part = data[data["condition"] == condition].set_index("system").reindex(systems)
        low = (part["difference"] - part["ci_low"]).clip(lower=0).fillna(0)
        high = (part["ci_high"] - part["difference"]).clip(lower=0).fillna(0)
        colours = ["#999999" if k != "trained" else "#4C72B0" for k in part["kind"].fillna("")]
        ax.errorbar(part["difference"], y, xerr=[low, high], fmt="none", ecolor="black",
                    capsize=3)  # fmt: skip
        ax.scatter(part["difference"], y, c=colours, zorder=3)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(f"{condition}", fontsize=10)
        ax.set_yticks(y, [system_header(s) for s in systems], fontsize=8)
        ax.set_xlabel(f"{data['reference'].iloc[0]} minus system", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(
        f"{data['label'].iloc[0]}: {data['reference'].iloc[0]} minus each system, paired, "
        f"{confidence:.0%} interval over songs (blue: trained; grey: baseline or oracle)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
