"""anchormix analyse level-measures: how far each anchor-level measure sits from BS.1770 loudness."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyloudnorm
import pytest
from scipy.signal import butter, sosfilt
from transformers import WhisperFeatureExtractor

from anchormix_kedro.analyses import level_measures as measures
from anchormix_kedro.analyses.project import open_run
from anchormix_kedro.commands import main
from anchormix_kedro.model.features import raw_log_mel

RATE = 16000


def write_run(project, excerpts: int = 6) -> pd.DataFrame:
    """A run's loudness table (saved through the project's catalog) and feature cache: a
    dull "drums" stem whose brightness varies from excerpt to excerpt, and a white
    "vocals" stem. Returns the loudness table."""
    root = project / "data"
    rng = np.random.default_rng(2)
    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=RATE, chunk_length=5)
    meter = pyloudnorm.Meter(RATE)
    features = root / "04_feature" / "log_mel_features"
    features.mkdir(parents=True)
    rows = []
    for i in range(excerpts):
        cutoff = 150.0 * 2**i  # 150 Hz to 4.8 kHz
        stems = {
            "drums": sosfilt(
                butter(4, cutoff, fs=RATE, output="sos"), rng.normal(0, 0.2, 5 * RATE)
            ),
            "vocals": rng.normal(0, 0.03, 5 * RATE),
        }
        excerpt_id = f"song_{i}"
        np.savez(
            features / f"{excerpt_id}.npz",
            meta=np.array(json.dumps({"valid_frames": {s: 500 for s in stems}})),
            **{
                f"audio/{s}": raw_log_mel(c.astype(np.float32), extractor) for s, c in stems.items()
            },
        )
        rows += [
            {"excerpt_id": excerpt_id, "stem": s, "lufs": meter.integrated_loudness(c)}
            for s, c in stems.items()
        ]
    loudness = pd.DataFrame(rows)
    open_run(project).catalog.save("loudness", loudness)
    return loudness


def test_loudness_follows_the_relation_where_mel_power_does_not(project, capsys):
    write_run(project)
    capsys.readouterr()
    assert main(["analyse", "level-measures"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("6 excerpts.")
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in table.splitlines()[4:]}
    relation = {m: float(cells[-1].split()[0]) for m, cells in rows.items()}
    # The measure weighs the bands as BS.1770 does, so a darker or brighter anchor reads
    # true; the mean mel power overweighs the narrow low bands by several dB.
    assert relation["loudness"] < 0.3
    assert relation["mel_power"] > 2.0


def test_missing_features_name_the_node_to_run(project, capsys):
    loudness = write_run(project, excerpts=2)
    (project / "data" / "04_feature" / "log_mel_features" / "song_0.npz").unlink()
    features = open_run(project).load("log_mel_features")
    with pytest.raises(FileNotFoundError, match="compute_log_mel_features"):
        measures.readings(features, loudness)
    capsys.readouterr()
    assert main(["analyse", "level-measures"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "compute_log_mel_features" in error


def test_without_a_run_it_says_what_to_run_first(project, capsys):
    assert main(["analyse", "level-measures", "--project", str(project)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "kedro run --pipeline=ingestion" in error
