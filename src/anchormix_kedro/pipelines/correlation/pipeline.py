"""correlation: engineers' ratings + per-example metrics -> the study's answers (effects,
genres, themes, metric validity, ``study_report.md``), agreement, correlations, ablation."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    attach_human_scores,
    build_ablation_table,
    compare_ablations,
    correlate_metrics,
    estimate_study_effects,
    load_ratings,
    measure_rater_agreement,
    plot_correlation_heatmap,
    write_correlation_report,
)
from .study_nodes import (
    analyse_themes,
    assess_metric_validity,
    export_comments_for_coding,
    plot_study_genres,
    plot_study_ratings,
    propose_comment_codes,
    summarise_study_genres,
    write_study_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                load_ratings,
                inputs=[
                    "ratings_files",
                    "study_answers",
                    "study_answers_simulated",
                    "rating_study",
                    "params:study",
                ],
                outputs=["merged_ratings", "rater_quality", "ratings_before_exclusion"],
                name="load_ratings",
            ),  # fmt: skip
            Node(
                estimate_study_effects,
                inputs=["merged_ratings", "ratings_before_exclusion", "rating_study"],
                outputs=[
                    "study_effects",
                    "study_effects_all_raters",
                    "study_effects_robustness",
                    "study_variance_components",
                ],
                name="estimate_study_effects",
            ),  # fmt: skip
            Node(
                summarise_study_genres,
                inputs=[
                    "merged_ratings",
                    "rating_study",
                    "evaluation_metrics",
                    "params:evaluation_common",
                ],
                outputs="study_genres",
                name="summarise_study_genres",
            ),  # fmt: skip
            Node(
                assess_metric_validity,
                inputs=[
                    "merged_ratings",
                    "rating_study",
                    "evaluation_metrics",
                    "listwise_ranks",
                    "params:evaluation_common",
                ],
                outputs=["study_metric_validity", "study_human_ceiling", "study_judge_agreement"],
                name="assess_metric_validity",
            ),  # fmt: skip
            Node(
                export_comments_for_coding,
                inputs=["merged_ratings", "rating_study", "params:study_codebook"],
                outputs=["study_comments_to_code", "study_codebook_table"],
                name="export_comments_for_coding",
            ),
            Node(
                propose_comment_codes,
                inputs=[
                    "study_comments_to_code",
                    "params:study_codebook",
                    "params:study.themes",
                    "params:automated_eval.judge",
                    "judge_credentials",
                ],
                outputs="study_codes_llm",
                name="propose_comment_codes",
            ),  # fmt: skip
            Node(
                analyse_themes,
                inputs=[
                    "merged_ratings",
                    "rating_study",
                    "study_codes",
                    "study_codes_simulated",
                    "study_codes_llm",
                    "params:study_codebook",
                    "params:study",
                    "params:evaluation_common",
                ],
                outputs=[
                    "study_theme_agreement",
                    "study_theme_frequencies",
                    "study_llm_theme_agreement",
                ],
                name="analyse_themes",
            ),  # fmt: skip
            Node(
                plot_study_ratings,
                inputs=["merged_ratings", "rating_study", "params:study"],
                outputs="study_rating_bars",
                name="plot_study_ratings",
            ),
            Node(
                plot_study_genres,
                inputs=["study_genres", "params:study"],
                outputs="study_genre_panels",
                name="plot_study_genres",
            ),
            Node(
                write_study_report,
                inputs=[
                    "merged_ratings",
                    "rater_quality",
                    "study_effects",
                    "study_effects_all_raters",
                    "study_effects_robustness",
                    "study_variance_components",
                    "rater_agreement",
                    "study_genres",
                    "study_theme_agreement",
                    "study_theme_frequencies",
                    "study_llm_theme_agreement",
                    "study_comments_to_code",
                    "study_metric_validity",
                    "study_human_ceiling",
                    "study_judge_agreement",
                    "params:study",
                ],
                outputs=["study_report", "study_mlflow_metrics"],
                name="write_study_report",
            ),  # fmt: skip
            Node(
                measure_rater_agreement,
                inputs="merged_ratings",
                outputs="rater_agreement",
                name="measure_rater_agreement",
            ),
            Node(
                attach_human_scores,
                inputs=["merged_ratings", "rating_study", "evaluation_metrics"],
                outputs="human_scores",
                name="attach_human_scores",
            ),
            Node(
                correlate_metrics,
                inputs=[
                    "evaluation_metrics",
                    "human_scores",
                    "params:correlation",
                    "params:evaluation_common",
                    "listwise_ranks",
                ],
                outputs="metric_correlations",
                name="correlate_metrics",
            ),
            Node(
                plot_correlation_heatmap,
                inputs="metric_correlations",
                outputs="correlation_heatmap",
                name="plot_correlation_heatmap",
            ),
            Node(
                compare_ablations,
                inputs=["evaluation_metrics", "params:evaluation_common", "params:systems"],
                outputs=["ablation_comparisons", "genre_ablation_table", "ablation_plot"],
                name="compare_ablations",
            ),
            Node(
                build_ablation_table,
                inputs=[
                    "system_summary",
                    "human_scores",
                    "merged_ratings",
                    "params:evaluation_common",
                    "ablation_comparisons",
                    "genre_ablation_table",
                    "params:systems",
                ],
                outputs=["ablation_table", "ablation_table_markdown"],
                name="build_ablation_table",
            ),
            Node(
                write_correlation_report,
                inputs=["merged_ratings", "rater_agreement", "metric_correlations", "human_scores"],
                outputs=["correlation_report", "correlation_mlflow_metrics"],
                name="write_correlation_report",
            ),
        ]
    )
