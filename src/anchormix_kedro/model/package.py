"""A trained package on disk: adapter, processor, the tiny base when there is one, and a
manifest of everything needed to use it again (front end, formulation, prompt, tolerance).

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
# 2: the manifest records its front end, tolerance and convention settings.
MANIFEST_VERSION = 2
RETRAIN_HINT = "retrain it with `kedro run --pipeline=training` to record them"


class PackageError(ValueError):
    """A folder that is not a usable AnchorMix model package."""


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


def save_package(model, processor, out_dir: Path, manifest: dict, base_dir: Path | None) -> Path:
    """Adapter, processor, the tiny base when there is one, and the manifest."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir / "adapter")
    processor.save_pretrained(out_dir / "processor")
    if base_dir is not None:
        shutil.copytree(base_dir, out_dir / "base")
    (out_dir / PACKAGE_MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    return out_dir
