"""The parameters' schema, read off the configuration's own files: every key that the
parameter files (and ``globals.yml``) of any environment under ``conf/`` declare is known,
with the kinds of value it takes there (a number, text, true/false, a list, a mapping), so
a setting another file adds is known at once. The preflight checks a run's parameters
against it before any work: an unknown key is named with the nearest known one, a value of
the wrong kind is named with the kind expected (true is not a number).

Two short lists say what the files cannot: :data:`EXPLICIT_KINDS` for settings whose value
in the files is null or that take several kinds, and :data:`OPEN_MAPPINGS` for mappings
whose keys are names (variants, conditions, a backend's or a library's own arguments), where
a new key is not a misspelling.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchormix_kedro.config import BASE_ENV, project_config
from anchormix_kedro.redaction import redact

#: Kinds of the settings whose value in the files is null or that take several kinds.
EXPLICIT_KINDS: dict[str, frozenset[str]] = {
    "musdb_root": frozenset({"text"}),
    "pairs.anchors": frozenset({"text", "list"}),  # one stem name is a list of one
    "pairs.targets": frozenset({"text", "list"}),
    "model.name_or_path": frozenset({"text"}),
    "model.cache_dir": frozenset({"text"}),
    "training.max_train_examples": frozenset({"number"}),
    "training.lora.target_modules": frozenset({"text", "list"}),  # a regex or module names
    "automated_eval.text_metrics.bertscore_model": frozenset({"text"}),
    "automated_eval.text_metrics.bertscore_num_layers": frozenset({"number"}),
    "automated_eval.text_metrics.device": frozenset({"text"}),
    "automated_eval.text_metrics.use_wordnet": frozenset({"bool"}),
    "ingestion.synthetic.genres": frozenset({"list"}),
    "study.public_url": frozenset({"text"}),
}

#: Mappings whose keys are names, not settings: below them a new key is accepted (and its
#: value not checked); keys the files declare there are still checked.
OPEN_MAPPINGS: frozenset[str] = frozenset(
    {
        "systems.variants",  # variant name -> its overrides of `training` and more
        "evaluation_common.systems.variants",  # the same, interpolated
        "inference.conditions",  # condition name -> its settings (checked when read)
        "automated_eval.judge",  # each backend has keys of its own
        "training.label_repeats",  # label -> repeats
        "training.finetune.args",  # transformers' TrainingArguments
        "training.pretrain.stage.args",
        "model.quantization",  # BitsAndBytesConfig's arguments
        "model.tiny.audio",  # Qwen2-Audio's configuration keys
        "model.tiny.text",
    }
)

_DESCRIBED = {
    "number": "a number",
    "text": "text",
    "bool": "true or false",
    "list": "a list",
    "mapping": "a mapping of settings",
}


def kind_of(value: Any) -> str:
    """The kind of a configuration value; a bool is not a number."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


@dataclass
class _Setting:
    kinds: set[str] = field(default_factory=set)
    item_kinds: set[str] = field(default_factory=set)
    children: dict[str, _Setting] = field(default_factory=dict)

    def learn(self, value: Any) -> None:
        self.kinds.add(kind_of(value))
        if isinstance(value, Mapping):
            for key, child in value.items():
                self.children.setdefault(str(key), _Setting()).learn(child)
        elif isinstance(value, list | tuple):
            self.item_kinds |= {kind_of(item) for item in value} - {"null"}


@contextlib.contextmanager
def _resolvers_kept() -> Iterator[None]:
    """Kedro's loaders register ``${globals:}`` and ``${runtime_params:}`` process-wide, bound
    to the last loader made: the run's own loader must keep resolving its own values after
    the schema has read every environment."""
    from omegaconf.basecontainer import BaseContainer

    saved = dict(BaseContainer._resolvers)
    try:
        yield
    finally:
        BaseContainer._resolvers.clear()
        BaseContainer._resolvers.update(saved)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()  # as YAML and --params spell it
    text = redact(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


class ParameterSchema:
    """Known keys and value kinds of a project's parameters."""

    def __init__(self, root: _Setting) -> None:
        self._root = root

    @classmethod
    def from_conf(cls, conf_source: str | Path) -> ParameterSchema:
        """The schema of every environment under ``conf_source`` (base alone, and each other
        environment over it); an environment that does not resolve here adds nothing."""
        root = _Setting()
        environments = sorted(p.name for p in Path(conf_source).iterdir() if p.is_dir())
        with _resolvers_kept():
            for env in [BASE_ENV, *(e for e in environments if e != BASE_ENV)]:
                try:
                    config = project_config(conf_source, env)
                    params, config_globals = dict(config["parameters"]), dict(config["globals"])
                except Exception:  # noqa: BLE001  (e.g. a variable only a cluster sets)
                    if env == BASE_ENV:
                        raise
                    continue
                root.learn({**config_globals, **params})
        return cls(root)

    def problems(self, params: Mapping) -> list[tuple[str, str]]:
        """``(what, fix)`` for each unknown key and each value of the wrong kind."""
        return self._check(self._root, params, "", open_below=False)

    def _check(self, setting: _Setting, value: Any, path: str, open_below: bool):
        if value is None:
            return []  # null switches a setting off or picks its default
        expected = (setting.kinds | EXPLICIT_KINDS.get(path, frozenset())) - {"null"}
        kind = kind_of(value)
        if expected and kind not in expected:
            wanted = " or ".join(_DESCRIBED.get(k, k) for k in sorted(expected))
            fix = f"give {wanted}"
            if "text" in expected:
                fix += f" (quote text that reads as another kind: {path}='...')"
            return [(f"{path} is {_shown(value)}, not {wanted}", fix)]
        if kind == "list" and setting.item_kinds:
            wanted = " or ".join(_DESCRIBED.get(k, k) for k in sorted(setting.item_kinds))
            return [
                (f"{path}[{i}] is {_shown(item)}, not {wanted}", f"list {wanted} items in {path}")
                for i, item in enumerate(value)
                if item is not None and kind_of(item) not in setting.item_kinds
            ]
        if kind != "mapping" or (not setting.children and path):
            return []
        open_below = open_below or path in OPEN_MAPPINGS
        found = []
        for key, child in value.items():
            name = f"{path}.{key}" if path else str(key)
            if str(key) in setting.children:
                found += self._check(setting.children[str(key)], child, name, open_below)
            elif not open_below:
                found.append((f"unknown parameter {name}", self._suggestion(setting, path, key)))
        return found

    @staticmethod
    def _suggestion(setting: _Setting, path: str, key: Any) -> str:
        known = sorted(setting.children)
        nearest = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
        prefix = f"{path}." if path else ""
        if nearest:
            return f"did you mean {prefix}{nearest[0]}? (known keys: conf/*/parameters/*.yml)"
        listed = ", ".join(known[:12]) + (", ..." if known[12:] else "")
        return f"the known keys of {path or 'the parameters'} are {listed}"
