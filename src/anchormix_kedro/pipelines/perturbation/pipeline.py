"""Perturbation: excerpts x (anchor, target) pairs x gain offsets -> labelled examples."""

from kedro.pipeline import Node, Pipeline

from .nodes import perturb_gains


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                perturb_gains,
                inputs=["loudness", "tracks", "params:pairs", "params:perturbation"],
                outputs=["examples", "perturbation_summary"],
                name="perturb_gains",
            )
        ]
    )
