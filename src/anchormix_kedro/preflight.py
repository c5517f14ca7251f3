"""Checks a run makes before any node runs and before the tracking store is opened.

Two kinds: the parameters (every value the pipelines will read, checked at once, so that
a wrong stem name is reported before anything is written) and the environment a pipeline
needs (the base model on disk or in the Hugging Face cache, CUDA for QLoRA, writable data
folders, a reachable tracking server). Each problem is one line: what is wrong, and the
fix. ``kedro run`` and ``kedro preflight`` (src/anchormix_kedro/cli.py) print them and stop;
a hook runs the parameter checks for runs started from Python too.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from kedro.framework.hooks import hook_impl

from anchormix_kedro.evaluation.conditions import ConditionSettings
from anchormix_kedro.parameter_schema import ParameterSchema
from anchormix_kedro.redaction import redact, secret_parameters
from anchormix_kedro.vocabulary import STEM_NAMES, system_order

#: Pipelines that load the base model (training or generating).
MODEL_PIPELINES = frozenset({"__default__", "training", "fine_tuning", "evaluation", "inference"})


@dataclass(frozen=True)
class Problem:
    """One thing that stops a run: what is wrong and what to do about it."""

    what: str
    fix: str

    def __str__(self) -> str:
        return redact(f"{self.what}: {self.fix}")


class PreflightError(ValueError):
    """Raised with every problem found, each on its own line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def raise_for(problems: Sequence[Problem]) -> None:
    if problems:
        raise PreflightError(problems)


# --------------------------------------------------------------------------- parameters


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def pipeline_problems(chosen: Sequence[str], known: Sequence[str]) -> list[Problem]:
    """Each chosen pipeline is registered (Kedro's own answer is a KeyError, after the
    tracking store was opened)."""
    return [
        Problem(f"no pipeline {name!r}", f"the pipelines are {', '.join(sorted(known))}")
        for name in chosen
        if name not in known
    ]


def _stems(value: object, setting: str) -> list[Problem]:
    names = [value] if isinstance(value, str) else list(value or [])
    unknown = [n for n in names if n not in STEM_NAMES]
    if unknown:
        return [
            Problem(
                f"unknown stem name(s) {unknown} in {setting}",
                f"MUSDB18 stems are {', '.join(STEM_NAMES)}",
            )
        ]
    if not names:
        return [Problem(f"{setting} is empty", f"name at least one of {', '.join(STEM_NAMES)}")]
    return []


def parameter_problems(params: Mapping, schema: ParameterSchema | None = None) -> list[Problem]:
    """Every problem in the run's parameters that would stop a pipeline later: secrets
    first, then (with a ``schema``) unknown keys and values of the wrong kind, which stop
    the checks of what the values mean."""
    problems: list[Problem] = [
        Problem(
            f"{name} holds a secret, and parameters are logged to MLflow",
            "remove it from the parameters; put it in conf/local/credentials.yml under the "
            "entry that automated_eval.judge.credentials names, or in the environment "
            "variable that api_key_env names (docs/reliability.md)",
        )
        for name in secret_parameters(params)
    ]
    if schema is not None:
        mismatches = [Problem(what, fix) for what, fix in schema.problems(params)]
        if mismatches:
            return problems + mismatches
    pairs = params.get("pairs") or {}
    problems += _stems(pairs.get("anchors"), "pairs.anchors")
    problems += _stems(pairs.get("targets"), "pairs.targets")
    root = params.get("musdb_root")
    fix_root = (
        "point MUSDB_PATH or --params musdb_root= at a MUSDB18 root (train/, test/), "
        "or unset it to use the synthetic corpus"
    )
    if root and not Path(str(root)).is_dir():
        problems.append(Problem(f"musdb_root {root} is not a folder", fix_root))
    elif root and not any((Path(str(root)) / split).is_dir() for split in ("train", "test")):
        problems.append(
            Problem(f"musdb_root {root} holds no songs: it has no train/ or test/ folder", fix_root)
        )
    tolerance = (params.get("perturbation") or {}).get("balanced_tolerance_db")
    if tolerance is not None and (
        isinstance(tolerance, bool) or not (isinstance(tolerance, int | float) and tolerance >= 0)
    ):
        problems.append(
            Problem(
                f"perturbation.balanced_tolerance_db is {tolerance!r}",
                "give a number of dB >= 0 (conf/base/globals.yml: balanced_tolerance_db)",
            )
        )
    offsets = ((params.get("perturbation") or {}).get("offsets") or {}).get("values")
    if offsets is not None and not (
        isinstance(offsets, list) and all(_is_number(v) for v in offsets)
    ):
        problems.append(
            Problem(
                f"perturbation.offsets.values holds non-numbers: {offsets!r}",
                "list gain offsets in dB, e.g. [0, -3, 3]",
            )
        )
    systems = params.get("systems")
    if systems is not None:
        try:
            system_order(systems)
        except ValueError as exc:
            problems.append(Problem(str(exc), "fix conf/base/parameters/systems.yml"))
    problems += _listening_problems(params)
    problems += _condition_problems(params)
    return problems


def _listening_problems(params: Mapping) -> list[Problem]:
    """The truth is measured on the whole excerpt: the model must hear all of it."""
    seconds = ((params.get("ingestion") or {}).get("excerpt") or {}).get("seconds")
    model = params.get("model") or {}
    if not isinstance(seconds, int | float):
        return []
    if model.get("source", "tiny") == "tiny":
        window = (model.get("tiny") or {}).get("audio_seconds")
        setting = "model.tiny.audio_seconds"
    else:
        window = (model.get("front_end") or {}).get("max_clip_seconds")
        setting = "the front end's max_clip_seconds"
    if isinstance(window, int | float) and seconds > window:
        return [
            Problem(
                f"ingestion.excerpt.seconds is {seconds:g} s but the model hears {window:g} s "
                f"({setting}): the truth would be measured on audio the model never hears",
                f"set globals excerpt_seconds to at most {window:g}, or {setting} to at least "
                f"{seconds:g}",
            )
        ]
    return []


def _condition_problems(params: Mapping) -> list[Problem]:
    conditions = (params.get("inference") or {}).get("conditions")
    if conditions is None:
        return []
    try:
        ConditionSettings.from_params(conditions)
    except (ValueError, TypeError) as exc:
        return [Problem(str(exc), "fix conf/base/parameters/inference.yml (docs/evaluation.md)")]
    return []


# --------------------------------------------------------------------------- environment


def _in_hf_cache(repo_id: str, cache_dir: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    return isinstance(found, str)


def hf_cache_path(cache_dir: str | None) -> str:
    if cache_dir:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _is_hub_id(name: str) -> bool:
    """``owner/name`` as the hub spells it; a path (``/scratch/...``, ``./x``) is not one."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def model_problems(model: Mapping) -> list[Problem]:
    """The base model: on disk, or in the Hugging Face cache when the hub is offline."""
    if model.get("source") != "pretrained":
        return []
    name = str(model.get("name_or_path") or "")
    if not name:
        return [Problem("model.name_or_path is empty", "give a hub id or a local folder")]
    if Path(name).is_dir():
        if not (Path(name) / "config.json").is_file():
            return [
                Problem(f"{name} has no config.json", "save the model there with save_pretrained")
            ]
        return []
    if not _is_hub_id(name):
        return [
            Problem(
                f"model.name_or_path {name} is not a folder",
                "point it at the folder the model was saved to (with its config.json), or "
                "give a hub id such as Qwen/Qwen2-Audio-7B-Instruct",
            )
        ]
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    cache_dir = model.get("cache_dir")
    if _in_hf_cache(name, cache_dir) or not offline:
        return []
    cache = hf_cache_path(cache_dir)
    return [
        Problem(
            f"base model {name} is neither a local folder nor in the Hugging Face cache {cache} "
            "(the hub is offline)",
            f"on a login node run: hf download {name} --cache-dir {cache}",
        )
    ]


def qlora_problems(model: Mapping) -> list[Problem]:
    """4-bit QLoRA on a GPU (``model.require_cuda``, set by conf/pace) needs CUDA and a CUDA
    build of bitsandbytes. Without ``require_cuda`` it runs on the CPU through bitsandbytes'
    CPU kernels (slow, but every code path is the GPU's)."""
    if not model.get("load_in_4bit") or not model.get("require_cuda", False):
        return []
    import torch

    if not torch.cuda.is_available():
        return [
            Problem(
                "QLoRA (model.load_in_4bit) is asked for but no CUDA device is visible",
                "run on a GPU node (sbatch slurm/train_pace.sbatch), or set "
                "--params model.require_cuda=false to run it on the CPU",
            )
        ]
    if importlib.util.find_spec("bitsandbytes") is None:
        return [Problem("bitsandbytes is not installed", "make .venv/bin/.installed")]
    try:
        from bitsandbytes.functional import quantize_4bit

        quantize_4bit(torch.zeros(64, device="cuda", dtype=torch.float16))  # its CUDA kernel
    except Exception as exc:  # noqa: BLE001  (any failure means no working build)
        return [
            Problem(
                f"bitsandbytes has no working CUDA build ({type(exc).__name__}: {exc})",
                "reinstall it on a GPU node: .venv/bin/pip install --force-reinstall bitsandbytes",
            )
        ]
    return []


def writable_problems(folders: Mapping[str, str | Path]) -> list[Problem]:
    """Each folder exists and is writable, or can be created."""
    problems = []
    for setting, folder in folders.items():
        path = Path(folder)
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not os.access(probe, os.W_OK):
            problems.append(
                Problem(f"{setting} {path} is not writable", "point it at scratch storage you own")
            )
    return problems


def tracking_problems(uri: str | None, timeout_s: float = 5.0) -> list[Problem]:
    """An HTTP tracking server answers its health check; a SQLite store's folder is writable."""
    if not uri:
        return []
    parsed = urlparse(str(uri))
    if parsed.scheme in ("http", "https"):
        import requests

        try:
            requests.get(f"{uri.rstrip('/')}/health", timeout=timeout_s).raise_for_status()
        except requests.RequestException as exc:
            return [
                Problem(
                    f"the MLflow tracking server {redact(str(uri))} does not answer "
                    f"({type(exc).__name__})",
                    "start it (docs/mlflow.md, 'A tracking server on the cluster') or set "
                    "ANCHORMIX_MLFLOW_URI",
                )
            ]
        return []
    if parsed.scheme == "sqlite":
        database = Path(uri.split("sqlite:///", 1)[-1])
        return writable_problems({"the MLflow SQLite store": database.parent})
    return []


def environment_problems(
    params: Mapping, pipelines: Sequence[str], data_root: str | Path, tracking_uri: str | None
) -> list[Problem]:
    """What the chosen pipelines need from this machine."""
    problems = writable_problems({"data_root": data_root})
    if MODEL_PIPELINES & set(pipelines or ["__default__"]):
        model = params.get("model") or {}
        problems += model_problems(model)
        problems += qlora_problems(model)
        work_root = (params.get("training") or {}).get("work_root")
        if work_root:
            problems += writable_problems({"training.work_root": work_root})
    problems += tracking_problems(tracking_uri)
    return problems


class ParameterChecks:
    """Checks the parameters of runs started from Python (a notebook, a script, the tests)
    too, before kedro-mlflow opens its store (``tryfirst``)."""

    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        schema = ParameterSchema.from_conf(context.config_loader.conf_source)
        raise_for(parameter_problems(context.params, schema))
