"""The rating study's audio: each scenario's clips, encoded as ``data:`` URIs for the page.

A scenario has three clips (the anchor, the target at its perturbed gain, and the mix of
all stems with the target perturbed) that share one scale factor, so their relative
levels are those of the scenario.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

AUDIO_FORMATS = {"ogg": ("OGG", "VORBIS", "audio/ogg"), "wav": ("WAV", "PCM_16", "audio/wav")}


def encode_clip(samples: np.ndarray, sample_rate: int, audio_format: str = "ogg") -> str:
    """A mono float clip as a ``data:`` URI: OGG Vorbis (small) or 16-bit WAV (any browser)."""
    import soundfile

    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"unknown audio_format {audio_format!r}; use one of {list(AUDIO_FORMATS)}")
    container, subtype, mime = AUDIO_FORMATS[audio_format]
    buffer = io.BytesIO()
    soundfile.write(
        buffer, np.asarray(samples, dtype=np.float32), int(sample_rate), format=container,
        subtype=subtype,
    )  # fmt: skip
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def scenario_audio(
    stems: Mapping[str, np.ndarray],
    anchor: str,
    target: str,
    gain_db: float,
    sample_rate: int,
    max_seconds: float | None = 10.0,
    peak: float = 0.89,
    fade_seconds: float = 0.01,
) -> dict[str, np.ndarray]:
    """``{"anchor", "target", "mix"}``: the target at ``gain_db``, all with one scale factor.

    The mix sums every stem with the target perturbed. One factor for the three keeps their
    levels comparable; it only lowers them, where a clip would peak above ``peak``. Clips
    are cut to ``max_seconds`` and faded in and out over ``fade_seconds`` (no clicks).
    """
    for stem in (anchor, target):
        if stem not in stems:
            raise ValueError(f"the excerpt has no {stem!r} stem; it has {sorted(stems)}")
    length = min(len(clip) for clip in stems.values())
    if max_seconds:
        length = min(length, int(round(max_seconds * sample_rate)))
    gain = 10.0 ** (float(gain_db) / 20.0)
    clips = {name: np.asarray(stems[name][:length], dtype=np.float64) for name in stems}
    target_clip = clips[target] * gain
    mix = sum(clip for name, clip in clips.items() if name != target) + target_clip
    audio = {"anchor": clips[anchor], "target": target_clip, "mix": mix}
    loudest = max(float(np.max(np.abs(clip))) if clip.size else 0.0 for clip in audio.values())
    scale = min(1.0, peak / loudest) if loudest > 0 else 1.0
    fade = min(int(fade_seconds * sample_rate), length // 2)
    ramp = np.ones(length)
    if fade > 0:
        ramp[:fade] = np.linspace(0.0, 1.0, fade)
        ramp[-fade:] = np.linspace(1.0, 0.0, fade)
    return {name: (clip * scale * ramp).astype(np.float32) for name, clip in audio.items()}


def render_clips(
    key: pd.DataFrame,
    load_excerpt: Callable[[str], Mapping],
    audio_format: str = "ogg",
    max_seconds: float | None = 10.0,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Audio for every scenario of the key, each example's clips made once.

    ``load_excerpt(excerpt_id)`` returns an excerpt record (``{"meta": {...}, "audio":
    {stem: array}}``, ``meta["sample_rate"]`` its rate). Returns ``(clips, by_scenario)``:
    ``clips`` maps opaque clip ids to data URIs, ``by_scenario`` maps each scenario id to
    ``{"anchor", "target", "mix"}`` clip ids. Scenarios of one example share their clips.
    """
    clips: dict[str, str] = {}
    by_example: dict[str, dict[str, str]] = {}
    records: dict[str, Mapping] = {}
    for row in key.drop_duplicates("example_id").itertuples(index=False):
        if row.excerpt_id not in records:
            try:
                records = {row.excerpt_id: load_excerpt(row.excerpt_id)}  # one in memory
            except KeyError:
                raise ValueError(
                    f"excerpt {row.excerpt_id!r} of example {row.example_id!r} is not among "
                    "the excerpts: run the ingestion pipeline again"
                ) from None
        record = records[row.excerpt_id]
        rate = int(record["meta"].get("sample_rate", 16000))
        audio = scenario_audio(
            record["audio"], row.anchor, row.target, row.gain_db, rate, max_seconds
        )
        ids = {}
        for name, samples in audio.items():
            clip_id = f"c{len(clips) + 1}"
            clips[clip_id] = encode_clip(samples, rate, audio_format)
            ids[name] = clip_id
        by_example[row.example_id] = ids
    by_scenario = {r.scenario_id: by_example[r.example_id] for r in key.itertuples(index=False)}
    return clips, by_scenario
