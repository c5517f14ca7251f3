"""Nodes of the automated_eval pipeline: advice -> every metric, summaries, the study kit."""

from __future__ import annotations

import logging
from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd

from anchormix_kedro.evaluation import study_kit
from anchormix_kedro.evaluation.convention_following import (
    convention_following,
    convention_markdown,
)
from anchormix_kedro.evaluation.judge import NO_JUDGE_MESSAGE, make_judge
from anchormix_kedro.evaluation.metric_table import (
    assemble_metric_table as assemble_metric_frames,
)
from anchormix_kedro.evaluation.metric_table import (
    convention_columns,
    join_advice,
    judge_columns,
    text_metric_columns,
    truth_columns,
)
from anchormix_kedro.evaluation.plots import plot_convention_following as plot_conventions
from anchormix_kedro.evaluation.plots import plot_summary
from anchormix_kedro.evaluation.statistics import bootstrap_settings
from anchormix_kedro.evaluation.summaries import (
    AUTOMATED_METRICS,
    ablation_markdown,
    order_systems,
    summarize,
    summary_metrics_for_mlflow,
)
from anchormix_kedro.vocabulary import system_order

logger = logging.getLogger(__name__)


def select_advice(
    advice_by_system: pd.DataFrame, instruction_dataset: pd.DataFrame, automated_eval: dict
) -> pd.DataFrame:
    """Each system's advice beside its example (label, gain, levels, reference advice)."""
    examples = join_advice(advice_by_system, instruction_dataset, automated_eval.get("split"))
    logger.info(
        "Evaluating %d advice rows: %s",
        len(examples),
        ", ".join(f"{s} {n}" for s, n in examples["system"].value_counts(sort=False).items()),
    )
    return examples


def compute_truth_metrics(
    evaluation_examples: pd.DataFrame, genre_conventions: pd.DataFrame, automated_eval: dict
) -> pd.DataFrame:
    """Direction, dB amount and their errors against the applied perturbation, and where the
    advised move leaves the target against the training split's genre convention."""
    truth = truth_columns(evaluation_examples)
    conventions = convention_columns(
        evaluation_examples,
        list(truth["advised_move_db"]),
        genre_conventions,
        int(automated_eval.get("convention_min_songs", 3)),
    )
    return pd.concat([truth, conventions], axis=1)


def compute_text_metrics(
    evaluation_examples: pd.DataFrame, text_metrics: dict
) -> tuple[pd.DataFrame, dict]:
    """BERTScore, ROUGE-L and METEOR against the reference advice, and which variants ran."""
    scores = text_metric_columns(
        evaluation_examples,
        bertscore_model=text_metrics.get("bertscore_model"),
        bertscore_num_layers=text_metrics.get("bertscore_num_layers"),
        batch_size=int(text_metrics.get("batch_size", 32)),
        device=text_metrics.get("device"),
        use_wordnet=text_metrics.get("use_wordnet"),
    )
    variants = dict(scores.attrs.get("variants", {}))
    scores.attrs = {}
    logger.info(
        "Text metrics: BERTScore %s (%s layers), METEOR %s",
        variants.get("bertscore_model"),
        variants.get("bertscore_num_layers"),
        variants.get("meteor"),
    )
    return scores, variants


def judge_advice(
    evaluation_examples: pd.DataFrame, judge: dict, judge_credentials: dict
) -> tuple[pd.DataFrame, dict]:
    """The LLM judge's scores and rationale per row, and what the judge was.

    ``judge["credentials"]`` names an entry of the project's credentials (its ``api_key``
    is used); without it the key comes from the environment variable ``api_key_env``.
    With ``backend: none`` every score stays missing and the log says no judge is
    configured.
    """
    config = dict(judge or {})
    entry = config.pop("credentials", None)
    backend = str(config.get("backend") or "none").lower()
    credentials = None
    if entry and backend != "none":
        credentials = (judge_credentials or {}).get(entry)
        if credentials is None:
            logger.info(
                "No credentials entry %r in conf/*/credentials*.yml: the judge's API key "
                "comes from the environment variable %s, if set",
                entry,
                config.get("api_key_env"),
            )
    llm_judge = make_judge(config, credentials)
    scores = judge_columns(evaluation_examples, llm_judge, progress=True)
    scored = int(scores["judge_ok"].fillna(False).sum())
    status = {
        "configured": llm_judge is not None,
        "backend": backend,
        "model": None if llm_judge is None else llm_judge.backend.model,
        "rubric_version": None if llm_judge is None else llm_judge.rubric_version,
        "items": len(scores),
        "scored": scored,
        "from_cache": int(scores["judge_cached"].fillna(False).sum()),
        "missing": len(scores) - scored,
        "message": NO_JUDGE_MESSAGE if llm_judge is None else "",
    }
    return scores, status


def assemble_metric_table(
    evaluation_examples: pd.DataFrame,
    truth_metrics: pd.DataFrame,
    text_scores: pd.DataFrame,
    judge_scores: pd.DataFrame,
    text_metric_variants: dict,
) -> pd.DataFrame:
    """One row per (example, system) with every metric, and the METEOR variant that ran."""
    table = assemble_metric_frames(evaluation_examples, truth_metrics, text_scores, judge_scores)
    table["meteor_variant"] = text_metric_variants.get("meteor")
    table["bertscore_model"] = str(text_metric_variants.get("bertscore_model"))
    return table


def summarize_systems(evaluation_metrics: pd.DataFrame, evaluation_common: dict) -> pd.DataFrame:
    """Every automated metric per system with a percentile-bootstrap confidence interval."""
    return summarize(evaluation_metrics, AUTOMATED_METRICS, **bootstrap_settings(evaluation_common))


def summary_mlflow_metrics(
    system_summary: pd.DataFrame, judge_status: dict
) -> dict[str, dict[str, float]]:
    """The summary as MLflow metrics (``<system>.<metric>.estimate|ci_low|ci_high|n``)."""
    metrics = summary_metrics_for_mlflow(system_summary)
    metrics["judge.scored"] = {"value": float(judge_status["scored"]), "step": 0}
    metrics["judge.missing"] = {"value": float(judge_status["missing"]), "step": 0}
    return metrics


def evaluation_settings(text_metric_variants: dict, judge_status: dict) -> dict:
    """What ran: the text metrics' model and METEOR variant, the judge and its coverage."""
    return {"text_metrics": dict(text_metric_variants), "judge": dict(judge_status)}


def plot_system_summary(system_summary: pd.DataFrame) -> plt.Figure:
    """Each metric's estimate per system with its bootstrap interval."""
    return plot_summary(system_summary)


def analyse_convention_following(
    evaluation_metrics: pd.DataFrame, evaluation_common: dict
) -> pd.DataFrame:
    """Research question 2 per system and genre: does the advice move toward the convention?"""
    return convention_following(evaluation_metrics, **bootstrap_settings(evaluation_common))


def plot_convention_following(genre_convention_following: pd.DataFrame) -> plt.Figure:
    """Per genre: distance from the convention after each system's advice."""
    return plot_conventions(genre_convention_following)


def write_automated_eval_report(
    system_summary: pd.DataFrame,
    genre_convention_following: pd.DataFrame,
    text_metric_variants: dict,
    judge_status: dict,
    evaluation_common: dict,
) -> str:
    """A Markdown report: what ran, every metric per system, the per-genre convention table."""
    bootstrap = bootstrap_settings(evaluation_common)
    declared = system_order(evaluation_common.get("systems") or {})
    systems = order_systems(system_summary["system"], declared)
    judge_line = (
        f"LLM judge: {judge_status['backend']} `{judge_status['model']}` (rubric "
        f"{judge_status['rubric_version']}): {judge_status['scored']} of "
        f"{judge_status['items']} scored ({judge_status['from_cache']} from cache), "
        f"{judge_status['missing']} missing (failed calls or invalid answers; never filled in)."
        if judge_status["configured"]
        else f"LLM judge: none configured. {NO_JUDGE_MESSAGE}"
    )
    notes = [
        f"BERTScore: `{text_metric_variants.get('bertscore_model')}`, layer "
        f"{text_metric_variants.get('bertscore_num_layers')}, not rescaled. "
        f"METEOR: {text_metric_variants.get('meteor')}.",
        judge_line,
        f"Intervals: {bootstrap['n_resamples']} bootstrap resamples, seed {bootstrap['seed']}.",
    ]
    table = ablation_markdown(
        system_summary,
        systems,
        expected_systems=declared,
        title="Automated evaluation: every metric per system",
        notes=notes,
        confidence=bootstrap["confidence"],
    )
    return (
        table
        + "\n## Research question 2: does the advice follow the genre conventions?\n\n"
        + "Distance of the target's level (relative to the anchor) from the median of its "
        "genre's training songs, before the advice and after the advised fader move; "
        "'gain toward' is how much closer the move brings it; 'professional mix' is where "
        "the original mixes sit.\n\n" + convention_markdown(genre_convention_following)
    )


# --------------------------------------------------------------------------- study kit


def sample_rating_study(evaluation_examples: pd.DataFrame, study_kit_params: dict) -> pd.DataFrame:
    """The study key: a blind, shuffled sample of scenarios over systems, genres and pairs."""
    return study_kit.sample_scenarios(
        evaluation_examples,
        n_examples=int(study_kit_params["n_examples"]),
        study_id=str(study_kit_params["study_id"]),
        seed=int(study_kit_params.get("seed", 0)),
        systems=study_kit_params.get("systems"),
    )


def render_rating_study(
    rating_study_key: pd.DataFrame,
    excerpts: dict[str, Callable[[], dict]],
    study_kit_params: dict,
) -> str:
    """The self-contained study page (audio embedded) for the key's scenarios."""

    title = study_kit_params.get("title") or study_kit.DEFAULT_TITLE
    if rating_study_key.empty:
        return study_kit.empty_page(title)

    def load_excerpt(excerpt_id: str) -> dict:
        return excerpts[excerpt_id]()

    clips, by_scenario = study_kit.render_clips(
        rating_study_key,
        load_excerpt,
        audio_format=str(study_kit_params.get("audio_format", "ogg")),
        max_seconds=study_kit_params.get("clip_seconds"),
    )
    page = study_kit.render_page(
        rating_study_key,
        clips,
        by_scenario,
        title=title,
        instructions=study_kit_params.get("instructions") or study_kit.DEFAULT_INSTRUCTIONS,
    )
    logger.info(
        "Rating study page: %d scenarios, %d clips, %.1f MB",
        len(rating_study_key),
        len(clips),
        study_kit.page_size_mb(page),
    )
    return page
