"""Fine-tuning: cached log-mel features -> one LoRA/QLoRA package per variant.

One template pipeline, reused with ``namespace=`` per variant: ``advisor`` (anchor and
target, the method) and ``no_anchor`` (target only, the ablation).
"""

from kedro.pipeline import Node, Pipeline, pipeline

from .nodes import compute_log_mel_features, train_advice_model

VARIANTS = ("advisor", "no_anchor")


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
            )
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
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
    variants = [
        pipeline(
            variant_template(),
            namespace=variant,
            inputs={"instruction_dataset", "log_mel_features"},
            parameters={"params:model", "params:training"},
        )
        for variant in VARIANTS
    ]
    return sum(variants, features)
