"""A small built study on disk and a study server over it, for the study wing's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from anchormix_kedro.study import kit
from anchormix_kedro.study.material import build_study, load_study, save_study
from anchormix_kedro.study.storage import StudyStore
from conftest import PROJECT_ROOT

RATE = 44100
SYSTEMS = ("advisor", "dsp_baseline", "generic_base")
ADVICE = {
    "advisor": "The vocal is too loud: pull the vocal fader down by about 4 dB.",
    "dsp_baseline": "The vocal sits right against the drums; no gain change is needed.",
    "generic_base": "Interesting song, nice groove.",
}


def study_params() -> dict:
    """The ``study`` parameters as shipped (texts, choices)."""
    conf = PROJECT_ROOT / "conf" / "base" / "parameters" / "study.yml"
    return yaml.safe_load(conf.read_text())["study"]


def example_rows(n_songs: int = 3, genres=("Pop", "Rock", "Jazz")) -> pd.DataFrame:
    rows = []
    for k in range(n_songs):
        genre = genres[k % len(genres)]
        for gain, label in ((4.0, "too_loud"), (0.0, "balanced")):
            example_id = f"song{k}|drums>vocals|{gain:+.1f}"
            for system in SYSTEMS:
                rows.append({"example_id": example_id, "system": system, "excerpt_id": f"song{k}",
                             "genre": genre, "anchor": "drums", "target": "vocals",
                             "label": label, "gain_db": gain, "advice": ADVICE[system]})  # fmt: skip
    return pd.DataFrame(rows)


def stems(seconds: float = 1.0) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * RATE)) / RATE
    tones = {"drums": (110.0, 0.5), "bass": (55.0, 0.3), "other": (440.0, 0.1),
             "vocals": (330.0, 0.25)}  # fmt: skip
    return {
        name: np.stack([a * np.sin(2 * np.pi * f * t)] * 2, axis=1).astype(np.float32)
        for name, (f, a) in tones.items()
    }


def load_excerpt(excerpt_id: str) -> dict:
    return {"meta": {"excerpt_id": excerpt_id, "sample_rate": RATE}, "audio": stems()}


def make_study(root: Path, version: str = "2026-01-01T00.00.00.000Z", n_examples: int = 4,
               source: str = "musdb", offline_page: bool = False, catch: int = 0):  # fmt: skip
    """A built study saved under ``root`` and loaded back as the server loads it, with
    ``catch`` catch scenarios."""
    from anchormix_kedro.study.kit.catch import catch_scenarios

    key = kit.sample_scenarios(example_rows(), n_examples, "test-study", seed=1)
    if catch:
        key = pd.concat([key, catch_scenarios(key, catch, seed=1)], ignore_index=True)
    tracks = pd.DataFrame({"excerpt_id": [f"song{k}" for k in range(3)], "source": source})
    built = build_study(key, load_excerpt, tracks, kit.PageSettings(clip_seconds=1.0), version,
                        offline_page=offline_page)  # fmt: skip
    save_study(built, root)
    return load_study(root, version)


def make_server(tmp_path: Path, n_raters: int = 2, database_url: str | None = None):
    """``(client, store, study, tokens)``: a TestClient over a fresh database (a SQLite
    file unless ``database_url`` names another)."""
    from fastapi.testclient import TestClient

    from anchormix_kedro.study.server import create_app

    study = make_study(tmp_path / "studies")
    store = StudyStore.open(database_url or f"sqlite:///{tmp_path / 'study.db'}")
    app = create_app(store, study, study_params())
    tokens = [token for _label, token in store.invite(study.version, n_raters)]
    return TestClient(app), store, study, tokens
