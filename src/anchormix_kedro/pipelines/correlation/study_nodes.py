"""Nodes of the correlation pipeline that answer the study's research questions: genre
norms, metric validity, themes of the written feedback, and ``study_report.md``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd

from anchormix_kedro.evaluation.conditions import as_mixed_rows
from anchormix_kedro.evaluation.metric_table import JUDGE_SCORE_COLUMNS
from anchormix_kedro.evaluation.statistics import bootstrap_settings
from anchormix_kedro.pipelines.automated_eval.nodes import configured_judge
from anchormix_kedro.pipelines.correlation.nodes import (
    AUTOMATED_COLUMNS,
    SIMULATED,
    TRUTH_COLUMNS,
    ratings_source,
    with_listwise_ranks,
)
from anchormix_kedro.study import effects, genres, report, themes, validity
from anchormix_kedro.study.material import BuiltStudy

logger = logging.getLogger(__name__)
COMMENTS_HINT = "data/08_reporting/study/themes/comments_to_code.csv"


def _simulated(study: dict) -> bool:
    return ratings_source(study) == SIMULATED


def _long(merged_ratings: pd.DataFrame, rating_study: BuiltStudy) -> pd.DataFrame:
    return effects.long_ratings(merged_ratings, rating_study.key)


def summarise_study_genres(merged_ratings: pd.DataFrame, rating_study: BuiltStudy,
                           evaluation_metrics: pd.DataFrame,
                           evaluation_common: dict) -> pd.DataFrame:  # fmt: skip
    """Per genre, system and criterion: the mean rating (interval over the genre's
    examples) beside where the advice leaves the level against the genre's professional
    range (research question 5.2)."""
    bootstrap = bootstrap_settings(evaluation_common)
    return genres.genre_table(_long(merged_ratings, rating_study), as_mixed_rows(evaluation_metrics),
                              bootstrap["n_resamples"], bootstrap["confidence"], bootstrap["seed"])  # fmt: skip


def assess_metric_validity(merged_ratings: pd.DataFrame, rating_study: BuiltStudy,
                           evaluation_metrics: pd.DataFrame, listwise_ranks: pd.DataFrame,
                           evaluation_common: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Do the automated metrics track the engineers (5.3)? Item-level correlations within
    each system (the answer) and pooled, with intervals clustered by example; the engineers'
    agreement with each other; the LLM judge beside that ceiling."""
    long = _long(merged_ratings, rating_study)
    if long.empty:
        return (pd.DataFrame(columns=list(validity.VALIDITY_COLUMNS)),
                pd.DataFrame(columns=list(validity.CEILING_COLUMNS)),
                pd.DataFrame(columns=list(validity.JUDGE_COLUMNS)))  # fmt: skip
    bootstrap = bootstrap_settings(evaluation_common)
    metrics = with_listwise_ranks(as_mixed_rows(evaluation_metrics), listwise_ranks)
    measured = [c for c in (*AUTOMATED_COLUMNS, *TRUTH_COLUMNS)
                if c in metrics and pd.to_numeric(metrics[c], errors="coerce").notna().any()]  # fmt: skip
    items = validity.item_scores(long)
    table = validity.metric_validity(items, metrics, list(validity.HUMAN_COLUMNS), measured,
                                     **bootstrap)  # fmt: skip
    ceiling = validity.human_ceiling(long, seed=bootstrap["seed"])
    judged = any(c in measured for c in JUDGE_SCORE_COLUMNS)
    judge = (validity.judge_agreement(items, metrics, long, **bootstrap) if judged
             else pd.DataFrame(columns=list(validity.JUDGE_COLUMNS)))  # fmt: skip
    return table, ceiling, judge


def export_comments_for_coding(merged_ratings: pd.DataFrame, rating_study: BuiltStudy,
                               codebook: list) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The written feedback for coding, one row per comment, blind to system and rater,
    and the codebook (code, definition, example) beside it."""
    comments = themes.comments_for_coding(merged_ratings, rating_study.key)
    logger.info("%d comments to code: %s (codebook beside it)", len(comments), COMMENTS_HINT)
    return comments, themes.codebook_table(codebook)


def propose_comment_codes(comments: pd.DataFrame, codebook: list, themes_params: dict,
                          judge: dict, judge_credentials: dict) -> pd.DataFrame:  # fmt: skip
    """The LLM judge's first pass at coding (``study.themes.llm_first_pass``), as one more
    coder's file (``comment_id``, ``codes``): compared with the human coders, never used
    in their place. Empty when switched off or when no judge is configured."""
    empty = pd.DataFrame(columns=["comment_id", "codes"])
    if not (themes_params or {}).get("llm_first_pass") or comments.empty:
        return empty
    llm_judge = configured_judge(judge, judge_credentials)
    if llm_judge is None:
        return empty
    coded, coverage, failed = themes.propose_codes(comments, themes.codebook_table(codebook),
                                                   llm_judge)  # fmt: skip
    logger.info("The LLM's first pass coded %d of %d comments (%d failed)", len(coverage),
                len(comments), failed)  # fmt: skip
    joined = coded.groupby("comment_id")["code"].agg(";".join)
    return coverage[["comment_id"]].assign(codes=coverage["comment_id"].map(joined).fillna(""))


def analyse_themes(merged_ratings: pd.DataFrame, rating_study: BuiltStudy,
                   study_codes: dict[str, Callable[[], pd.DataFrame]],
                   simulated_study_codes: dict[str, Callable[[], pd.DataFrame]],
                   llm_codes: pd.DataFrame, codebook: list, study: dict,
                   evaluation_common: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """The human coders' agreement per code, theme shares per system with quotes (by the
    majority of coders), and the LLM's first pass against each human coder."""
    table = themes.codebook_table(codebook)
    files = simulated_study_codes if _simulated(study) else study_codes
    comments = themes.comments_for_coding(merged_ratings, rating_study.key)
    empty = (pd.DataFrame(columns=list(themes.AGREEMENT_COLUMNS)),
             pd.DataFrame(columns=list(themes.FREQUENCY_COLUMNS)),
             pd.DataFrame(columns=list(themes.LLM_AGREEMENT_COLUMNS)))  # fmt: skip
    if not files or comments.empty:
        return empty
    coded, coverage = themes.read_coder_files(
        _current_comments(files, set(comments["comment_id"])), table, comments["comment_id"]
    )
    bootstrap = bootstrap_settings(evaluation_common)
    agreement = themes.code_agreement(coded, coverage, table, **bootstrap)
    frequencies = themes.theme_frequencies(
        coded, coverage, themes.comment_systems(merged_ratings, rating_study.key), table,
        comments=comments)  # fmt: skip
    llm = empty[2]
    if not llm_codes.empty:
        llm_coded, llm_coverage = themes.read_coder_files({"llm": llm_codes}, table,
                                                          comments["comment_id"])  # fmt: skip
        llm = themes.llm_agreement(coded, coverage, llm_coded, llm_coverage, table)
    return agreement, frequencies, llm


def _current_comments(files: dict, known: set[str]) -> dict[str, pd.DataFrame]:
    """Each coder's file without the comments no longer analysed (a rater excluded or
    withdrawn since the export, or advice that changed), each left out with a warning."""
    current = {}
    for coder, load in files.items():
        frame = load() if callable(load) else load
        if "comment_id" in frame:
            ids = frame["comment_id"].astype(str).str.strip()
            gone = (ids != "") & ~ids.isin(known)
            if gone.any():
                logger.warning("Coder file %s: %d coded comments are no longer analysed (their "
                               "rater was excluded or withdrew, or their advice changed): left "
                               "out", coder, int(gone.sum()))  # fmt: skip
            frame = frame[~gone]
        current[coder] = frame
    return current


def plot_study_ratings(merged_ratings: pd.DataFrame, rating_study: BuiltStudy,
                       study: dict) -> plt.Figure:  # fmt: skip
    """Diverging stacked bars of the ratings per system and criterion."""
    heading = report.title("Engineers' ratings per system (after exclusion)", _simulated(study))
    return report.plot_rating_bars(_long(merged_ratings, rating_study), heading)


def plot_study_genres(study_genres: pd.DataFrame, study: dict) -> plt.Figure:
    """One panel per genre: ratings and the share of advice in the genre's usual range."""
    heading = report.title("Ratings per genre", _simulated(study))
    return report.plot_genre_panels(study_genres, heading)


def write_study_report(merged_ratings: pd.DataFrame, rater_quality: pd.DataFrame,
                       study_effects: pd.DataFrame, study_effects_all_raters: pd.DataFrame,
                       study_effects_robustness: pd.DataFrame,
                       study_variance_components: pd.DataFrame, rater_agreement: pd.DataFrame,
                       study_genres: pd.DataFrame, theme_agreement: pd.DataFrame,
                       theme_frequencies: pd.DataFrame, llm_theme_agreement: pd.DataFrame,
                       study_comments_to_code: pd.DataFrame, metric_validity: pd.DataFrame,
                       human_ceiling: pd.DataFrame, judge_agreement: pd.DataFrame,
                       study: dict) -> tuple[str, dict]:  # fmt: skip
    """``study_report.md`` and the MLflow metrics of the study's answers."""
    simulated = _simulated(study)
    if theme_frequencies.empty:
        theme_lines = themes.no_codes_markdown(len(study_comments_to_code), COMMENTS_HINT)
    else:
        theme_lines = themes.themes_markdown(theme_agreement, theme_frequencies,
                                             llm_theme_agreement if len(llm_theme_agreement)
                                             else None, simulated)  # fmt: skip
    validity_lines = (validity.validity_markdown(metric_validity, human_ceiling, judge_agreement,
                                                 simulated) if len(metric_validity) else [])  # fmt: skip
    markdown = report.study_report(
        merged=merged_ratings, quality=rater_quality, after=study_effects,
        before=study_effects_all_raters, checks=study_effects_robustness,
        components=study_variance_components, agreement=rater_agreement, genres=study_genres,
        theme_lines=theme_lines, validity_lines=validity_lines, simulated=simulated)  # fmt: skip
    prefix = "simulated." if simulated else ""
    metrics = {f"{prefix}raters_kept": merged_ratings["rater"].nunique() if len(merged_ratings) else 0,
               f"{prefix}raters_excluded": int(rater_quality["excluded"].sum()) if len(rater_quality) else 0}  # fmt: skip
    for row in study_effects.itertuples(index=False):
        for name in ("estimate", "ci_low", "ci_high", "p_adjusted"):
            value = getattr(row, name)
            if pd.notna(value):
                metrics[f"{prefix}effect.{row.system}.{row.criterion}.{name}"] = float(value)
    return markdown, {name: {"value": float(v), "step": 0} for name, v in metrics.items()}
