"""Project pipelines.

The systems compared are declared once, in the ``systems`` parameters
(``conf/base/parameters/systems.yml``); the registry reads them and hands the variant and
baseline names to the pipelines that need them. Composite pipelines are built from explicit
imports: Kedro 1.7 imports only the pipeline folder named by ``--pipeline``, so
``find_pipelines()`` keys cannot compose them.
"""

from __future__ import annotations

from pathlib import Path

from kedro.pipeline import Pipeline, pipeline

from anchormix_kedro.config import project_config
from anchormix_kedro.pipelines import (
    automated_eval,
    correlation,
    fine_tuning,
    inference,
    ingestion,
    perturbation,
    study,
    templating,
)
from anchormix_kedro.vocabulary import system_order

CONF_SOURCE = "conf"


def conf_source() -> Path:
    """The project's conf/ folder: beside the working directory (``kedro run``) or above
    the source tree (an editable install used from elsewhere)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = root / CONF_SOURCE
        if (candidate / "base").is_dir():
            return candidate
    raise FileNotFoundError(
        f"no {CONF_SOURCE}/base folder in {Path.cwd()}: run kedro from the project root"
    )


def run_environment() -> str | None:
    """The environment of the command being run (``kedro run --env=ablations``), which
    Kedro hands to the session but not to the registry; ``None`` outside a command."""
    import click

    command = click.get_current_context(silent=True)
    return (command.params.get("env") or None) if command is not None else None


def declared_systems(
    env: str | None = None, conf: Path | None = None
) -> tuple[list[str], list[str]]:
    """``(variants, baselines)`` as the ``systems`` parameters declare them (the run's
    environment, ``--env`` or ``KEDRO_ENV``, over base)."""
    loader = project_config(conf or conf_source(), env or run_environment())
    systems = loader["parameters"].get("systems")
    if not systems:
        raise ValueError("the `systems` parameters are missing (conf/base/parameters/systems.yml)")
    order = system_order(systems)
    variants = list(systems.get("variants") or {})
    return variants, [s for s in order if s not in variants]


def register_pipelines() -> dict[str, Pipeline]:
    """Map pipeline names to pipelines: one per stage plus the composites. Every node is
    tagged with its stage's name."""
    variants, baselines = declared_systems()
    built = {
        "ingestion": ingestion.create_pipeline(),
        "perturbation": perturbation.create_pipeline(),
        "templating": templating.create_pipeline(),
        "fine_tuning": fine_tuning.create_pipeline(variants=variants),
        "inference": inference.create_pipeline(variants=variants, baselines=baselines),
        "automated_eval": automated_eval.create_pipeline(),
        "study": study.create_pipeline(),
        "correlation": correlation.create_pipeline(),
    }
    stages = {name: pipeline(stage, tags=name) for name, stage in built.items()}
    data = stages["ingestion"] + stages["perturbation"] + stages["templating"]
    training = data + stages["fine_tuning"]
    evaluation = (
        stages["inference"] + stages["automated_eval"] + stages["study"] + stages["correlation"]
    )
    return {
        **stages,
        "data": data,
        "training": training,
        "evaluation": evaluation,
        "__default__": training + evaluation,
    }
