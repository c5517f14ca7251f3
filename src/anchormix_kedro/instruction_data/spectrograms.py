"""What the model hears, as a picture: mel spectrograms of one example's anchor, its target
as mixed, and the target as perturbed (librosa), for the dataset card and the docs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are saved by the catalog, never shown
import librosa
import librosa.display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from anchormix_kedro.instruction_data.audio import apply_gain_db
from anchormix_kedro.vocabulary import TOO_LOUD


def pick_example(examples: pd.DataFrame, min_abs_gain_db: float = 6.0) -> pd.Series:
    """A training example whose target is clearly too loud (the largest offset at least
    ``min_abs_gain_db``; the first by id among equals), so the picture shows the change."""
    train = examples[(examples["split"] == "train") & (examples["label"] == TOO_LOUD)]
    clear = train[train["gain_db"].abs() >= min_abs_gain_db]
    if clear.empty:
        clear = train if not train.empty else examples
    if clear.empty:
        raise ValueError("no examples to draw: the instruction dataset is empty")
    return clear.sort_values(["gain_db", "example_id"], ascending=[False, True]).iloc[0]


def plot_mel_spectrograms(
    anchor: np.ndarray,
    target: np.ndarray,
    gain_db: float,
    sample_rate: int,
    names: tuple[str, str],
    n_mels: int = 128,
) -> plt.Figure:
    """Three panels on one dB scale: the anchor, the target as mixed, the target at ``gain_db``."""
    clips = {
        f"anchor: {names[0]}": anchor,
        f"target as mixed: {names[1]}": target,
        f"target {gain_db:+.0f} dB (what the model must flag)": apply_gain_db(target, gain_db),
    }
    mels = {
        title: librosa.feature.melspectrogram(y=clip, sr=sample_rate, n_mels=n_mels)
        for title, clip in clips.items()
    }
    reference = max(float(m.max()) for m in mels.values()) or 1.0
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8), sharey=True)
    image = None
    for ax, (title, mel) in zip(axes, mels.items(), strict=True):
        image = librosa.display.specshow(
            librosa.power_to_db(mel, ref=reference, top_db=80.0),
            sr=sample_rate,
            x_axis="time",
            y_axis="mel",
            vmin=-80.0,
            vmax=0.0,
            ax=ax,
        )
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=axes, format="%+2.0f dB", shrink=0.85)
    return fig


def example_spectrograms(examples: pd.DataFrame, audio: dict[str, np.ndarray], sample_rate: int):
    """The figure for :func:`pick_example`'s example, from its excerpt's model-rate audio."""
    example = pick_example(examples)
    fig = plot_mel_spectrograms(
        audio[example["anchor"]],
        audio[example["target"]],
        float(example["gain_db"]),
        sample_rate,
        (example["anchor"], example["target"]),
    )
    fig.suptitle(
        f"{example['song']} ({example['genre']}): what the model hears", fontsize=11, y=0.99
    )
    fig.subplots_adjust(top=0.82)
    return fig
