"""Fine-tuning: cached log-mel features -> one LoRA/QLoRA package per variant.

One template pipeline, reused with ``namespace=`` per variant declared in
``conf/base/parameters/systems.yml`` (e.g. ``advisor``: anchor and target, the method;
``no_anchor``: the target only, the ablation). Each variant's nodes know its name: it names
the variant's MLflow run and registered model.
"""

from collections.abc import Callable, Sequence
from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline, pipeline

from .nodes import compute_log_mel_features, register_model, train_advice_model

#: The tag of every variant's training node (the Slurm script runs them by it).
TRAINING_TAG = "variant_training"
#: The tag of every variant's registration node (run with the training nodes on clusters).
REGISTRATION_TAG = "model_registration"


def _for_variant(func: Callable, variant: str) -> Callable:
    return update_wrapper(partial(func, variant_name=variant), func)


def variant_template(variant: str) -> Pipeline:
    return Pipeline(
        [
            Node(
                _for_variant(train_advice_model, variant),
                inputs=[
                    "instruction_dataset",
                    "log_mel_features",
                    "tracks",
                    "params:model",
                    "params:training",
                    "params:variant",
                ],
                outputs=["model_package", "training_report"],
                name="train_advice_model",
                tags=[TRAINING_TAG],
            ),
            Node(
                _for_variant(register_model, variant),
                inputs=["model_package", "params:registry"],
                outputs="model_registration",
                name="register_model",
                tags=[REGISTRATION_TAG],
            ),
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
                variant_template(variant),
                namespace=variant,
                inputs={"instruction_dataset", "log_mel_features", "tracks"},
                parameters={
                    "params:model": "params:model",
                    "params:training": "params:training",
                    "params:registry": "params:registry",
                    "params:variant": f"params:systems.variants.{variant}",
                },
            )
            for variant in variants
        ),
        features,
    )
