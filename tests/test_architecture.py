"""The package's shape: light leaf modules, no import cycles, modules of a readable size,
and shared facts defined once."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from anchormix_kedro import vocabulary
from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "src" / "anchormix_kedro"
HEAVY = ("torch", "transformers", "peft", "soundfile", "soxr", "pyloudnorm", "av", "scipy")
HTTP = ("requests", "urllib3", "http.client", "mlflow")


def imported_after(module: str) -> set[str]:
    """Top-level modules a fresh interpreter holds after importing ``module`` alone."""
    code = (
        "import json, sys; before = set(sys.modules); import "
        + module
        + "; print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before}"
        + " | {m for m in set(sys.modules) - before})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "module",
    ["anchormix_kedro.vocabulary", "anchormix_kedro.advice_language.parsing"],
)
def test_leaf_modules_import_no_audio_torch_or_http(module):
    loaded = imported_after(module)
    assert not [name for name in (*HEAVY, *HTTP) if name in loaded], sorted(loaded)


def test_model_manifests_are_read_without_torch():
    loaded = imported_after("anchormix_kedro.model.package")
    assert "torch" not in loaded and "transformers" not in loaded


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (imports for type hints only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def _project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("anchormix_kedro"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("anchormix_kedro"))
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycles_between_modules():
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {
        name: {m for m in _project_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # A package's __init__ re-exporting its own modules is not a cycle of concern.
    for name, edges in graph.items():
        graph[name] = {m for m in edges if not m.startswith(name + ".")}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend([*trail, node, nxt])
                return True
            if nxt not in state and visit(nxt, [*trail, node]):
                return True
        state[node] = 2
        return False

    for name in sorted(graph):
        if name not in state and visit(name, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_no_module_is_a_hall():
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 420} == {}


def test_shared_facts_live_in_globals_and_agree_with_the_cli_defaults():
    globals_ = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "globals.yml").read_text())
    assert globals_["balanced_tolerance_db"] == vocabulary.BALANCED_TOLERANCE_DB
    assert globals_["convention_min_songs"] == vocabulary.CONVENTION_MIN_SONGS
    parameters = "\n".join(
        p.read_text() for p in (PROJECT_ROOT / "conf" / "base").rglob("parameters*/**/*.yml")
    )
    # Every use interpolates the one value instead of repeating it.
    for key in ("balanced_tolerance_db", "convention_min_songs"):
        uses = [line for line in parameters.splitlines() if line.strip().startswith(f"{key}:")]
        assert uses and all(f"${{globals:{key}}}" in line for line in uses), uses
