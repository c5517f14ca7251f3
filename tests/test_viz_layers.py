"""kedro-viz draws every dataset in a layer band, in the order of the data folders: every
dataset of every registered pipeline has a layer, and no node writes an earlier layer than
it reads (kedro-viz switches the bands off when the layers form a cycle)."""

from __future__ import annotations

import pytest
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog

from anchormix_kedro.config import project_config
from conftest import PROJECT_ROOT

#: The layers in the order of the data folders (01_raw ... 08_reporting).
LAYERS = [
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
]


@pytest.fixture(scope="module")
def layers_of() -> dict[str, str | None]:
    bootstrap_project(PROJECT_ROOT)
    catalog = DataCatalog.from_config(project_config(PROJECT_ROOT / "conf", env="base")["catalog"])
    found = {}
    for name in sorted(pipelines["__default__"].datasets()):
        if name.startswith("params:") or name == "parameters":
            continue
        config = catalog.config_resolver.resolve_pattern(name) or {}
        found[name] = ((config.get("metadata") or {}).get("kedro-viz") or {}).get("layer")
    return found


def test_every_dataset_of_every_pipeline_has_a_layer(layers_of):
    assert len(layers_of) > 50
    missing = sorted(name for name, layer in layers_of.items() if not layer)
    assert not missing, f"datasets without a kedro-viz layer: {missing}"
    unknown = sorted(f"{n}: {layer}" for n, layer in layers_of.items() if layer not in LAYERS)
    assert not unknown, unknown
    # Any system's advice, declared now or later, falls under the catalog's pattern.
    assert layers_of.get("dsp_baseline_advice") == "model_output"


def test_no_node_writes_a_layer_before_one_it_reads(layers_of):
    backwards = [
        f"{node.name}: {source} ({layers_of[source]}) -> {target} ({layers_of[target]})"
        for node in pipelines["__default__"].nodes
        for source in node.inputs
        if source in layers_of
        for target in node.outputs
        if LAYERS.index(layers_of[source]) > LAYERS.index(layers_of[target])
    ]
    assert not backwards, backwards
