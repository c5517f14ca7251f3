"""A trained package on disk: adapter, processor, the tiny base when there is one, and a
manifest of everything needed to use it again (front end, formulation, prompt, tolerance).

A package trained with ``training.members`` above 1 holds one adapter per member, all on
one base: the first in ``adapter/``, the others in ``adapter/member-<n>/`` (peft's layout
for named adapters). Median decoding states the median of their averaged belief.

Light on purpose (no torch import): the Kedro dataset and the CLI read manifests too.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from anchormix_kedro import __version__
from anchormix_kedro.model.front_end import QWEN2_AUDIO_FRONT_END, FrontEnd
from anchormix_kedro.vocabulary import (
    ANCHOR_TARGET,
    BALANCED_TOLERANCE_DB,
    CONVENTION_MIN_SONGS,
    check_formulation,
)

logger = logging.getLogger(__name__)

PACKAGE_MANIFEST = "anchormix.json"
ADAPTER = "adapter"
#: peft's name of a package's first adapter; an ensemble's others are named by their folders.
DEFAULT_ADAPTER = "default"
MEMBER_PREFIX = "member-"
MODEL_CARD = "README.md"
# 2: the manifest records its front end, tolerance and convention settings.
MANIFEST_VERSION = 2
RETRAIN_HINT = "retrain it with `kedro run --pipeline=training` to record them"


class PackageError(ValueError):
    """A folder that is not a usable AnchorMix model package."""


def newest_version(package: str | Path) -> Path:
    """A package folder, or the newest version in a Kedro-versioned one
    (``advisor/<timestamp>/advisor``, as the catalog saves packages): the folder to load."""
    package = Path(package)
    if (package / PACKAGE_MANIFEST).is_file():
        return package
    versions = sorted(v.parent.parent for v in package.glob(f"*/{package.name}/{PACKAGE_MANIFEST}"))
    if not versions:
        return package
    logger.info("%s is versioned: using its newest version, %s", package, versions[-1].name)
    return versions[-1] / package.name


def read_manifest(package: str | Path) -> dict:
    path = Path(package) / PACKAGE_MANIFEST
    if not path.is_file():
        raise PackageError(
            f"{package} is not an AnchorMix model package (no {PACKAGE_MANIFEST}); train one first"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PackageError(f"{path} is not valid JSON ({exc}); train the package again") from None


def manifest(
    base: str,
    model_settings: dict,
    formulation: str,
    system_prompt: str,
    front_end: FrontEnd,
    advice_conventions: dict,
    **details: Any,
) -> dict:
    """The manifest of a package: how it was made and how to use it again.

    ``advice_conventions`` (tolerance, minimum songs per genre) default to the project's
    when a library caller gives none.
    """
    conventions = package_advice_conventions(advice_conventions)
    return {
        "manifest_version": MANIFEST_VERSION,
        "anchormix_version": __version__,
        "base": base,
        "model_settings": model_settings,
        "formulation": check_formulation(formulation),
        "system_prompt": system_prompt,
        "front_end": front_end.as_dict(),
        **conventions,
        **details,
    }


def package_front_end(manifest: dict) -> FrontEnd:
    """The front end a package was trained with (older packages: the one they all used)."""
    if "front_end" in manifest:
        return FrontEnd.from_params(manifest["front_end"])
    logger.warning(
        "This package was written by AnchorMix before %s and does not record its front end; "
        "using %s (%s)",
        __version__,
        QWEN2_AUDIO_FRONT_END,
        RETRAIN_HINT,
    )
    return QWEN2_AUDIO_FRONT_END


def package_formulation(manifest: dict, where: str | Path) -> str:
    try:
        return check_formulation(manifest.get("formulation", ANCHOR_TARGET))
    except ValueError as exc:
        raise PackageError(f"{where}: {exc} in the package manifest") from None


def package_advice_conventions(manifest: dict) -> dict:
    """Tolerance and minimum songs per genre the package was trained to judge with."""
    return {
        "balanced_tolerance_db": float(
            manifest.get("balanced_tolerance_db", BALANCED_TOLERANCE_DB)
        ),
        "convention_min_songs": int(manifest.get("convention_min_songs", CONVENTION_MIN_SONGS)),
    }


def save_package(
    adapters: list[Path], processor, out_dir: Path, manifest: dict, base_dir: Path | None
) -> Path:
    """The adapters (the first with its model card; more than one: the members of an
    ensemble), processor, the tiny base when there is one, and the manifest."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    shutil.copytree(adapters[0], out_dir / ADAPTER)
    for number, adapter in enumerate(adapters[1:], start=2):
        shutil.copytree(adapter, out_dir / ADAPTER / f"{MEMBER_PREFIX}{number}")
    processor.save_pretrained(out_dir / "processor")
    if base_dir is not None:
        shutil.copytree(base_dir, out_dir / "base")
    (out_dir / PACKAGE_MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    point_adapter_at_base(out_dir)
    write_model_card(out_dir)
    return out_dir


def member_adapters(package: str | Path) -> list[Path]:
    """The adapters of an ensemble's other members (none for a package of one adapter),
    in their order."""
    found = [
        p.parent
        for p in (Path(package) / ADAPTER).glob(f"{MEMBER_PREFIX}*/adapter_config.json")
        if p.parent.name.removeprefix(MEMBER_PREFIX).isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name.removeprefix(MEMBER_PREFIX)))


def point_adapter_at_base(package: str | Path) -> str:
    """Write where the adapters' base is into their ``adapter_config.json``: the absolute
    path of the base saved in the package (the tiny base), else the pretrained base's hub id
    or path, so that ``PeftModel.from_pretrained`` and ``AutoPeftModel*`` find it. Call
    again after moving the package. Returns what was written."""
    package = Path(package)
    saved_base = package / "base"
    base = str(saved_base.resolve()) if saved_base.is_dir() else str(read_manifest(package)["base"])
    for adapter in [package / ADAPTER, *member_adapters(package)]:
        config_file = adapter / "adapter_config.json"
        config = json.loads(config_file.read_text())
        config["base_model_name_or_path"] = base
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True))
    return base


def update_manifest(package: str | Path, metrics: dict | None = None, **facts: Any) -> dict:
    """Add measured metrics (e.g. the validation direction accuracy) and facts (e.g. the
    variant's name) to the manifest, and fill the model card again. Returns the manifest."""
    manifest = read_manifest(package)
    manifest.update(facts)
    manifest["metrics"] = {**manifest.get("metrics", {}), **(metrics or {})}
    (Path(package) / PACKAGE_MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    write_model_card(package)
    return manifest


def write_model_card(package: str | Path) -> None:
    """The adapter's README: a Hugging Face model card filled from the manifest (peft writes
    an empty template there)."""
    (Path(package) / ADAPTER / MODEL_CARD).write_text(model_card(read_manifest(package)))


#: The measured metrics a model card reports (the manifest has the Trainer's others too).
CARD_METRICS = ("eval_loss", "direction_accuracy", "direction_examples", "train_loss", "epoch")


def _card_number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(manifest: dict) -> str:
    """A Hugging Face model card (metadata header and Markdown) for the package's adapter."""
    base = str(manifest.get("base", "tiny"))
    tiny = base == "tiny"
    formulation = manifest.get("formulation", ANCHOR_TARGET)
    data = manifest.get("training_data") or {}
    lora = manifest.get("lora") or {}
    quantised = bool((manifest.get("model_settings") or {}).get("load_in_4bit"))
    method = "QLoRA (4-bit NF4 base)" if quantised else "LoRA"
    metrics = {k: v for k, v in (manifest.get("metrics") or {}).items() if k in CARD_METRICS}
    header = {
        **({} if tiny else {"base_model": base}),
        "library_name": "peft",
        "license": data.get("license", "unknown"),
        **{k: data[k] for k in ("license_name", "license_link") if data.get(k)},
        "tags": ["anchormix", "qwen2-audio", "lora", *(["qlora"] if quantised else [])]
        + ["music-mixing", "gain-balancing", formulation],
        "language": ["en"],
    }
    header_lines = "\n".join(f"{k}: {json.dumps(v)}" for k, v in header.items())
    base_text = (
        "a tiny Qwen2-Audio built from a configuration and pre-trained by AnchorMix, saved "
        "beside this adapter in `../base`"
        if tiny
        else f"[{base}](https://huggingface.co/{base})"
    )
    splits = data.get("splits") or {}
    used = data.get("examples_used") or {}
    split_lines = [
        f"| {name} | {counts.get('examples', '?')} | {used.get(name, '-')} | "
        f"{counts.get('songs', '?')} |"
        for name, counts in splits.items()
    ]
    metric_lines = [f"| {k} | {_card_number(v)} |" for k, v in sorted(metrics.items())]
    load_base = "PATH_TO_PACKAGE/base" if tiny else base
    lines = [
        "---",
        header_lines,
        "---",
        "",
        f"# AnchorMix adapter: {manifest.get('variant', formulation)} ({formulation})",
        "",
        "Gain-balancing advice for music mixing: asked about a target stem, the model says "
        "whether it is too soft, balanced or too loud and by how many dB to move its fader"
        + (", relative to an anchor stem it also hears." if formulation != "target_only" else "."),
        "",
        f"- **Base model**: {base_text}",
        f"- **Method**: {method}, r {lora.get('r', '?')}, alpha {lora.get('lora_alpha', '?')}, "
        f"on `{lora.get('target_modules', 'the language model')}`",
        f"- **Input formulation**: `{formulation}`",
        f"- **Trainable parameters**: {manifest.get('trainable_parameters', '?')} of "
        f"{manifest.get('total_parameters', '?')}",
        f"- **AnchorMix**: {manifest.get('anchormix_version', '?')}",
        "",
        "## Training data",
        "",
        f"{data.get('name', 'unknown')} ({data.get('terms', 'terms unknown')}), instruction "
        f"dataset version `{manifest.get('data_id', '?')}`. No song is in two splits.",
        "",
        "| split | conversations | used | songs |",
        "|---|---|---|---|",
        *split_lines,
        "",
        "## Results (measured)",
        "",
        "| metric | value |",
        "|---|---|",
        *metric_lines,
        "",
        "On the validation split: `eval_loss` (of the adapter kept), `direction_accuracy`, the "
        "share of `direction_examples` (offsets of at least the configured dB) whose advice "
        "names the right direction. `train_loss`: the mean training loss.",
        "",
        "## Use",
        "",
        "With AnchorMix: `anchormix advise SONG --model PATH_TO_PACKAGE` (or an MLflow "
        "`models:/` URI). With peft directly:",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration",
        "",
        f'base = Qwen2AudioForConditionalGeneration.from_pretrained("{load_base}")',
        'model = PeftModel.from_pretrained(base, "PATH_TO_PACKAGE/adapter")',
        'processor = AutoProcessor.from_pretrained("PATH_TO_PACKAGE/processor")',
        "```",
        "",
        "Load a QLoRA adapter's base in 4 bits as it was trained (`BitsAndBytesConfig`). "
        "The package's `anchormix.json` holds the system prompt and front end.",
        "",
        *ensemble_lines(manifest),
        "## Licence",
        "",
        f"Trained on {data.get('name', 'unknown data')}: {data.get('terms', 'terms unknown')}; "
        "the adapter carries those terms. The base model's own licence applies as well.",
        "",
    ]
    return "\n".join(lines)


def ensemble_lines(manifest: dict) -> list[str]:
    """The model card's paragraph on an ensemble's members (none for one adapter)."""
    members = int(manifest.get("members") or 1)
    if members < 2:
        return []
    seeds = ", ".join(str(seed) for seed in manifest.get("member_seeds", []))
    return [
        f"This package is an ensemble of {members} fine-tunings of one base (seeds {seeds}): "
        f"the first adapter here, the others in `adapter/{MEMBER_PREFIX}2` and on "
        f"(`model.load_adapter(path, adapter_name=...)`). AnchorMix's median decoding states "
        "the median of their averaged belief; greedy decoding answers with the first alone. "
        "The results above are the first member's.",
        "",
    ]
