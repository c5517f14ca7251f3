"""The fine-tuned model behind ``anchormix advise --model``: loading it and combining its
per-window answers into one verdict and fader move per target."""

from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from pathlib import Path

from anchormix_kedro.errors import CliError
from anchormix_kedro.model.package import newest_version

MLFLOW_URI_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:/")


def load_model_advisor(model: str, tracking_uri: str | None, decoding: str = "median") -> object:
    """Load a fine-tuned advisor from an adapter directory or an MLflow run or model URI.

    The advisor comes from ``anchormix_kedro.model.advisor.load_advisor(path, decoding)``,
    ``decoding`` naming how its advice is decoded (``median`` or ``greedy``). The command calls
    its ``advise(anchor=, target=, anchor_audio=, target_audio=, sample_rate=, genre=)`` once
    per window, with ``(samples, channels)`` float32 clips at the song's rate, and reads
    ``advice`` (text) and, when present, ``verdict`` and ``fader_move_db`` from the mapping
    it returns.
    """
    try:
        advisor_module = importlib.import_module("anchormix_kedro.model.advisor")
    except ModuleNotFoundError as exc:
        if exc.name == "anchormix_kedro.model.advisor":
            raise CliError(
                "the model advisor is unavailable in this installation "
                "(no anchormix_kedro.model.advisor module); run without --model for the DSP baseline"
            ) from None
        raise CliError(f"the model advisor cannot be loaded: {exc}") from None
    if model.startswith(MLFLOW_URI_SCHEMES):
        path = _download_from_mlflow(model, tracking_store(model, tracking_uri))
    else:
        path = Path(model).expanduser()
        if not path.exists():
            raise CliError(
                f"{model}: no such adapter directory; give a local adapter directory or an "
                "MLflow URI (runs:/<run id>/<variant>, models:/<name>/<version>, models:/<name>@<alias>)"
            )
    try:
        from anchormix_kedro.model.verdict_decoding import DecodingSettings

        return advisor_module.load_advisor(newest_version(path), DecodingSettings(method=decoding))
    except Exception as exc:  # whatever went wrong, the user needs the path and the reason
        raise CliError(f"{model}: cannot load the model ({type(exc).__name__}: {exc})") from None


def tracking_store(model: str, tracking_uri: str | None, folder: Path | None = None) -> str:
    """Where an MLflow URI is looked up: ``--tracking-uri``, else ``MLFLOW_TRACKING_URI``,
    else the project's ``mlflow.db`` in the current folder. Without any of them MLflow would
    create an empty store here and find nothing, so the user is told what to pass."""
    if tracking_uri:
        return tracking_uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    local = (folder or Path.cwd()) / "mlflow.db"
    if local.is_file():
        return f"sqlite:///{local.resolve()}"
    raise CliError(
        f"{model}: no MLflow tracking store to look it up in; pass --tracking-uri (e.g. "
        "sqlite:////path/to/project/mlflow.db, or http://host:5000 for a server) or set "
        "MLFLOW_TRACKING_URI, or run the command in the project's folder"
    )


STORE_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def _global_store(tracking_uri: str | None):
    """MLflow resolves runs:/ (a logged model's name) and models:/ URIs through its global
    store, whatever it is passed (left unset, it would also create ./mlflow.db here): set
    it to ``tracking_uri`` for the download, then put back what was there, the environment
    variables MLflow sets included, so a later run in this process registers in its own
    store."""
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    if not tracking_uri:
        yield
        return
    saved = {name: os.environ.get(name) for name in STORE_VARIABLES}
    before = tracking_utils._tracking_uri, registry_utils._registry_uri
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = before
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _download_from_mlflow(model: str, tracking_uri: str | None) -> Path:
    """The package behind an MLflow URI, downloaded: ``models:/<name>/<version>`` or
    ``models:/<name>@<alias>`` (the registry is the tracking store's), ``runs:/<run id>/<variant>``
    (the model logged in a training run) or an artifact URI."""
    import mlflow
    import mlflow.artifacts

    from anchormix_kedro.model.mlflow_model import package_in

    try:
        with _global_store(tracking_uri):
            downloaded = mlflow.artifacts.download_artifacts(
                artifact_uri=model, tracking_uri=tracking_uri
            )
    except Exception as exc:  # MLflow raises many kinds; the message is what matters
        raise CliError(
            f"{model}: cannot download the model from MLflow at {tracking_uri} ({exc})"
        ) from None
    try:
        return package_in(downloaded)
    except ValueError as exc:
        raise CliError(f"{model}: {exc}") from None
