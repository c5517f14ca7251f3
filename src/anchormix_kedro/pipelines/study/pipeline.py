"""study: the evaluated advice -> the listening study (scenarios, audio, key), one folder."""

from kedro.pipeline import Node, Pipeline

from .nodes import check_blinding, render_rating_study, sample_rating_study


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                sample_rating_study,
                inputs=["evaluation_examples", "params:study_kit"],
                outputs="rating_study_key",
                name="sample_rating_study",
            ),
            Node(
                check_blinding,
                inputs="rating_study_key",
                outputs="rating_study_blinding",
                name="check_blinding",
            ),
            Node(
                render_rating_study,
                inputs=["rating_study_key", "source_rate_excerpts", "tracks", "params:study_kit"],
                outputs="rating_study",
                name="render_rating_study",
            ),
        ]
    )
