"""Nodes of the automated_eval pipeline: advice -> every metric, summaries, the study kit."""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import pandas as pd

from anchormix_kedro.evaluation.by_offset import (
    accuracy_by_offset,
    amount_tracking,
    by_offset_markdown,
)
from anchormix_kedro.evaluation.comparisons import (
    comparison_metrics_for_mlflow,
    comparison_sections,
    paired_comparisons_by_condition,
)
from anchormix_kedro.evaluation.convention_following import (
    convention_following,
    convention_markdown,
)
from anchormix_kedro.evaluation.judge import NO_JUDGE_MESSAGE, LLMJudge, make_judge
from anchormix_kedro.evaluation.judge.listwise import LISTWISE_RUBRIC_VERSION
from anchormix_kedro.evaluation.listwise import (
    DEFAULT_CONDITION,
    empty_ranks,
    listwise_status,
    rank_advice,
)
from anchormix_kedro.evaluation.listwise_summary import (
    rank_summary,
    win_rate_markdown,
    win_rates,
)
from anchormix_kedro.evaluation.meter_oracle import meter_oracle_advice, system_kind
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
    declared_systems,
    order_systems,
    summarize,
    summary_metrics_for_mlflow,
)
from anchormix_kedro.evaluation.text_metrics import score_options
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


def add_oracle_meter(
    evaluation_examples: pd.DataFrame,
    condition_examples: pd.DataFrame,
    genre_conventions: pd.DataFrame,
    automated_eval: dict,
    evaluation_common: dict,
    systems: dict | None = None,
) -> pd.DataFrame:
    """The evaluated advice: every system's, then the exact level meter's on the same
    examples and conditions (system ``oracle_meter``), each row with its ``kind``
    (``trained``, ``baseline`` or ``oracle``). The study reads ``evaluation_examples``,
    which holds no oracle."""
    oracle = meter_oracle_advice(
        condition_examples,
        genre_conventions,
        float(automated_eval["balanced_tolerance_db"]),
        int(automated_eval.get("convention_min_songs", 3)),
    )
    evaluated = evaluation_examples[["example_id", "condition"]].drop_duplicates()
    oracle = oracle.merge(evaluated, on=["example_id", "condition"])
    missing = len(evaluated) - len(oracle)
    if missing:
        raise ValueError(
            f"{missing} evaluated (example, condition) pairs are not in condition_examples: "
            "re-run the inference pipeline so that the advice and its examples match"
        )
    examples = evaluation_examples.drop_duplicates(["example_id", "condition"]).drop(
        columns=["system", "advice", "latency_s"]
    )
    rows = oracle.merge(examples, on=["example_id", "condition"])[evaluation_examples.columns]
    combined = pd.concat([evaluation_examples, rows], ignore_index=True)
    systems = declared_systems(evaluation_common, systems)
    combined["kind"] = combined["system"].map(lambda s: system_kind(s, systems))
    logger.info("The exact level meter (oracle_meter) evaluated beside them: %d rows", len(rows))
    return combined


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
    scores = text_metric_columns(evaluation_examples, **score_options(text_metrics))
    variants = dict(scores.attrs.get("variants", {}))
    pairs = dict(scores.attrs.get("pairs", {}))
    scores.attrs = {}
    logger.info(
        "Text metrics: BERTScore %s (%s layers), METEOR %s; %s rows scored as %s distinct pairs",
        variants.get("bertscore_model"),
        variants.get("bertscore_num_layers"),
        variants.get("meteor"),
        pairs.get("scored"),
        pairs.get("distinct"),
    )
    return scores, variants


def configured_judge(judge: dict, judge_credentials: dict) -> LLMJudge | None:
    """The judge the parameters describe, its API key from the named credentials entry."""
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
    return make_judge(config, credentials)


def judge_advice(
    evaluation_examples: pd.DataFrame, judge: dict, judge_credentials: dict
) -> tuple[pd.DataFrame, dict]:
    """The LLM judge's scores and rationale per row, and what the judge was.

    ``judge["credentials"]`` names an entry of the project's credentials (its ``api_key``
    is used); without it the key comes from the environment variable ``api_key_env``.
    ``judge["max_in_flight"]`` calls run at once. With ``backend: none`` every score stays
    missing and the log says no judge is configured.
    """
    llm_judge = configured_judge(judge, judge_credentials)
    scores = judge_columns(evaluation_examples, llm_judge, progress=True)
    scored = int(scores["judge_ok"].fillna(False).sum())
    status = {
        "configured": llm_judge is not None,
        "backend": str((judge or {}).get("backend") or "none").lower(),
        "model": None if llm_judge is None else llm_judge.backend.model,
        "rubric_version": None if llm_judge is None else llm_judge.rubric_version,
        "max_in_flight": None if llm_judge is None else llm_judge.calls_at_once,
        "items": len(scores),
        "scored": scored,
        "from_cache": int(scores["judge_cached"].fillna(False).sum()),
        "missing": len(scores) - scored,
        "message": NO_JUDGE_MESSAGE if llm_judge is None else "",
    }
    return scores, status


def rank_advice_listwise(
    evaluation_examples: pd.DataFrame, listwise: dict, judge: dict, judge_credentials: dict
) -> tuple[pd.DataFrame, dict]:
    """The listwise judge's rank of every system's advice per example, and what it did.

    The judge (``judge`` parameters) sees each example's advice of all systems, blind and
    shuffled from ``listwise["seed"]``, for the conditions in ``listwise["conditions"]``
    (default ``as_mixed``; null: all), and ranks them. ``listwise["enabled"]: false``
    skips it: no rows.
    """
    settings = dict(listwise or {})
    if not settings.get("enabled", True):
        logger.info("Listwise judge switched off (automated_eval.listwise.enabled: false)")
        return empty_ranks(), listwise_status(empty_ranks(), None, enabled=False)
    llm_judge = configured_judge(judge, judge_credentials)
    ranks = rank_advice(
        evaluation_examples,
        llm_judge,
        conditions=settings.get("conditions", [DEFAULT_CONDITION]),
        seed=int(settings.get("seed", 0)),
        rubric_version=str(settings.get("rubric_version") or LISTWISE_RUBRIC_VERSION),
        progress=True,
    )
    return ranks, listwise_status(ranks, llm_judge)


def compare_systems_listwise(
    listwise_ranks: pd.DataFrame, evaluation_common: dict, systems: dict | None = None
) -> pd.DataFrame:
    """How often each system's advice is ranked above each other's, with song-level intervals."""
    declared = system_order(declared_systems(evaluation_common, systems))
    return win_rates(listwise_ranks, systems=declared, **bootstrap_settings(evaluation_common))


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


def summarize_systems(
    evaluation_metrics: pd.DataFrame,
    evaluation_common: dict,
    listwise_ranks: pd.DataFrame | None = None,
    systems: dict | None = None,
) -> pd.DataFrame:
    """Every automated metric per condition and system with a percentile-bootstrap interval
    over songs, and the listwise judge's mean rank and first places beside them."""
    bootstrap = bootstrap_settings(evaluation_common)
    systems = declared_systems(evaluation_common, systems)
    declared = system_order(systems)
    summary = summarize(evaluation_metrics, AUTOMATED_METRICS, **bootstrap, cluster_column="song")
    if listwise_ranks is not None and not listwise_ranks.empty:
        summary = pd.concat(
            [summary, rank_summary(listwise_ranks, systems=declared, **bootstrap)],
            ignore_index=True,
        )
    # The last column says what each row is: a trained system, a baseline or an oracle.
    return summary.assign(kind=summary["system"].map(lambda s: system_kind(s, systems)))


def tabulate_accuracy_by_offset(evaluation_metrics: pd.DataFrame) -> pd.DataFrame:
    """Direction accuracy per condition, system and size of the imbalance."""
    return accuracy_by_offset(evaluation_metrics)


def tabulate_amount_tracking(
    evaluation_metrics: pd.DataFrame, evaluation_common: dict
) -> pd.DataFrame:
    """Whether each system's stated amounts follow the true offsets (Spearman, by song)."""
    return amount_tracking(evaluation_metrics, **bootstrap_settings(evaluation_common))


def compare_with_reference(
    evaluation_metrics: pd.DataFrame, evaluation_common: dict, systems: dict | None = None
) -> pd.DataFrame:
    """Every system minus the method (the first declared variant) on the same examples, per
    condition and metric: the difference, its interval and p-value from a paired bootstrap
    over songs."""
    declared = system_order(declared_systems(evaluation_common, systems))
    present = set(evaluation_metrics["system"])
    reference = next((s for s in declared if s in present), None)
    if reference is None:
        logger.warning("No declared system has advice: no paired comparisons")
        return paired_comparisons_by_condition(evaluation_metrics.iloc[0:0], "none")
    return paired_comparisons_by_condition(
        evaluation_metrics, reference, **bootstrap_settings(evaluation_common)
    )


def summary_mlflow_metrics(
    system_summary: pd.DataFrame,
    judge_status: dict,
    listwise_status: dict | None = None,
    system_comparisons: pd.DataFrame | None = None,
) -> dict[str, dict[str, float]]:
    """The summary as MLflow metrics (``<condition>/<system>.<metric>.estimate|ci_low|
    ci_high|n|n_songs``) and the paired comparisons (``<condition>/<system>_minus_<method>.
    <metric>.difference|ci_low|ci_high|p_value``)."""
    metrics = summary_metrics_for_mlflow(system_summary)
    if system_comparisons is not None:
        metrics.update(comparison_metrics_for_mlflow(system_comparisons))
    metrics["judge.scored"] = {"value": float(judge_status["scored"]), "step": 0}
    metrics["judge.missing"] = {"value": float(judge_status["missing"]), "step": 0}
    if (listwise_status or {}).get("enabled"):
        metrics["listwise.ranked"] = {"value": float(listwise_status["ranked"]), "step": 0}
        metrics["listwise.missing"] = {"value": float(listwise_status["missing"]), "step": 0}
    return metrics


def evaluation_settings(
    text_metric_variants: dict, judge_status: dict, listwise_status: dict | None = None
) -> dict:
    """What ran: the text metrics' model and METEOR variant, the judges and their coverage."""
    return {
        "text_metrics": dict(text_metric_variants),
        "judge": dict(judge_status),
        "listwise": dict(listwise_status or {"enabled": False}),
    }


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


def _listwise_line(status: dict) -> str:
    if not status.get("enabled"):
        return "Listwise judge: switched off."
    if not status.get("configured"):
        return f"Listwise judge: none configured. {NO_JUDGE_MESSAGE}"
    return (
        f"Listwise judge: `{status['model']}` (rubric {status['rubric_version']}), conditions "
        f"{', '.join(status['conditions'])}: {status['ranked']} of {status['examples']} "
        f"examples ranked ({status['from_cache']} from cache), {status['missing']} without a "
        "ranking (failed calls, invalid or incomplete rankings; never filled in). Each "
        "example's answers were shown blind, in a seeded shuffled order."
    )


def write_automated_eval_report(
    system_summary: pd.DataFrame,
    genre_convention_following: pd.DataFrame,
    text_metric_variants: dict,
    judge_status: dict,
    evaluation_common: dict,
    listwise_win_rates: pd.DataFrame | None = None,
    listwise_status: dict | None = None,
    system_comparisons: pd.DataFrame | None = None,
    accuracy_by_offset_table: pd.DataFrame | None = None,
    amount_tracking_table: pd.DataFrame | None = None,
    systems: dict | None = None,
) -> str:
    """A Markdown report: what ran, every metric per system, the listwise win rates, the
    per-genre convention table."""
    bootstrap = bootstrap_settings(evaluation_common)
    declared = system_order(declared_systems(evaluation_common, systems))
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
        "Text metrics compare the core of each advice with the reference's (relation, "
        "direction, amount, fader move): optional sentences, the genre convention, are set "
        "aside on both sides, for references and every system alike; '..., as written' "
        "scores the texts as they are.",
        judge_line,
        _listwise_line(listwise_status or {}),
        f"Intervals: {bootstrap['n_resamples']} bootstrap resamples over songs (each song "
        f"with all its examples), seed {bootstrap['seed']}.",
    ]
    table = ablation_markdown(
        system_summary,
        systems,
        expected_systems=declared,
        title="Automated evaluation: every metric per system",
        notes=notes,
        confidence=bootstrap["confidence"],
        sections=comparison_sections(system_comparisons, bootstrap["confidence"]),
    )
    listwise = ""
    if listwise_win_rates is not None and (listwise_status or {}).get("configured"):
        listwise = "\n## LLM judge, listwise: win rates\n\n" + win_rate_markdown(
            listwise_win_rates, systems, bootstrap["confidence"]
        )
    by_offset = ""
    if accuracy_by_offset_table is not None and not accuracy_by_offset_table.empty:
        by_offset = (
            "\n## Direction accuracy by size of the imbalance\n\n"
            "Share of correct directions (unparsed advice counts as wrong), examples in "
            "brackets. The last row: Spearman's correlation between the amount stated and "
            "the true offset, over advice with the right direction, with its interval over "
            "songs.\n\n"
            + by_offset_markdown(accuracy_by_offset_table, systems, amount_tracking_table)
        )
    return (
        table
        + by_offset
        + listwise
        + "\n## Research question 2: does the advice follow the genre conventions?\n\n"
        + "Distance of the target's level (relative to the anchor) from the median of its "
        "genre's training songs, before the advice and after the advised fader move; "
        "'gain toward' is how much closer the move brings it; 'professional mix' is where "
        "the original mixes sit.\n\n" + convention_markdown(genre_convention_following)
    )


# --------------------------------------------------------------------------- study kit
