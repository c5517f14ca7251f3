"""``anchormix analyse NAME``: every analysis is a subcommand, and a bad input is one line."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from anchormix_kedro.commands import main
from conftest import PROJECT_ROOT

NAMES = (
    "belief-separation",
    "seed-ensemble",
    "level-measures",
    "verdict-stability",
    "verdict-tradeoff",
    "wording-policy",
    "shipped-conventions",
)


@pytest.mark.parametrize("name", NAMES)
def test_each_analysis_has_its_parser(name, capsys):
    assert main(["analyse", name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: anchormix analyse {name}")
    assert "--project" in out or "--member" in out


@pytest.mark.parametrize("name", NAMES)
def test_a_folder_without_conf_is_one_line(name, tmp_path, capsys):
    where = ["--member", str(tmp_path)] * 2 if name == "seed-ensemble" else []
    assert main(["analyse", name, "--project", str(tmp_path), *where]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("anchormix: error: ")
    assert f"{tmp_path} is not a Kedro project" in error


def test_an_unknown_analysis_is_a_usage_error(capsys):
    assert main(["analyse", "no-such-analysis"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_an_unknown_environment_is_one_line(project, capsys):
    assert main(["analyse", "level-measures", "--env", "nowhere"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no Kedro environment 'nowhere'" in error


def test_an_ensemble_needs_two_members(project, capsys):
    assert main(["analyse", "seed-ensemble", "--member", str(project)]) == 2
    assert "at least two --member" in capsys.readouterr().err


def test_analyses_from_musdb18_say_where_it_is_missing(project, tmp_path, capsys):
    for name in ("verdict-tradeoff", "shipped-conventions"):
        assert main(["analyse", name, "--musdb-root", str(tmp_path / "none")]) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "holds no MUSDB18 train/ folder" in error


def test_the_command_line_imports_no_heavy_library():
    code = (
        "import json, sys; import anchormix_kedro.commands; "
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'matplotlib') "
        "if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout  # fmt: skip
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_no_other_wing_imports_the_analyses():
    package = PROJECT_ROOT / "src" / "anchormix_kedro"
    offenders = []
    for wing in ("model", "evaluation", "instruction_data", "advise", "study", "pipelines"):
        for path in (package / wing).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                if any(n.startswith("anchormix_kedro.analyses") for n in names):
                    offenders.append(str(path.relative_to(package)))
    assert offenders == []
