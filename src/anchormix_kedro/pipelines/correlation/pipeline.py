"""correlation: engineers' ratings + per-example metrics -> agreement, correlations, ablation."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    attach_human_scores,
    build_ablation_table,
    correlate_metrics,
    estimate_study_effects,
    load_ratings,
    measure_rater_agreement,
    plot_correlation_heatmap,
    write_correlation_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                load_ratings,
                inputs=["ratings_files", "study_answers", "rating_study", "params:study.exclusion"],
                outputs=["merged_ratings", "rater_quality"],
                name="load_ratings",
            ),
            Node(
                estimate_study_effects,
                inputs=["merged_ratings", "rating_study"],
                outputs=["study_effects", "study_effects_robustness"],
                name="estimate_study_effects",
            ),
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
                build_ablation_table,
                inputs=[
                    "system_summary",
                    "human_scores",
                    "merged_ratings",
                    "params:evaluation_common",
                    "system_comparisons",
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
