"""The manual stays true: every page is reachable from its index, every relative link and
anchor resolves, and every command a page names exists.

Commands are read from the code of ``README.md`` and ``docs/*.md``: fenced and indented code
blocks, and inline code spans. A name that does not exist fails the test with its page and
line: an ``anchormix`` subcommand the parser does not have, a pipeline, node or tag the
registry does not hold, a ``make`` target the Makefile does not define, a file of the
repository or a module of the package that is not there.
"""

from __future__ import annotations

import argparse
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
INDEX = DOCS / "README.md"
SOURCE = ROOT / "src"
PAGES = sorted(DOCS.glob("*.md"))
MANUAL = [ROOT / "README.md", *PAGES]
# Pages outside the manual whose links into it must keep working.
INBOUND = sorted((SOURCE / "anchormix_kedro" / "pipelines").glob("*/README.md")) + [
    ROOT / "conf" / "README.md"
]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`]+)`")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")

ANCHORMIX = re.compile(r"(?:^|(?<=[\s(/]))anchormix((?:[ \t]+[^\s`]+)*)")
PIPELINE = re.compile(r"--pipeline[= ]\"?([A-Za-z_]\w*)")
NODES = re.compile(r"--(?:to-|from-)?nodes[= ]\"?([A-Za-z_][\w.,]*)")
TAGS = re.compile(r"--tags[= ]\"?([A-Za-z_][\w.,]*)")
MAKE = re.compile(r"(?:^|(?<=[\s;&|(]))make[ \t]+((?:[A-Z_]+=\S*[ \t]+)*)([^\s\-][^\s`'\"]*)")
REPO_PATH = re.compile(
    r"(?<![\w./$~-])((?:benchmarks|tools|conf|src|tests|slurm|notebooks|scripts|docs|\.ci)/[\w./-]*)"
)
TEST_NAME = re.compile(r"(?<![\w/])(?:tests/)?(test_\w+\.py)(?:::(\w+))?")
MODULE_RUN = re.compile(r"python3? -m ([\w.]+)")
DOTTED = re.compile(r"(?<![\w.])anchormix_kedro(?:\.\w+)+")
# Files a user writes for their own machine (git-ignored): named, never shipped.
USER_FILES = ("conf/local/",)


@dataclass(frozen=True)
class Code:
    """A piece of code a page shows: a line of a block or an inline span."""

    page: Path
    line: int
    text: str

    def where(self) -> str:
        return f"{shown(self.page)}:{self.line}"


@cache
def split_page(page: Path) -> tuple[str, tuple[Code, ...]]:
    """``(prose, code)``: the page with its code blocks blanked (line numbers kept), and
    every command line of its code blocks (backslash continuations joined) and inline span."""
    prose_lines: list[str] = []
    code: list[Code] = []
    fenced = False
    indented = False
    pending: tuple[int, str] | None = None
    previous_blank = True
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            prose_lines.append("")
            previous_blank = False
            continue
        blank = not line.strip()
        if not fenced:
            if line.startswith(("    ", "\t")) and (previous_blank or indented):
                indented = True
            elif not blank:
                indented = False
        in_code = fenced or (indented and not blank)
        previous_blank = blank
        if not in_code:
            prose_lines.append(line)
            continue
        prose_lines.append("")
        text = line.strip()
        if pending:
            start, text = pending[0], pending[1] + " " + text
            pending = None
        else:
            start = number
        if text.endswith("\\"):
            pending = (start, text[:-1].rstrip())
            continue
        code.append(Code(page, start, text))
    prose = "\n".join(prose_lines)
    for match in INLINE_CODE.finditer(prose):
        if "\n\n" in match.group(1):
            continue
        line = prose.count("\n", 0, match.start()) + 1
        code.append(Code(page, line, " ".join(match.group(1).split())))
    return prose, tuple(code)


def all_code() -> list[Code]:
    return [piece for page in MANUAL for piece in split_page(page)[1]]


def github_slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = text.replace("`", "").strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    prose, _ = split_page(page)
    seen: dict[str, int] = {}
    found = set()
    for line in prose.splitlines():
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(found)


def links(page: Path) -> list[tuple[int, str]]:
    prose, _ = split_page(page)
    return [
        (prose.count("\n", 0, match.start()) + 1, match.group(1)) for match in LINK.finditer(prose)
    ]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if ROOT in path.parents else str(path)


def broken_link(page: Path, target: str) -> str | None:
    """Why ``target`` (a link on ``page``) does not resolve, or None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return None
    path_part, _, anchor = target.partition("#")
    resolved = (page.parent / path_part).resolve() if path_part else page
    if not resolved.exists():
        return f"{target}: no such file"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"{target}: no heading #{anchor} in {shown(resolved)}"
    return None


# -- the pages and their links ---------------------------------------------------------


def test_the_manual_has_pages_and_an_index():
    assert INDEX.is_file()
    assert len(PAGES) > 5


def test_every_page_of_the_manual_is_linked_from_its_index():
    linked = {
        (DOCS / target.partition("#")[0]).resolve()
        for _, target in links(INDEX)
        if target.partition("#")[0]
    }
    missing = [page.name for page in PAGES if page != INDEX and page.resolve() not in linked]
    assert not missing, f"pages not linked from docs/README.md: {missing}"


@pytest.mark.parametrize("page", MANUAL, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    problems = [
        f"{page.relative_to(ROOT)}:{line}: {why}"
        for line, target in links(page)
        if (why := broken_link(page, target))
    ]
    assert not problems, "\n".join(problems)


def test_links_from_outside_into_the_manual_resolve():
    problems = [
        f"{page.relative_to(ROOT)}:{line}: {why}"
        for page in INBOUND
        if page.is_file()
        for line, target in links(page)
        if DOCS in (page.parent / target.partition("#")[0]).resolve().parents
        and (why := broken_link(page, target))
    ]
    assert not problems, "\n".join(problems)


def test_every_file_beside_the_pages_is_shown_and_says_what_draws_it():
    """An image is kept only where its page names the file the command writes."""
    problems = []
    shown: set[Path] = set()
    for page in PAGES:
        prose, _ = split_page(page)
        for match in IMAGE.finditer(prose):
            image = (page.parent / match.group(1)).resolve()
            shown.add(image)
            nearby = prose[max(0, match.start() - 600) : match.end() + 600]
            if not re.search(rf"data/08_reporting/[\w./<>-]*{re.escape(image.name)}", nearby):
                problems.append(
                    f"{page.name}: {match.group(1)} does not say which command draws it "
                    f"(no data/08_reporting/.../{image.name} beside it)"
                )
    unshown = [
        path.name
        for path in DOCS.iterdir()
        if path.is_file() and path.suffix != ".md" and path.resolve() not in shown
    ]
    assert not unshown, f"files in docs/ that no page shows: {unshown}"
    assert not problems, "\n".join(problems)


# -- the commands a page names -----------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {
        name: sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, sub in action.choices.items()
    }


def unknown_subcommand(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    """What in ``anchormix WORDS`` the parser does not have: the first word that should name
    a subcommand and does not, or an option the (sub)command does not take; None if all."""
    path = ["anchormix"]
    words = [word.strip("[](){},;") for word in words]
    for index, word in enumerate(words):
        choices = subcommands(parser)
        if not choices or not word or word.startswith(("-", "#", "<", "|", ">", "$", '"')):
            return unknown_option(parser, path, words[index:])
        if word not in choices:
            return f"`{' '.join(path)} {word}`: {' '.join(path)} has {sorted(choices)}"
        path.append(word)
        parser = choices[word]
    return None


def unknown_option(
    parser: argparse.ArgumentParser, path: list[str], words: list[str]
) -> str | None:
    for word in words:
        if word.startswith(("#", "|", ">", "&", ";")):
            return None  # a comment, or another command from here on
        option = word.split("=", 1)[0]
        if option.startswith("--") and option not in parser._option_string_actions:
            return f"`{' '.join(path)} {option}`: no such option"
    return None


def test_every_anchormix_command_is_in_the_parser():
    from anchormix_kedro.commands import build_parser

    parser = build_parser()
    assert "advise" in subcommands(parser)  # the walk below reads the real parser
    problems = []
    for piece in all_code():
        for match in ANCHORMIX.finditer(piece.text):
            words = match.group(1).split()
            if why := unknown_subcommand(parser, words):
                problems.append(f"{piece.where()}: {why}")
    assert not problems, "unknown anchormix commands:\n" + "\n".join(sorted(set(problems)))


@pytest.fixture(scope="module")
def pipelines():
    from anchormix_kedro.pipeline_registry import register_pipelines

    return register_pipelines()


def test_every_pipeline_node_and_tag_named_is_registered(pipelines):
    nodes = {node.name for node in pipelines["__default__"].nodes}
    tags = set().union(*(node.tags for node in pipelines["__default__"].nodes))
    assert {"training", "evaluation", "__default__"} <= set(pipelines)
    problems = []
    for piece in all_code():
        if "kedro" not in piece.text and "make run" not in piece.text:
            continue  # another tool's options (sbatch --nodes=2)
        for name in PIPELINE.findall(piece.text):
            if name not in pipelines:
                problems.append(f"{piece.where()}: no pipeline {name!r}")
        for group in NODES.findall(piece.text):
            problems += [
                f"{piece.where()}: no node {name!r}"
                for name in group.split(",")
                if name and name not in nodes
            ]
        for group in TAGS.findall(piece.text):
            problems += [
                f"{piece.where()}: no node tagged {name!r}"
                for name in group.split(",")
                if name and name not in tags
            ]
    assert not problems, "\n".join(sorted(set(problems)))


def test_the_systems_listed_are_the_systems_declared(pipelines):
    """evaluation.md holds the one list of the systems; it matches systems.yml."""
    from anchormix_kedro.pipeline_registry import declared_systems

    variants, baselines = declared_systems(env="base", conf=ROOT / "conf")
    prose, _ = split_page(DOCS / "evaluation.md")
    section = prose.split("## inference: the systems compared", 1)[1]
    section = re.split(r"^#", section, maxsplit=1, flags=re.MULTILINE)[0]
    listed = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    assert listed == variants + baselines


@cache
def make_targets() -> frozenset[str]:
    variables: dict[str, str] = {}
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith(("\t", "#")) or not line.strip():
            continue
        line = re.sub(r"^export\s+", "", line)
        assignment = re.match(r"^([A-Za-z_]\w*)\s*[:?+]?=\s*(.*)$", line)
        if assignment:
            variables[assignment.group(1)] = assignment.group(2).strip()
            continue
        rule = re.match(r"^([^:#=]+):(?!=)", line)
        if rule:
            names = rule.group(1)
            for _ in range(5):  # nested $(VAR)
                names = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), ""), names)
            targets.update(name for name in names.split() if name != ".PHONY")
    return frozenset(targets)


def test_every_make_target_named_is_in_the_makefile():
    assert {"run", "test"} <= make_targets()
    problems = [
        f"{piece.where()}: no make target {target!r}"
        for piece in all_code()
        for _, target in MAKE.findall(piece.text)
        if target not in make_targets()
    ]
    assert not problems, "\n".join(sorted(set(problems)))


def test_every_file_named_is_in_the_repository():
    problems = []
    for piece in all_code():
        for path in REPO_PATH.findall(piece.text):
            path = path.rstrip(".")
            if path.startswith(USER_FILES) and path not in USER_FILES:
                continue
            if not (ROOT / path).exists():
                problems.append(f"{piece.where()}: no file {path}")
        for name, function in TEST_NAME.findall(piece.text):
            test_file = ROOT / "tests" / name
            if not test_file.is_file():
                problems.append(f"{piece.where()}: no test file tests/{name}")
            elif function and not re.search(
                rf"^\s*def {function}\(", test_file.read_text(encoding="utf-8"), re.MULTILINE
            ):
                problems.append(f"{piece.where()}: no test {function} in tests/{name}")
    assert not problems, "\n".join(sorted(set(problems)))


SCRIPT_RUN = re.compile(r"python3?\s+((?:benchmarks|tools)/[\w.-]+\.py)((?:[ \t]+\S+)*)")


def test_every_option_given_to_a_benchmark_is_one_it_takes():
    """`python benchmarks/x.py --option`: the script declares the option."""
    problems = []
    for piece in all_code():
        for script, rest in SCRIPT_RUN.findall(piece.text):
            path = ROOT / script
            if not path.is_file():
                continue  # reported by the test of the files named
            source = path.read_text(encoding="utf-8")
            for word in rest.split():
                if word.startswith(("#", "|", ">", "&", ";")):
                    break
                option = word.strip("[](){},").split("=", 1)[0]
                if option.startswith("--") and f'"{option}"' not in source:
                    problems.append(f"{piece.where()}: {script} takes no {option}")
    assert not problems, "\n".join(sorted(set(problems)))


def module_file(dotted: str) -> Path | None:
    base = SOURCE.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def missing_name(dotted: str) -> str | None:
    """Why ``dotted`` (a module, or a module and a name in it) is not in the package."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        found = module_file(".".join(parts[:cut]))
        if found:
            break
    rest = parts[cut:]
    if not rest:
        return None
    defined = re.compile(
        rf"^\s*(?:async\s+def|def|class)\s+{rest[0]}\b|^{rest[0]}\s*[:=]|^\s*(?:from|import)\b.*\b{rest[0]}\b",
        re.MULTILINE,
    )
    if len(rest) > 2 or not defined.search(found.read_text(encoding="utf-8")):
        return f"no {'.'.join(parts[: cut + 1])} in src/"
    return None


def test_every_module_named_is_in_the_package():
    problems = []
    for piece in all_code():
        for module in MODULE_RUN.findall(piece.text):
            if module.startswith("anchormix_kedro") and not module_file(module):
                problems.append(f"{piece.where()}: no module {module} to run with -m")
        for dotted in DOTTED.findall(piece.text):
            if why := missing_name(dotted):
                problems.append(f"{piece.where()}: {why}")
    assert not problems, "\n".join(sorted(set(problems)))


# -- the checks themselves ---------------------------------------------------------------


def test_the_checks_catch_what_they_are_for(tmp_path):
    """Each check fails on a page that breaks it."""
    from anchormix_kedro.commands import build_parser

    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n## The `kedro run` part: two\n\n"
        "Run `anchormix advise SONG` or `anchormix no-such-command`\nthen\n\n"
        "    make no-such-target ARGS=x\n    kedro run --pipeline=no_such \\\n        --tags=x\n\n"
        "See [this](#the-kedro-run-part-two), [that](#nowhere) and [gone](gone.md).\n",
        encoding="utf-8",
    )
    split_page.cache_clear()
    anchors.cache_clear()
    prose, code = split_page(page)
    texts = [piece.text for piece in code]
    assert "make no-such-target ARGS=x" in texts
    assert "kedro run --pipeline=no_such --tags=x" in texts
    assert "anchormix advise SONG" in texts
    assert anchors(page) == {"a-page", "the-kedro-run-part-two"}
    assert [broken_link(page, target) is None for _, target in links(page)] == [True, False, False]

    parser = build_parser()
    assert unknown_subcommand(parser, ["advise", "SONG"]) is None
    assert unknown_subcommand(parser, ["no-such-command"])
    assert unknown_subcommand(parser, ["study", "no-such-action"])
    assert unknown_subcommand(parser, ["study", "invite", "--n", "20"]) is None
    assert unknown_subcommand(parser, ["advise", "SONG", "[--anchor", "drums]"]) is None
    assert unknown_subcommand(parser, ["advise", "SONG", "--no-such-option"])
    assert unknown_subcommand(parser, ["advise", "SONG", "#", "--comment"]) is None
    assert [target for _, target in MAKE.findall("MUSDB_PATH=/x make run ARGS='-k x'")] == ["run"]
    assert [target for _, target in MAKE.findall("make PYTHON=/usr/bin/python3 test")] == ["test"]
    assert "no-such-target" not in make_targets() and ".venv/bin/.installed" in make_targets()
    assert missing_name("anchormix_kedro.advice_language.parsing.parse_advice") is None
    assert missing_name("anchormix_kedro.evaluation.no_such_module")
    assert github_slug("`anchormix advise` on long songs") == "anchormix-advise-on-long-songs"
    assert github_slug("BS.1770 loudness") == "bs1770-loudness"
