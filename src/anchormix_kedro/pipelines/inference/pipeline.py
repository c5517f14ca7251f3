"""Inference: advice for the test examples from every declared system, as one table.

One template reused with ``namespace=`` per trained variant, plus the baselines, each in
its own namespace: the variants' base model without an adapter (``generic_base``), the
first variant's package hearing silence (``text_only``) and the loudness rule
(``dsp_baseline``).
"""

from collections.abc import Sequence

from kedro.pipeline import Node, Pipeline, pipeline

from anchormix_kedro.vocabulary import DSP_BASELINE, GENERIC_BASE, TEXT_ONLY

from .nodes import (
    combine_advice,
    dsp_baseline_advice,
    generic_base_advice,
    package_advice,
    play_conditions,
    select_test_examples,
    text_only_advice,
)

SHARED = {"condition_examples", "log_mel_features", "loudness"}


def advice_of(system: str) -> str:
    """The dataset holding one system's advice before the tables are combined."""
    return f"{system}_advice"


def variant_template() -> Pipeline:
    return Pipeline(
        [
            Node(
                package_advice,
                [
                    "model_package",
                    "condition_examples",
                    "log_mel_features",
                    "loudness",
                    "params:inference",
                ],
                "advice",
                name="generate_advice",
            )
        ]
    )


def baseline_pipelines(baselines: Sequence[str], variants: Sequence[str]) -> list[Pipeline]:
    """Each baseline in its own namespace. The ones that need a model use the first
    variant's package (the method's): every variant shares its base."""
    package = {"model_package": f"{variants[0]}.model_package"} if variants else {}
    built = {
        GENERIC_BASE: lambda: pipeline(
            [
                Node(
                    generic_base_advice,
                    ["model_package", "condition_examples", "log_mel_features", "params:inference"],
                    "advice",
                    name="generate_base_model_advice",
                )
            ],
            namespace=GENERIC_BASE,
            inputs={
                **package,
                "condition_examples": "condition_examples",
                "log_mel_features": "log_mel_features",
            },
            outputs={"advice": advice_of(GENERIC_BASE)},
            parameters={"params:inference": "params:inference"},
        ),
        TEXT_ONLY: lambda: pipeline(
            [
                Node(
                    text_only_advice,
                    [
                        "model_package",
                        "condition_examples",
                        "log_mel_features",
                        "loudness",
                        "params:inference",
                    ],
                    "advice",
                    name="generate_silent_clip_advice",
                )
            ],
            namespace=TEXT_ONLY,
            inputs={**package, **{s: s for s in SHARED}},
            outputs={"advice": advice_of(TEXT_ONLY)},
            parameters={"params:inference": "params:inference"},
        ),
        DSP_BASELINE: lambda: pipeline(
            [
                Node(
                    dsp_baseline_advice,
                    [
                        "condition_examples",
                        "excerpts",
                        "genre_conventions",
                        "params:inference",
                        "params:training",
                        "params:method",
                    ],
                    "advice",
                    name="measure_and_word_advice",
                )
            ],
            namespace=DSP_BASELINE,
            inputs={"condition_examples", "excerpts", "genre_conventions"},
            outputs={"advice": advice_of(DSP_BASELINE)},
            # The rule advises on the examples of the method's anchor, as the model baselines do.
            parameters={
                "params:inference": "params:inference",
                "params:training": "params:training",
                "params:method": f"params:systems.variants.{variants[0]}"
                if variants
                else "params:training",
            },
        ),
    }
    return [built[name]() for name in baselines]


def create_pipeline(variants: Sequence[str] = (), baselines: Sequence[str] = (), **kwargs):
    """Test examples in every condition, each system's advice, and the combined table."""
    systems = [*variants, *baselines]
    select = Pipeline(
        [
            Node(
                select_test_examples,
                ["instruction_dataset", "params:inference"],
                "test_examples",
                name="select_test_examples",
            ),
            Node(
                play_conditions,
                ["test_examples", "params:inference"],
                "condition_examples",
                name="play_conditions",
            ),
        ]
    )
    per_variant = [
        pipeline(
            variant_template(),
            namespace=variant,
            inputs={"model_package": f"{variant}.model_package", **{s: s for s in SHARED}},
            outputs={"advice": advice_of(variant)},
            parameters={"params:inference": "params:inference"},
        )
        for variant in variants
    ]
    combine = Pipeline(
        [
            Node(
                combine_advice,
                {system: advice_of(system) for system in systems},
                "advice_by_system",
                name="combine_advice",
            )
        ]
    )
    return sum([*per_variant, *baseline_pipelines(baselines, variants)], select) + combine
