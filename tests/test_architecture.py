"""The package's shape: light leaf modules, imports that go one way (no cycles of any
kind, the model wing below evaluation, the advice language below both), packages'
``__init__`` only handing names on, benchmarks apart from the package and the tests, and
shared facts defined once. A module's size is a question for review, not a test."""

from __future__ import annotations

import ast
import json
import re
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


def _project_imports(path: Path, module: str) -> set[str]:
    """Every module of ours ``path`` imports anywhere: at the top, inside functions and
    under ``if TYPE_CHECKING:`` alike (each ties the two rooms), relative imports resolved."""
    found = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            if base.startswith("anchormix_kedro"):
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("anchormix_kedro"))
    return found


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    graph = {
        name: {m for m in _project_imports(path, name) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }
    # A package's __init__ handing on its own modules' names is not a cycle of concern.
    return {
        name: {m for m in edges if not m.startswith(name + ".")} for name, edges in graph.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
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
    return cycle


def test_no_import_cycles_of_any_kind():
    assert not (cycle := find_cycle(import_graph())), " -> ".join(cycle)


def test_the_cycle_check_sees_function_level_and_type_checking_imports(tmp_path):
    one = tmp_path / "one.py"
    one.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from anchormix_kedro.advise.analysis import TargetReport\n"
        "def f():\n    from anchormix_kedro.model import advisor\n"
    )
    found = _project_imports(one, "anchormix_kedro.advise.one")
    assert {"anchormix_kedro.advise.analysis", "anchormix_kedro.model.advisor"} <= found
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def _imports_of(prefix: str) -> dict[str, set[str]]:
    return {n: e for n, e in import_graph().items() if n == prefix or n.startswith(prefix + ".")}


def _reaching(prefix: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    return {
        name: sorted(m for m in edges if m.startswith(forbidden))
        for name, edges in _imports_of(prefix).items()
        if any(m.startswith(forbidden) for m in edges)
    }


def test_rooms_import_downwards_only():
    ours = "anchormix_kedro."
    # The model wing does not depend on the evaluation (the advice language is below both).
    assert (
        _reaching(ours + "model", (ours + "evaluation", ours + "advise", ours + "pipelines")) == {}
    )
    assert _reaching(ours + "instruction_data", (ours + "evaluation", ours + "model")) == {}
    assert (
        _reaching(ours + "evaluation", (ours + "model", ours + "advise", ours + "pipelines")) == {}
    )
    # The leaf vocabulary imports nothing of ours; the advice language only the vocabulary.
    assert _imports_of(ours + "vocabulary") == {ours + "vocabulary": set()}
    language = set().union(*_imports_of(ours + "advice_language").values())
    assert language <= {ours + "vocabulary", ours + "advice_language.parsing"}, language
    # No wing depends on the analyses, which read everything else.
    users = {
        n for n, e in import_graph().items() if any(m.startswith(ours + "analyses") for m in e)
    }
    assert {n for n in users if not n.startswith((ours + "analyses", ours + "commands"))} == set()


def test_packages_init_only_hand_names_on():
    """``__init__.py`` holds a docstring, imports and ``__all__``: the package's own code lives
    in named modules. (The root package also sets the telemetry opt-outs before anything.)"""
    doing = {}
    for path in PACKAGE.rglob("__init__.py"):
        if path.parent == PACKAGE:
            continue
        for node in ast.parse(path.read_text()).body:
            handing_on = isinstance(node, ast.Import | ast.ImportFrom) or (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            )
            naming_all = isinstance(node, ast.Assign) and [
                getattr(t, "id", None) for t in node.targets
            ] == ["__all__"]
            if not (handing_on or naming_all):
                doing.setdefault(str(path.relative_to(PACKAGE)), []).append(node.lineno)
    assert doing == {}


def test_benchmarks_stand_apart_from_the_package_and_the_tests():
    assert not (PROJECT_ROOT / "scripts").exists()
    package_text = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    assert "import benchmarks" not in package_text and "from benchmarks" not in package_text
    for test in (PROJECT_ROOT / "tests").glob("*.py"):
        if test.name == Path(__file__).name:
            continue  # this file names what it looks for
        text = test.read_text()
        assert "sys.path.insert" not in text and "spec_from_file_location" not in text, test.name
        assert not re.search(r"benchmarks/\w+\.py", text) or test.name == "test_docs.py", test.name
    for bench in (PROJECT_ROOT / "benchmarks").glob("*.py"):
        assert "sys.path" not in bench.read_text(), bench.name


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


def test_configuration_is_read_one_way():
    """Only config.py builds Kedro's configuration loader; everything else asks it."""
    builders = [
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "OmegaConfigLoader(" in p.read_text() or "yaml.safe_load(" in p.read_text()
    ]
    # The stem-words file of `anchormix advise` and MLflow's MLmodel are the user's and
    # MLflow's files, not the project's configuration.
    assert sorted(builders) == ["advise/session.py", "config.py", "model/mlflow_model.py"]
