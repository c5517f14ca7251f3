"""Inference: advice for the test examples from the fine-tuned model, the no-anchor ablation,
the generic base model and the DSP baseline, as one table."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    combine_advice,
    dsp_baseline_advice,
    fine_tuned_advice,
    generic_base_advice,
    no_anchor_advice,
    select_test_examples,
)


def create_pipeline(**kwargs) -> Pipeline:
    shared = ["test_examples", "log_mel_features", "params:inference"]
    return Pipeline(
        [
            Node(
                select_test_examples,
                ["instruction_dataset", "params:inference"],
                "test_examples",
                name="select_test_examples",
            ),
            Node(
                fine_tuned_advice,
                ["advisor.model_package", *shared],
                "fine_tuned_advice",
                name="fine_tuned_advice",
            ),
            Node(
                no_anchor_advice,
                ["no_anchor.model_package", *shared],
                "no_anchor_advice",
                name="no_anchor_advice",
            ),
            Node(
                generic_base_advice,
                ["advisor.model_package", *shared],
                "generic_base_advice",
                name="generic_base_advice",
            ),
            Node(
                dsp_baseline_advice,
                ["test_examples", "excerpts", "genre_conventions", "params:inference"],
                "dsp_baseline_advice",
                name="dsp_baseline_advice",
            ),
            Node(
                combine_advice,
                [
                    "fine_tuned_advice",
                    "no_anchor_advice",
                    "generic_base_advice",
                    "dsp_baseline_advice",
                ],
                "advice_by_system",
                name="combine_advice",
            ),
        ]
    )
