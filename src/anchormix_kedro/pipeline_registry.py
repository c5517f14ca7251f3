"""Project pipelines.

Composite pipelines are built from explicit imports: Kedro 1.7 imports only the pipeline
folder named by ``--pipeline``, so ``find_pipelines()`` keys cannot compose them.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from anchormix_kedro.pipelines import (
    automated_eval,
    correlation,
    fine_tuning,
    inference,
    ingestion,
    perturbation,
    templating,
)


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to pipelines: one per stage plus the composites."""
    stages = {
        "ingestion": ingestion.create_pipeline(),
        "perturbation": perturbation.create_pipeline(),
        "templating": templating.create_pipeline(),
        "fine_tuning": fine_tuning.create_pipeline(),
        "inference": inference.create_pipeline(),
        "automated_eval": automated_eval.create_pipeline(),
        "correlation": correlation.create_pipeline(),
    }
    data = stages["ingestion"] + stages["perturbation"] + stages["templating"]
    training = data + stages["fine_tuning"]
    evaluation = stages["inference"] + stages["automated_eval"] + stages["correlation"]
    return {
        **stages,
        "data": data,
        "training": training,
        "evaluation": evaluation,
        "__default__": training + evaluation,
    }
