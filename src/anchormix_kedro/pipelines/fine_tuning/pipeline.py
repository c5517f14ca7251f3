"""Fine-tuning: cached log-mel features -> one LoRA/QLoRA package per variant.

One template pipeline, reused with ``namespace=`` per variant declared in
``conf/base/parameters/systems.yml`` (e.g. ``advisor``: anchor and target, the method;
``no_anchor``: the target only, the ablation).
"""

from collections.abc import Sequence

from kedro.pipeline import Node, Pipeline, pipeline

from .nodes import compute_log_mel_features, train_advice_model

#: The tag of every variant's training node (the Slurm script runs them by it).
TRAINING_TAG = "variant_training"


def variant_template() -> Pipeline:
    return Pipeline(
        [
            Node(
                train_advice_model,
                inputs=[
                    "instruction_dataset",
                    "log_mel_features",
                    "params:model",
                    "params:training",
                    "params:variant",
                ],
                outputs=["model_package", "training_report"],
                name="train_advice_model",
                tags=[TRAINING_TAG],
            )
        ]
    )


def create_pipeline(variants: Sequence[str] = (), **kwargs) -> Pipeline:
    """The shared feature cache, then one training template per variant."""
    features = Pipeline(
        [
            Node(
                compute_log_mel_features,
                inputs=["excerpts", "params:features"],
                outputs="log_mel_features",
                name="compute_log_mel_features",
            )
        ]
    )
    return sum(
        (
            pipeline(
                variant_template(),
                namespace=variant,
                inputs={"instruction_dataset", "log_mel_features"},
                parameters={
                    "params:model": "params:model",
                    "params:training": "params:training",
                    "params:variant": f"params:systems.variants.{variant}",
                },
            )
            for variant in variants
        ),
        features,
    )
