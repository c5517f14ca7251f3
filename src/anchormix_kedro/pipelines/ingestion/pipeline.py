"""Ingestion: a MUSDB18 root (or a synthetic corpus) -> tracks, 16 kHz excerpts, loudness."""

from kedro.pipeline import Node, Pipeline

from .nodes import extract_excerpts, list_tracks, plan_synthetic_corpus, tabulate_loudness


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                plan_synthetic_corpus,
                inputs=["musdb_corpus", "params:ingestion.synthetic"],
                outputs="synthetic_corpus",
                name="plan_synthetic_corpus",
            ),
            Node(
                list_tracks,
                inputs=["musdb_corpus", "synthetic_corpus", "params:splits"],
                outputs="tracks",
                name="list_tracks",
            ),
            Node(
                extract_excerpts,
                inputs=[
                    "musdb_corpus",
                    "synthetic_corpus",
                    "tracks",
                    "params:ingestion.excerpt",
                    "params:pairs",
                ],
                outputs="excerpts",
                name="extract_excerpts",
            ),
            Node(
                tabulate_loudness,
                inputs="excerpts",
                outputs=["loudness", "ingestion_summary"],
                name="tabulate_loudness",
            ),
        ]
    )
