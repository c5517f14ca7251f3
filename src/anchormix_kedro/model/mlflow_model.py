"""A trained package as an MLflow model: a pyfunc around the package, with a signature and a
small fixed input example, registrable in MLflow's model registry.

The pyfunc answers one question per row: an anchor clip and a target clip (mono samples at
``sample_rate``), the stems' names and, optionally, the song's genre; it returns the
advice, its verdict and the fader move. Logging never loads the model: the signature is
written out and the input example is not run (a 7B base would be loaded just for that).
"""

from __future__ import annotations

import hashlib
import logging
import types
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import Array, ColSpec, Schema

from anchormix_kedro import __version__
from anchormix_kedro.model.package import PACKAGE_MANIFEST, read_manifest
from anchormix_kedro.model.tracking import (
    TAG_BASE_MODEL,
    TAG_DATASET_VERSION,
    TAG_FORMULATION,
    TAG_VARIANT,
    process_rank,
)

logger = logging.getLogger(__name__)

PACKAGE_ARTIFACT = "package"  # the pyfunc's artifact: the package folder
TAG_PACKAGE_DIGEST = "anchormix.package_digest"
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("string", "anchor"),
            ColSpec("string", "target"),
            ColSpec(Array("double"), "anchor_audio"),
            ColSpec(Array("double"), "target_audio"),
            ColSpec("long", "sample_rate"),
            ColSpec("string", "genre", required=False),
        ]
    ),
    outputs=Schema(
        [
            ColSpec("string", "advice"),
            ColSpec("string", "verdict", required=False),
            ColSpec("double", "fader_move_db", required=False),
        ]
    ),
)
OUTPUT_COLUMNS = ["advice", "verdict", "fader_move_db"]
# What the pyfunc needs beyond AnchorMix itself (installed from its source).
REQUIREMENTS = ("torch", "transformers", "peft", "accelerate", "soxr", "numpy", "pandas")


def input_example(seconds: float = 0.25, rate: int = 16000) -> pd.DataFrame:
    """One question, always the same: a drum-like and a vocal-like tone, a quarter second."""
    t = np.arange(int(seconds * rate)) / rate
    return pd.DataFrame(
        {
            "anchor": ["drums"],
            "target": ["vocals"],
            "anchor_audio": [np.round(0.2 * np.sin(2 * np.pi * 110 * t), 4).tolist()],
            "target_audio": [np.round(0.1 * np.sin(2 * np.pi * 330 * t), 4).tolist()],
            "sample_rate": [rate],
            "genre": ["Pop/Rock"],
        }
    )


class PackageModel(mlflow.pyfunc.PythonModel):
    """A package behind MLflow's pyfunc interface (``mlflow.pyfunc.load_model``)."""

    def load_context(self, context) -> None:
        from anchormix_kedro.model.advisor import load_advisor

        self.advisor = load_advisor(context.artifacts[PACKAGE_ARTIFACT])

    def predict(self, context, model_input, params=None):
        answers = []
        for row in pd.DataFrame(model_input).to_dict("records"):
            genre = row.get("genre")
            answer = self.advisor.advise(
                anchor=str(row["anchor"]),
                target=str(row["target"]),
                anchor_audio=np.asarray(row["anchor_audio"], dtype=np.float32),
                target_audio=np.asarray(row["target_audio"], dtype=np.float32),
                sample_rate=int(row["sample_rate"]),
                genre=genre if isinstance(genre, str) and genre else None,
            )
            answers.append({k: answer.get(k) for k in OUTPUT_COLUMNS})
        return pd.DataFrame(answers, columns=OUTPUT_COLUMNS)


def _save_pyfunc(path, mlflow_model=None, validate_serving_input=True, **kwargs):
    # Model.log reads `validate_serving_input` (False: do not load the model to run the
    # input example) and hands its other arguments to the flavor's save_model.
    return mlflow.pyfunc.save_model(path, mlflow_model=mlflow_model, **kwargs)


_PYFUNC = types.SimpleNamespace(__name__="mlflow.pyfunc", save_model=_save_pyfunc)


def requirements() -> list[str]:
    """The installed versions of what the pyfunc imports (given, not inferred: inferring
    them loads the model)."""
    found = []
    for name in REQUIREMENTS:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(name)
    return [f"mlflow=={mlflow.__version__}", *found]


def package_digest(package: str | Path) -> str:
    """A hash of every file in the package: the same package is logged once per run."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(package).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(package)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def logged_models(run_id: str, name: str) -> list:
    """The models named ``name`` logged in a run, newest first."""
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    found = client.search_logged_models(
        [run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{name}'",
    )
    return sorted(found, key=lambda m: m.creation_timestamp, reverse=True)


def log_package(package: str | Path, run_id: str, name: str) -> str:
    """Log the package into the run as the MLflow model ``name`` and return its model id
    (``models:/<id>``). A package already logged there under that name is not logged again."""
    package = Path(package)
    manifest = read_manifest(package)
    digest = package_digest(package)
    for model in logged_models(run_id, name):
        if model.tags.get(TAG_PACKAGE_DIGEST) == digest:
            return model.model_id
    settings = manifest.get("model_settings") or {}
    tags = {
        TAG_VARIANT: str(manifest.get("variant", name)),
        TAG_FORMULATION: str(manifest.get("formulation")),
        TAG_BASE_MODEL: "tiny" if settings.get("source") == "tiny" else str(manifest.get("base")),
        TAG_DATASET_VERSION: str(manifest.get("data_id")),
        TAG_PACKAGE_DIGEST: digest,
    }
    info = Model.log(
        artifact_path=None,
        name=name,
        flavor=_PYFUNC,
        run_id=run_id,
        python_model=PackageModel(),
        artifacts={PACKAGE_ARTIFACT: str(package)},
        signature=SIGNATURE,
        input_example=input_example(),
        pip_requirements=requirements(),
        metadata={"anchormix_version": __version__, "formulation": manifest.get("formulation")},
        tags=tags,
        validate_serving_input=False,
    )
    logger.info("Logged the %s package as MLflow model %s (run %s)", name, info.model_id, run_id)
    return info.model_id


def register_package(package: str | Path, name: str, registry: dict) -> dict:
    """Register the package's logged model ``name`` (in the run its manifest names) as a
    new version of ``registry["model_name"]`` (``{variant}`` is replaced by ``name``) when
    ``registry["register"]`` is true, and give it the alias ``registry["alias"]`` when no
    version holds that alias yet. Returns what was done, for the catalog to record."""
    model_name = str(registry.get("model_name") or "anchormix-{variant}").format(variant=name)
    if not registry.get("register", False):
        return {"registered": False, "reason": "registry.register is false"}
    if process_rank() != 0:
        return {"registered": False, "reason": "not the first process"}
    run_id = read_manifest(package).get("mlflow_run_id")
    found = logged_models(run_id, name) if run_id and mlflow.active_run() else []
    if not found:
        # Nothing to register without tracking (e.g. a node called outside `kedro run`).
        reason = f"no MLflow model {name!r} was logged for this package (run {run_id})"
        logger.warning("Not registering %s: %s", package, reason)
        return {"registered": False, "reason": reason}
    version = mlflow.register_model(f"models:/{found[0].model_id}", model_name)
    uri = f"models:/{version.name}/{version.version}"
    record = {
        "registered": True,
        "name": version.name,
        "version": str(version.version),
        "uri": uri,
        "model_id": found[0].model_id,
        "run_id": run_id,
    }
    alias = registry.get("alias")
    if alias:
        client = mlflow.MlflowClient()
        holder = client.get_registered_model(version.name).aliases.get(alias)
        if holder is None:
            client.set_registered_model_alias(version.name, alias, version.version)
            holder = str(version.version)
        record["alias"] = {
            "name": alias,
            "version": str(holder),
            "uri": f"models:/{version.name}@{alias}",
        }
    logger.info(
        "Registered %s as %s (alias %s: version %s)",
        name,
        uri,
        alias,
        record.get("alias", {}).get("version"),
    )
    return record


def package_in(folder: str | Path) -> Path:
    """The package inside a downloaded MLflow model (its pyfunc artifact), or ``folder``
    itself when it holds a package or is no MLflow model."""
    folder = Path(folder)
    mlmodel = folder / "MLmodel"
    if (folder / PACKAGE_MANIFEST).is_file() or not mlmodel.is_file():
        return folder
    flavor = (yaml.safe_load(mlmodel.read_text()).get("flavors") or {}).get("python_function", {})
    artifact = (flavor.get("artifacts") or {}).get(PACKAGE_ARTIFACT)
    if not artifact:
        raise ValueError(f"{folder} is an MLflow model but not an AnchorMix package")
    return folder / artifact["path"]
