"""Ingestion: a MUSDB18 root (or a synthetic corpus) -> tracks, 16 kHz excerpts (up to
``ingestion.excerpt.per_song`` per song), loudness, and source-rate excerpts of the songs
people listen to (the rating study)."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    extract_excerpts,
    extract_source_rate_excerpts,
    list_tracks,
    plan_synthetic_corpus,
    tabulate_loudness,
)


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
            Node(
                extract_source_rate_excerpts,
                inputs=[
                    "musdb_corpus",
                    "synthetic_corpus",
                    "tracks",
                    "excerpts",
                    "params:ingestion.source_rate",
                ],
                outputs="source_rate_excerpts",
                name="extract_source_rate_excerpts",
            ),
        ]
    )
