"""automated_eval: advice of every system -> per-example metrics, summaries, the study kit."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    add_oracle_meter,
    analyse_convention_following,
    assemble_metric_table,
    compare_systems_listwise,
    compare_with_reference,
    compute_text_metrics,
    compute_truth_metrics,
    evaluation_settings,
    judge_advice,
    plot_convention_following,
    plot_system_summary,
    rank_advice_listwise,
    select_advice,
    summarize_systems,
    summary_mlflow_metrics,
    tabulate_accuracy_by_offset,
    tabulate_amount_tracking,
    write_automated_eval_report,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                select_advice,
                inputs=["advice_by_system", "instruction_dataset", "params:automated_eval"],
                outputs="evaluation_examples",
                name="select_advice",
            ),
            Node(
                add_oracle_meter,
                inputs=[
                    "evaluation_examples",
                    "condition_examples",
                    "genre_conventions",
                    "params:automated_eval",
                    "params:evaluation_common",
                    "params:systems",
                ],
                outputs="evaluated_advice",
                name="add_oracle_meter",
            ),
            Node(
                compute_truth_metrics,
                inputs=["evaluated_advice", "genre_conventions", "params:automated_eval"],
                outputs="truth_metrics",
                name="compute_truth_metrics",
            ),
            Node(
                compute_text_metrics,
                inputs=["evaluated_advice", "params:automated_eval.text_metrics"],
                outputs=["text_scores", "text_metric_variants"],
                name="compute_text_metrics",
            ),
            Node(
                judge_advice,
                inputs=["evaluated_advice", "params:automated_eval.judge", "judge_credentials"],
                outputs=["judge_scores", "judge_status"],
                name="judge_advice",
            ),
            Node(
                rank_advice_listwise,
                inputs=[
                    "evaluation_examples",
                    "params:automated_eval.listwise",
                    "params:automated_eval.judge",
                    "judge_credentials",
                ],
                outputs=["listwise_ranks", "listwise_status"],
                name="rank_advice_listwise",
            ),
            Node(
                compare_systems_listwise,
                inputs=["listwise_ranks", "params:evaluation_common", "params:systems"],
                outputs="listwise_win_rates",
                name="compare_systems_listwise",
            ),
            Node(
                assemble_metric_table,
                inputs=[
                    "evaluated_advice",
                    "truth_metrics",
                    "text_scores",
                    "judge_scores",
                    "text_metric_variants",
                ],
                outputs="evaluation_metrics",
                name="assemble_metric_table",
            ),
            Node(
                summarize_systems,
                inputs=[
                    "evaluation_metrics",
                    "params:evaluation_common",
                    "listwise_ranks",
                    "params:systems",
                ],
                outputs="system_summary",
                name="summarize_systems",
            ),
            Node(
                tabulate_accuracy_by_offset,
                inputs="evaluation_metrics",
                outputs="accuracy_by_offset",
                name="tabulate_accuracy_by_offset",
            ),
            Node(
                tabulate_amount_tracking,
                inputs=["evaluation_metrics", "params:evaluation_common"],
                outputs="amount_tracking",
                name="tabulate_amount_tracking",
            ),
            Node(
                compare_with_reference,
                inputs=["evaluation_metrics", "params:evaluation_common", "params:systems"],
                outputs="system_comparisons",
                name="compare_with_reference",
            ),
            Node(
                summary_mlflow_metrics,
                inputs=["system_summary", "judge_status", "listwise_status", "system_comparisons"],
                outputs="automated_eval_mlflow_metrics",
                name="summary_mlflow_metrics",
            ),
            Node(
                evaluation_settings,
                inputs=["text_metric_variants", "judge_status", "listwise_status"],
                outputs="automated_eval_settings",
                name="evaluation_settings",
            ),
            Node(
                plot_system_summary,
                inputs="system_summary",
                outputs="system_summary_plot",
                name="plot_system_summary",
            ),
            Node(
                analyse_convention_following,
                inputs=["evaluation_metrics", "params:evaluation_common"],
                outputs="genre_convention_following",
                name="analyse_convention_following",
            ),
            Node(
                plot_convention_following,
                inputs="genre_convention_following",
                outputs="genre_convention_plot",
                name="plot_convention_following",
            ),
            Node(
                write_automated_eval_report,
                inputs=[
                    "system_summary",
                    "genre_convention_following",
                    "text_metric_variants",
                    "judge_status",
                    "params:evaluation_common",
                    "listwise_win_rates",
                    "listwise_status",
                    "system_comparisons",
                    "accuracy_by_offset",
                    "amount_tracking",
                    "params:systems",
                ],
                outputs="automated_eval_report",
                name="write_automated_eval_report",
            ),
        ]
    )
