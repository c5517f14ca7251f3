"""The notebook a researcher opens first runs top to bottom on a real (small) run."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import PROJECT_ROOT
from test_pipelines import TINY_TRAINING, run

NOTEBOOK = PROJECT_ROOT / "notebooks" / "first_look.ipynb"


def outputs_text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        for mime in ("text/plain", "text/markdown", "text/html"):
            parts.append(str(output.get("data", {}).get(mime, "")))
    return "\n".join(parts)


@pytest.mark.slow
def test_first_look_notebook_runs_on_the_suites_own_run(project):
    run(project, "__default__", TINY_TRAINING)
    notebooks = project / "notebooks"
    notebooks.mkdir()
    shutil.copy(NOTEBOOK, notebooks)
    notebook = nbformat.read(notebooks / NOTEBOOK.name, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": notebooks}}
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [o for cell in code for o in cell.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, errors
    texts = [outputs_text(cell) for cell in code]
    assert "AnchorMix instruction dataset" in texts[1]  # the card
    assert "vocals" in texts[2] and "bass" in texts[2]  # reference levels by target
    assert "songs" in texts[3]
    images = [o for o in code[4].get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the spectrogram figure is shown"
    assert "Ablation" in texts[5] and "advisor" in texts[5]
    assert "direction_accuracy" in texts[6]
