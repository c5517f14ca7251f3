"""Templating: examples -> chat conversations with reference advice, conventions, card, plots."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    build_instruction_dataset,
    make_dataset_card,
    measure_conventions,
    plot_example_spectrograms,
    plot_reference_levels,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                measure_conventions,
                inputs="examples",
                outputs="genre_conventions",
                name="measure_conventions",
            ),
            Node(
                build_instruction_dataset,
                inputs=["examples", "genre_conventions", "params:templating"],
                outputs="instruction_dataset",
                name="build_instruction_dataset",
            ),
            Node(
                make_dataset_card,
                inputs=[
                    "instruction_dataset",
                    "genre_conventions",
                    "ingestion_summary",
                    "perturbation_summary",
                    "tracks",
                ],
                outputs="dataset_card",
                name="make_dataset_card",
            ),
            Node(
                plot_reference_levels,
                inputs="examples",
                outputs="reference_levels_plot",
                name="plot_reference_levels",
            ),
            Node(
                plot_example_spectrograms,
                inputs=["instruction_dataset", "excerpts"],
                outputs="example_spectrograms_plot",
                name="plot_example_spectrograms",
            ),
        ]
    )
