"""Nodes of the correlation pipeline: ratings -> agreement, correlations, the ablation table."""

from __future__ import annotations

import logging
from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd

from anchormix_kedro.evaluation import ablations, correlation
from anchormix_kedro.evaluation.conditions import as_mixed_rows
from anchormix_kedro.evaluation.listwise import DEFAULT_CONDITION
from anchormix_kedro.evaluation.meter_oracle import system_kind
from anchormix_kedro.evaluation.metric_table import (
    HUMAN_SCORE_COLUMNS,
    JUDGE_SCORE_COLUMNS,
    TEXT_SCORE_COLUMNS,
    TRUTH_SCORE_COLUMNS,
    metric_columns,
)
from anchormix_kedro.evaluation.statistics import bootstrap_settings
from anchormix_kedro.evaluation.summaries import (
    HUMAN_METRICS,
    POOLED,
    ablation_markdown,
    declared_systems,
    order_systems,
    summarize,
)
from anchormix_kedro.study import agreement, effects, ratings
from anchormix_kedro.study.design import CATCH_SYSTEM, REPEAT_SUFFIX
from anchormix_kedro.study.material import BuiltStudy
from anchormix_kedro.study.quality import rater_quality
from anchormix_kedro.vocabulary import CRITERIA, system_order

logger = logging.getLogger(__name__)

NO_RATINGS_MESSAGE = (
    "No human ratings exist yet (none in the study database, no CSV file in the ratings "
    "folder, data/01_raw/ratings/ by default): only the automated metrics are correlated with the truth metrics. No rating "
    "is ever invented."
)
HUMAN_COLUMNS: tuple[str, ...] = (*HUMAN_SCORE_COLUMNS, "human_mean")
#: The listwise judge's rank of an advice among its example's (1 = best): agreement with
#: engineers or with the truth shows as a *negative* correlation.
LISTWISE_RANK = "listwise_rank"
AUTOMATED_COLUMNS: tuple[str, ...] = (
    *TEXT_SCORE_COLUMNS,
    *JUDGE_SCORE_COLUMNS,
    "judge_mean",
    LISTWISE_RANK,
)
TRUTH_COLUMNS: tuple[str, ...] = TRUTH_SCORE_COLUMNS
HUMAN_SCORE_TABLE_COLUMNS: tuple[str, ...] = (
    "example_id",
    "system",
    "scenario_id",
    "n_raters",
    *HUMAN_COLUMNS,
    "n_comments",
)


SIMULATED = "simulated"


def load_ratings(
    ratings_files: dict[str, Callable[[], pd.DataFrame]],
    study_answers: dict[str, pd.DataFrame] | Callable[[], dict[str, pd.DataFrame]],
    simulated_study_answers: dict[str, pd.DataFrame] | Callable[[], dict[str, pd.DataFrame]],
    rating_study: BuiltStudy,
    study: dict,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The study's ratings after the exclusion rule, each database rater's quality (catch
    trial, repeat, listening) with the rule's verdict, and the ratings before exclusion.

    ``study["ratings"]`` says which: ``real`` (the study database and the offline CSV
    files, each checked against the study key) or ``simulated`` (the database of
    ``anchormix study simulate``, and no file). Raters the rule (``study["exclusion"]``)
    excludes are named in the log and the quality table; nothing is deleted. Catch trials
    and repeats are for quality only. A bad file is named in the log with every problem
    and left out; the others are used. A rater's later file supersedes their earlier ones.
    """
    source = ratings_source(study)
    if source == SIMULATED:
        logger.warning("Analysing the SIMULATED study (study.ratings: simulated): no real "
                       "rating is used")  # fmt: skip
        study_answers, ratings_files = simulated_study_answers, {}
    if callable(study_answers):  # the dataset's loader: only the database analysed is opened
        study_answers = study_answers()
    key = rating_study.key
    systems = key["system"] if "system" in key else pd.Series("", index=key.index)
    catch = set(key.loc[systems == CATCH_SYSTEM, "scenario_id"].astype(str))
    known = set(key["scenario_id"].astype(str)) - catch
    quality = rater_quality(study_answers, rating_study.version, study.get("exclusion"))
    excluded = set(quality.loc[quality["excluded"], "rater"])
    for row in quality[quality["excluded"]].itertuples(index=False):
        logger.warning("Rater %s is excluded by study.exclusion: %s", row.rater, row.reason)
    answered = study_answers["ratings"]
    answered = answered[~answered["scenario_id"].isin(catch)
                        & ~answered["scenario_id"].str.endswith(REPEAT_SUFFIX)]  # fmt: skip
    dropped = (answered["study_version"] == rating_study.version) & answered["rater"].isin(excluded)
    from_server = answered[answered["study_id"] == rating_study.study_id]
    # Scenario ids stay the same from build to build while the advice does: answers given
    # on an earlier build count; answers on advice that changed since do not.
    elsewhere = ~from_server["scenario_id"].isin(known)
    if elsewhere.any():
        logger.warning("%d ratings in the study database are of scenarios not in study %s "
                       "(their advice changed since): left out", int(elsewhere.sum()),
                       rating_study.version)  # fmt: skip
    from_server = from_server[~elsewhere]
    excluded_rows = dropped.reindex(from_server.index, fill_value=False)
    if from_server["study_version"].nunique() > 1:  # rater-001 of each build is someone else
        from_server = from_server.assign(
            rater=from_server["study_version"] + "/" + from_server["rater"]
        )
    from_server = from_server.drop(columns="study_version")
    problems: list[str] = []
    from_files = ratings.merge_ratings(
        ratings_files,
        known_scenarios=known,
        study_id=rating_study.study_id,
        problems=problems,
    )
    for problem in problems:
        logger.warning("Ratings left out: %s", problem)
    everyone = _concat_ratings(from_server, from_files)
    merged = _concat_ratings(from_server[~excluded_rows], from_files)
    if merged.empty:
        logger.warning(NO_RATINGS_MESSAGE)
        return merged, quality, everyone
    logger.info(
        "Ratings: %d from %d raters on %d scenarios (%d from the study database, %d from "
        "%d files); %d raters excluded",
        len(merged), merged["rater"].nunique(), merged["scenario_id"].nunique(),
        int((~excluded_rows).sum()), len(from_files), len(ratings_files), len(excluded),
    )  # fmt: skip
    return merged, quality, everyone


def ratings_source(study: dict) -> str:
    """``real`` or ``simulated`` (``study.ratings``), or a ValueError naming the value."""
    source = str(study.get("ratings") or "real")
    if source not in ("real", SIMULATED):
        raise ValueError(f"study.ratings is {source!r}: expected real or simulated "
                         "(e.g. kedro run --pipeline=correlation --params study.ratings=simulated)")  # fmt: skip
    return source


def _concat_ratings(*frames: pd.DataFrame) -> pd.DataFrame:
    present = [frame for frame in frames if not frame.empty]
    if not present:
        return ratings.empty_ratings()
    return pd.concat(present).reset_index(drop=True)


def estimate_study_effects(
    merged_ratings: pd.DataFrame, ratings_before_exclusion: pd.DataFrame, rating_study: BuiltStudy
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The advisor against every other system on each criterion: the crossed-effects
    linear mixed model's contrasts with intervals and Holm-adjusted p-values after the
    exclusion rule and, for comparison, with every rater; the robustness checks (ordinal
    logit, Wilcoxon, Friedman) after exclusion; the fitted variance components."""
    long = effects.long_ratings(merged_ratings, rating_study.key)
    table, components = effects.mixed_model(long)
    everyone = (table if len(ratings_before_exclusion) == len(merged_ratings)
                else effects.mixed_contrasts(effects.long_ratings(ratings_before_exclusion,
                                                                  rating_study.key)))  # fmt: skip
    for row in table.itertuples(index=False):
        logger.info("Study effect, %s: advisor minus %s = %+.2f [%+.2f, %+.2f], Holm p = %.3g",
                    row.criterion, row.system, row.estimate, row.ci_low, row.ci_high,
                    row.p_adjusted)  # fmt: skip
    return table, everyone, effects.robustness(long), components


def measure_rater_agreement(merged_ratings: pd.DataFrame) -> pd.DataFrame:
    """Krippendorff's alpha (ordinal and interval) of each criterion across raters."""
    return agreement.rater_agreement(merged_ratings)


def attach_human_scores(
    merged_ratings: pd.DataFrame,
    rating_study: BuiltStudy,
    evaluation_metrics: pd.DataFrame,
) -> pd.DataFrame:
    """Mean rating per scenario, mapped through the key to its (example, system).

    A scenario whose advice differs from the advice evaluated now (the system was run again
    since the page was made) is left out with a warning: its ratings are about other words.
    """
    scores = ratings.scenario_scores(merged_ratings)
    if scores.empty:
        return pd.DataFrame(columns=list(HUMAN_SCORE_TABLE_COLUMNS))
    shown = rating_study.key
    if "advice_evaluated" in shown:  # the system's own words, before blinding reworded them
        shown = shown.assign(advice=shown["advice_evaluated"].fillna(shown["advice"]))
    key = shown[["scenario_id", "example_id", "system", "advice"]].astype(
        {"scenario_id": str, "example_id": str, "system": str}
    )
    rated = scores.merge(key, on="scenario_id", how="left")
    current = as_mixed_rows(evaluation_metrics)[["example_id", "system", "advice"]].rename(
        columns={"advice": "advice_now"}
    )
    rated = rated.merge(current, on=["example_id", "system"], how="left")
    shown = rated["advice"].fillna("").astype(str).str.strip()
    now = rated["advice_now"].fillna("").astype(str).str.strip()
    absent = rated["advice_now"].isna()
    changed = ~absent & (shown != now)
    if absent.any():
        logger.warning(
            "%d rated scenarios are not among the evaluated advice (e.g. %s): left out",
            int(absent.sum()),
            list(rated.loc[absent, "scenario_id"][:3]),
        )
    if changed.any():
        logger.warning(
            "%d rated scenarios show advice that differs from the advice evaluated now "
            "(e.g. %s): left out; rate the new page or evaluate the advice that was rated",
            int(changed.sum()),
            list(rated.loc[changed, "scenario_id"][:3]),
        )
    kept = rated[~absent & ~changed]
    return kept[list(HUMAN_SCORE_TABLE_COLUMNS)].reset_index(drop=True)


def with_listwise_ranks(
    evaluation_metrics: pd.DataFrame, listwise_ranks: pd.DataFrame
) -> pd.DataFrame:
    """The metric table with each advice's listwise rank (condition ``as_mixed``, the one
    the table and the rating study are about) in column ``listwise_rank``."""
    ranks = listwise_ranks[listwise_ranks["condition"] == DEFAULT_CONDITION]
    ranks = ranks[["example_id", "system", "listwise_rank"]].astype(
        {"example_id": str, "system": str, "listwise_rank": "Float64"}
    )
    table = as_mixed_rows(evaluation_metrics).drop(columns=[LISTWISE_RANK], errors="ignore")
    return table.merge(ranks, on=["example_id", "system"], how="left", validate="one_to_one")


def correlate_metrics(
    evaluation_metrics: pd.DataFrame,
    human_scores: pd.DataFrame,
    correlation_params: dict,
    evaluation_common: dict,
    listwise_ranks: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Pearson and Spearman, p-values and bootstrap intervals, per system and pooled.

    Always: automated metrics (text metrics, LLM judge scores, the listwise judge's rank)
    against the truth metrics. With ratings: every human criterion against every automated
    and truth metric, the listwise rank included when ``listwise_ranks`` are given
    (Spearman's rho is the one to read for a rank). Measures with no value at all (e.g. the
    judge when none is configured) are left out and logged.
    """
    # The ratings and the listwise ranks are about the stems as mixed.
    evaluation_metrics = as_mixed_rows(evaluation_metrics)
    if listwise_ranks is not None:
        evaluation_metrics = with_listwise_ranks(evaluation_metrics, listwise_ranks)
    options = {
        **bootstrap_settings(evaluation_common),
        "min_pairs": int(correlation_params["min_pairs"]),
    }
    automated = metric_columns(evaluation_metrics, AUTOMATED_COLUMNS)
    truth = metric_columns(evaluation_metrics, TRUTH_COLUMNS)
    left_out = [c for c in AUTOMATED_COLUMNS if c not in automated]
    if left_out:
        logger.info("Not correlated, no value in any row: %s", ", ".join(left_out))
    tables = [
        correlation.correlation_table(
            evaluation_metrics, automated, truth, "automated_vs_truth", **options
        )
    ]
    if human_scores.empty:
        logger.warning(NO_RATINGS_MESSAGE)
    else:
        joined = human_scores.merge(evaluation_metrics, on=["example_id", "system"], how="inner")
        humans = metric_columns(joined, HUMAN_COLUMNS)
        tables.append(
            correlation.correlation_table(
                joined, humans, [*automated, *truth], "human_vs_automated", **options
            )
        )
    return pd.concat(tables, ignore_index=True)


HEATMAP_PANELS = (
    ("human_vs_automated", "Engineers' ratings vs automated and truth metrics"),
    ("automated_vs_truth", "Automated metrics vs truth metrics"),
)


def plot_correlation_heatmap(metric_correlations: pd.DataFrame) -> plt.Figure:
    """Pooled Spearman correlations as heatmaps (engineers' panel only when ratings exist)."""
    present = set(metric_correlations["comparison"])
    panels = [(c, t) for c, t in HEATMAP_PANELS if c in present]
    return correlation.plot_heatmap(metric_correlations, panels or list(HEATMAP_PANELS[1:]))


def compare_ablations(
    evaluation_metrics: pd.DataFrame, evaluation_common: dict, systems: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, plt.Figure]:
    """The method (the first declared variant) minus every other system, per condition and
    metric, paired (same example, or same excerpt, target and offset across anchors) with
    song-clustered intervals and paired tests; per genre, each system's accuracy and the
    difference; the differences as a figure."""
    bootstrap = bootstrap_settings(evaluation_common)
    systems = declared_systems(evaluation_common, systems)
    present = set(evaluation_metrics["system"])
    reference = next((s for s in system_order(systems) if s in present), None)
    if reference is None:
        logger.warning("No declared system has advice: no ablation comparisons")
        empty = ablations.ablation_comparisons(evaluation_metrics.iloc[0:0], "none")
        return (
            empty,
            pd.DataFrame(columns=list(ablations.GENRE_COLUMNS)),
            ablations.plot_ablation(empty),
        )
    comparisons = ablations.ablation_comparisons(
        evaluation_metrics, reference, systems, **bootstrap
    )
    genres = ablations.genre_table(evaluation_metrics, reference, systems, **bootstrap)
    return (
        comparisons,
        genres,
        ablations.plot_ablation(comparisons, confidence=bootstrap["confidence"]),
    )


def build_ablation_table(
    system_summary: pd.DataFrame,
    human_scores: pd.DataFrame,
    merged_ratings: pd.DataFrame,
    evaluation_common: dict,
    ablation_comparisons: pd.DataFrame | None = None,
    genre_ablation_table: pd.DataFrame | None = None,
    systems: dict | None = None,
) -> tuple[pd.DataFrame, str]:
    """Section 5.4: every system side by side on every metric and condition, engineers'
    ratings included (as mixed), the method minus each system on paired examples under
    each condition, and the accuracy per genre.

    Returns the long table (CSV: condition, system, metric, n, songs, estimate, interval,
    kind) and its Markdown.
    """
    bootstrap = bootstrap_settings(evaluation_common)
    declared = declared_systems(evaluation_common, systems)
    parts = [system_summary]
    if human_scores.empty:
        note = "Engineers' ratings: none yet, so the human criteria are absent."
    else:
        humans = summarize(human_scores, HUMAN_METRICS, **bootstrap)
        parts.append(humans.assign(kind=humans["system"].map(lambda s: system_kind(s, declared))))
        note = (
            f"Engineers' ratings: {len(merged_ratings)} ratings by "
            f"{merged_ratings['rater'].nunique()} raters on {len(human_scores)} scenarios "
            "(each scenario's mean over its raters)."
        )
    table = pd.concat(parts, ignore_index=True)
    order = system_order(declared)
    markdown = ablation_markdown(
        table,
        order_systems(table["system"], order),
        expected_systems=order,
        title="Ablation (section 5.4): every system on every metric",
        notes=[
            note,
            f"Intervals: {bootstrap['n_resamples']} bootstrap resamples over songs (each "
            f"song with all its examples), seed {bootstrap['seed']}.",
        ],
        confidence=bootstrap["confidence"],
        sections=ablations.ablation_sections(
            ablation_comparisons if ablation_comparisons is not None else pd.DataFrame(),
            bootstrap["confidence"],
        ),
    )
    if genre_ablation_table is not None and not genre_ablation_table.empty:
        reference = next((s for s in order if s in set(genre_ablation_table["system"])), None)
        markdown += "\n## Per genre\n\n" + "\n".join(
            ablations.genre_markdown(genre_ablation_table, reference, condition)
            for condition in dict.fromkeys(genre_ablation_table["condition"])
        )
    return table, markdown


def _fmt(value: float, digits: int = 2) -> str:
    return "n/a" if pd.isna(value) else f"{value:.{digits}f}"


def _text(value: object) -> str:
    """A note as text: empty for a missing value (an empty cell read back from CSV)."""
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _correlation_lines(table: pd.DataFrame) -> list[str]:
    lines = [
        "| x | y | n | Spearman rho [CI] | p | Pearson r [CI] | p | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.x} | {r.y} | {r.n} | {_fmt(r.spearman_rho)} [{_fmt(r.spearman_ci_low)}, "
            f"{_fmt(r.spearman_ci_high)}] | {_fmt(r.spearman_p, 3)} | {_fmt(r.pearson_r)} "
            f"[{_fmt(r.pearson_ci_low)}, {_fmt(r.pearson_ci_high)}] | {_fmt(r.pearson_p, 3)} "
            f"| {_text(r.note)} |"
        )
    return lines


def write_correlation_report(
    merged_ratings: pd.DataFrame,
    rater_agreement: pd.DataFrame,
    metric_correlations: pd.DataFrame,
    human_scores: pd.DataFrame,
) -> tuple[str, dict[str, dict[str, float]]]:
    """A Markdown report (ratings, agreement, pooled correlations) and its MLflow metrics."""
    lines = ["# How well automated metrics agree with engineers and with the truth", ""]
    metrics: dict[str, dict[str, float]] = {}

    def metric(name: str, value: float) -> None:
        if value is not None and not pd.isna(value):
            metrics[name] = {"value": float(value), "step": 0}

    if merged_ratings.empty:
        lines += [f"**{NO_RATINGS_MESSAGE}**", ""]
    else:
        lines += [
            f"Ratings: {len(merged_ratings)} by {merged_ratings['rater'].nunique()} raters on "
            f"{merged_ratings['scenario_id'].nunique()} scenarios; {len(human_scores)} "
            "scenarios match the advice evaluated now.",
            "",
            "## Inter-rater agreement (Krippendorff's alpha)",
            "",
            "| criterion | level | alpha | raters | shared scenarios | note |",
            "|---|---|---|---|---|---|",
            *(
                f"| {r.criterion} | {r.level} | {_fmt(r.alpha, 3)} | {r.n_raters} | "
                f"{r.n_scenarios} | {_text(r.note)} |"
                for r in rater_agreement.itertuples(index=False)
            ),
            "",
        ]
        for r in rater_agreement.itertuples(index=False):
            metric(f"alpha.{r.criterion}.{r.level}", r.alpha)
    metric("ratings", len(merged_ratings))
    metric("raters", merged_ratings["rater"].nunique() if not merged_ratings.empty else 0)
    metric("rated_scenarios", len(human_scores))
    pooled = metric_correlations[metric_correlations["system"] == POOLED]
    for comparison, title in HEATMAP_PANELS:
        table = pooled[pooled["comparison"] == comparison]
        if table.empty:
            continue
        lines += [f"## {title} (pooled over systems)", "", *_correlation_lines(table), ""]
        for r in table.itertuples(index=False):
            metric(f"{comparison}.{r.x}.{r.y}.spearman_rho", r.spearman_rho)
            metric(f"{comparison}.{r.x}.{r.y}.pearson_r", r.pearson_r)
    lines.append(
        "Per-system correlations are in metric_correlations.csv. Criteria: "
        + ", ".join(CRITERIA)
        + "; direction_correct_score is 1 for a correct direction, 0 otherwise; "
        + "listwise_rank is 1 for the advice the listwise judge ranked best, so agreement "
        + "with the engineers or the truth shows as a negative correlation."
    )
    return "\n".join(lines) + "\n", metrics
