"""Shared fixtures: offline settings, tiny multitrack trees, the real MUSDB18 clips."""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile
from kedro.framework.startup import bootstrap_project

for _name, _value in {
    "DO_NOT_TRACK": "true",
    "KEDRO_DISABLE_TELEMETRY": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}.items():
    os.environ[_name] = _value

PROJECT_ROOT = Path(__file__).resolve().parents[1]


#: Debian's chromium, as the browser tests launch it (Playwright never downloads a browser).
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def playwright_and_chromium():
    """``(sync_playwright(), chromium's path)`` for Playwright driving Debian's chromium, or
    a skip that says what is missing."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Python Playwright is not installed (pip install playwright)"
    )
    executable = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if not executable:
        pytest.skip(
            "no chromium: apt-get install -y --no-install-recommends chromium chromium-driver"
        )
    return sync_api.sync_playwright(), str(executable)


SHARED_MUSDB = PROJECT_ROOT.parent / "shared" / "data" / "musdb18-7s"
RATE = 44100

#: A Qwen2-Audio small enough for unit tests: 2 s clips, one layer each side.
TINY_ARCHITECTURE = {
    "vocab_size": 300,
    "audio_seconds": 2,
    "audio": {
        "d_model": 32,
        "encoder_layers": 1,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
    },
    "text": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
    },
}


def tiny_training(steps: int = 2, save_steps: int = 1) -> dict:
    """Run parameters that train the tiny test model for a few steps on 16 examples."""
    return {
        "model": {"tiny": TINY_ARCHITECTURE},
        "training": {
            "max_train_examples": 16,
            "max_eval_examples": 4,
            "pretrain": {
                "stage": {"args": {"max_steps": 2, "save_strategy": "no", "logging_steps": 1}}
            },
            "finetune": {
                "args": {
                    "max_steps": steps,
                    "eval_steps": save_steps,
                    "save_steps": save_steps,
                    "logging_steps": 1,
                }
            },
            "direction_eval": {"max_examples": 4},
        },
    }


@pytest.fixture(scope="session")
def shared_musdb() -> Path:
    """The real MUSDB18 7-second clips; tests using it skip where they are absent."""
    if not (SHARED_MUSDB / "train").is_dir():
        pytest.skip(f"real MUSDB18 clips not found at {SHARED_MUSDB}")
    return SHARED_MUSDB


def tone(
    freq: float, seconds: float, amplitude: float, rate: int = RATE, channels: int = 2
) -> np.ndarray:
    """A sine of peak ``amplitude`` as ``(samples, channels)`` float32."""
    t = np.arange(int(round(seconds * rate))) / rate
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(wave[:, None], channels, axis=1)


def tone_stems(seconds: float = 3.0, vocals_amplitude: float = 0.1) -> dict[str, np.ndarray]:
    """Four stems of distinct tones; set ``vocals_amplitude=0`` for an instrumental."""
    return {
        "drums": tone(110.0, seconds, 0.2),
        "bass": tone(55.0, seconds, 0.3),
        "other": tone(440.0, seconds, 0.05),
        "vocals": tone(330.0, seconds, vocals_amplitude),
    }


def write_hq_song(
    root: Path, folder: str, name: str, stems: dict[str, np.ndarray], rate: int = RATE
) -> Path:
    """Write one song in the MUSDB18-HQ layout (wav per stem plus the mixture)."""
    song = root / folder / name
    song.mkdir(parents=True, exist_ok=True)
    for stem, audio in stems.items():
        soundfile.write(str(song / f"{stem}.wav"), audio, rate, subtype="FLOAT")
    shortest = min(a.shape[0] for a in stems.values())
    mixture = sum(np.broadcast_to(a[:shortest], (shortest, 2)) for a in stems.values())
    soundfile.write(str(song / "mixture.wav"), mixture, rate, subtype="FLOAT")
    return song


def write_stem_mp4(path: Path, stems: dict[str, np.ndarray], rate: int = RATE) -> Path:
    """Write an NI-style stem MP4 (AAC streams: mixture, drums, bass, other, vocals) with PyAV."""
    import av

    order = ["drums", "bass", "other", "vocals"]
    tracks = [sum(stems[s] for s in order), *(stems[s] for s in order)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        streams = []
        for _ in tracks:
            stream = container.add_stream("aac", rate=rate)
            stream.layout = "stereo"
            stream.time_base = Fraction(1, rate)
            streams.append(stream)
        block = 1024
        for start in range(0, tracks[0].shape[0], block):
            for stream, audio in zip(streams, tracks, strict=True):
                chunk = np.ascontiguousarray(audio[start : start + block].T, dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = rate
                frame.pts = start
                for packet in stream.encode(frame):
                    container.mux(packet)
        for stream in streams:
            for packet in stream.encode(None):
                container.mux(packet)
    return path


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A copy of the project's configuration in a temporary folder, made the working directory."""
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(PROJECT_ROOT / "conf" / "base", tmp_path / "conf" / "base")
    # MLflow caches one store per tracking URI in a process: give each test project its own.
    mlflow_yml = tmp_path / "conf" / "base" / "mlflow.yml"
    mlflow_yml.write_text(
        mlflow_yml.read_text().replace("sqlite:///mlflow.db", f"sqlite:///{tmp_path}/mlflow.db")
    )
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "src").mkdir()  # the package itself is installed
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    bootstrap_project(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- databases

POSTGRES_SCRIPT = PROJECT_ROOT / "tools" / "postgres_test_server.sh"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a PostgreSQL server on 127.0.0.1 (``ANCHORMIX_TEST_POSTGRES_URL``, or one
    started from Debian's package by tools/postgres_test_server.sh). Skipped where none
    can be had, except in CI, where that is a failure."""
    import subprocess
    import tempfile

    url = os.environ.get("ANCHORMIX_TEST_POSTGRES_URL")
    # Directly under /tmp: the postgres user must reach it (pytest's folders are root's).
    folder = Path(tempfile.mkdtemp(prefix="anchormix-pg-"))
    if not url:
        port = str(55500 + os.getpid() % 400)
        started = subprocess.run(["bash", str(POSTGRES_SCRIPT), "start", str(folder), port],
                                 capture_output=True, text=True, timeout=180)  # fmt: skip
        if started.returncode != 0:
            message = f"no PostgreSQL server: {started.stderr.strip() or started.stdout.strip()}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        url = started.stdout.strip().splitlines()[-1]
    yield url
    if not os.environ.get("ANCHORMIX_TEST_POSTGRES_URL"):
        subprocess.run(["bash", str(POSTGRES_SCRIPT), "stop", str(folder)], timeout=120)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty study database: a SQLite file, and a new database on the PostgreSQL
    server (the same tests run on both)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'study.db'}"
        return
    import uuid

    import sqlalchemy as sa

    server = request.getfixturevalue("postgres_server")
    name = f"study_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    yield str(sa.engine.make_url(server).set(database=name))
