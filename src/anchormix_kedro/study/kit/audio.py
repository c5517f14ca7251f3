"""The rating study's audio: each scenario's clips, encoded as ``data:`` URIs for the page.

The clips come from the source-rate excerpts (44.1 kHz stereo for MUSDB18), so engineers
judge what they would hear in a session, not the model's 16 kHz mono input. An example
has three clips (the anchor, the target at its perturbed gain, and the mix of all stems
with the target perturbed); each scenario adds a fourth, the mix as the advice would leave
it (the advised fader move applied to the target). All clips of an example share one scale
factor, so their relative levels are those of the scenario. Advice that leaves the level
as it is, or whose move cannot be read, gets the mix unchanged as its fourth clip.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anchormix_kedro.advice_language.parsing import parse_advice

#: Container, subtype and MIME type of each ``study_kit.audio_format``.
AUDIO_FORMATS = {"ogg": ("OGG", "VORBIS", "audio/ogg"), "wav": ("WAV", "PCM_16", "audio/wav")}
#: Vorbis compression level (0: best quality, 1: smallest); 0.3 is about 180 kbps stereo.
DEFAULT_COMPRESSION = 0.3
#: Why a scenario's fourth player plays the mix unchanged.
ADVISED_UNCHANGED = "unchanged"  # the advice leaves the level as it is
ADVISED_UNREADABLE = "unreadable"  # the advice names no fader move that can be read
ADVISED_MOVED = "moved"


@dataclass(frozen=True)
class EncodedClip:
    """A clip's encoded bytes and MIME type: a file for the study server, a ``data:`` URI
    for the offline page."""

    data: bytes
    mime: str

    @property
    def suffix(self) -> str:
        return "." + self.mime.split("/")[1]

    def data_uri(self) -> str:
        return f"data:{self.mime};base64," + base64.b64encode(self.data).decode("ascii")


def encode_clip_bytes(
    samples: np.ndarray,
    sample_rate: int,
    audio_format: str = "ogg",
    compression: float = DEFAULT_COMPRESSION,
) -> EncodedClip:
    """A float clip (``(samples,)`` or ``(samples, channels)``) encoded as OGG Vorbis
    (small; ``compression`` 0 to 1) or 16-bit WAV (any browser)."""
    import soundfile

    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"unknown audio_format {audio_format!r}; use one of {list(AUDIO_FORMATS)}")
    if not 0.0 <= compression <= 1.0:
        raise ValueError(f"study_kit.audio_compression must be within 0 and 1, got {compression}")
    container, subtype, mime = AUDIO_FORMATS[audio_format]
    options = {"compression_level": float(compression)} if container == "OGG" else {}
    buffer = io.BytesIO()
    soundfile.write(
        buffer, np.asarray(samples, dtype=np.float32), int(sample_rate), format=container,
        subtype=subtype, **options,
    )  # fmt: skip
    return EncodedClip(buffer.getvalue(), mime)


def encode_clip(
    samples: np.ndarray,
    sample_rate: int,
    audio_format: str = "ogg",
    compression: float = DEFAULT_COMPRESSION,
) -> str:
    """:func:`encode_clip_bytes` as a ``data:`` URI."""
    return encode_clip_bytes(samples, sample_rate, audio_format, compression).data_uri()


def advised_move(advice: str | None) -> tuple[float, str]:
    """The fader move (dB) the advice asks for, and whether it moves the level at all.

    ``(move, "moved")``; ``(0.0, "unchanged")`` for advice that leaves the level as it is;
    ``(0.0, "unreadable")`` when no direction with an amount can be read from it.
    """
    move = parse_advice(advice).fader_move_db
    if move is None or not math.isfinite(move):
        return 0.0, ADVISED_UNREADABLE
    if move == 0.0:
        return 0.0, ADVISED_UNCHANGED
    return float(move), ADVISED_MOVED


def scenario_audio(
    stems: Mapping[str, np.ndarray],
    anchor: str,
    target: str,
    gain_db: float,
    sample_rate: int,
    max_seconds: float | None = 10.0,
    peak: float = 0.89,
    fade_seconds: float = 0.01,
    advised_moves_db: Sequence[float] = (),
) -> dict[str, np.ndarray]:
    """``{"anchor", "target", "mix", "advised <move>"...}`` with one scale factor for all.

    The target is raised by ``gain_db``; the mix sums every stem with the target perturbed;
    each ``advised <move>`` clip is that mix with the target moved by ``move`` dB more (the
    key is ``f"advised {move:+.1f}"``). One factor for every clip keeps their levels
    comparable; it only lowers them, where a clip would peak above ``peak``. Clips are cut
    to ``max_seconds`` and faded in and out over ``fade_seconds`` (no clicks). Stems may be
    mono ``(samples,)`` or ``(samples, channels)``; clips keep their channels.
    """
    for stem in (anchor, target):
        if stem not in stems:
            raise ValueError(f"the excerpt has no {stem!r} stem; it has {sorted(stems)}")
    length = min(len(clip) for clip in stems.values())
    if max_seconds:
        length = min(length, int(round(max_seconds * sample_rate)))
    clips = {name: np.asarray(stems[name][:length], dtype=np.float64) for name in stems}
    target_clip = clips[target] * 10.0 ** (float(gain_db) / 20.0)
    rest = sum(clip for name, clip in clips.items() if name != target)
    audio = {"anchor": clips[anchor], "target": target_clip, "mix": rest + target_clip}
    for move in advised_moves_db:
        audio[f"advised {move:+.1f}"] = rest + target_clip * 10.0 ** (float(move) / 20.0)
    loudest = max(float(np.max(np.abs(clip))) if clip.size else 0.0 for clip in audio.values())
    scale = min(1.0, peak / loudest) if loudest > 0 else 1.0
    fade = min(int(fade_seconds * sample_rate), length // 2)
    ramp = np.ones(length)
    if fade > 0:
        ramp[:fade] = np.linspace(0.0, 1.0, fade)
        ramp[-fade:] = np.linspace(1.0, 0.0, fade)
    if next(iter(audio.values())).ndim == 2:
        ramp = ramp[:, None]
    return {name: (clip * scale * ramp).astype(np.float32) for name, clip in audio.items()}


@dataclass(frozen=True)
class ScenarioClips:
    """A scenario's four clip ids, and what its advised mix is."""

    anchor: str
    target: str
    mix: str
    advised: str
    advised_state: str  # moved, unchanged or unreadable
    advised_move_db: float

    def as_dict(self) -> dict:
        return {
            "anchor": self.anchor,
            "target": self.target,
            "mix": self.mix,
            "advised": self.advised,
            "advised_state": self.advised_state,
            "advised_move_db": round(self.advised_move_db, 1) + 0.0,
        }


def render_clips(
    key: pd.DataFrame,
    load_excerpt: Callable[[str], Mapping],
    audio_format: str = "ogg",
    max_seconds: float | None = 10.0,
    compression: float = DEFAULT_COMPRESSION,
) -> tuple[dict[str, EncodedClip], dict[str, ScenarioClips]]:
    """Audio for every scenario of the key, each example's clips made once.

    ``load_excerpt(excerpt_id)`` returns an excerpt record (``{"meta": {...}, "audio":
    {stem: array}}``, ``meta["sample_rate"]`` its rate). Returns ``(clips, by_scenario)``:
    ``clips`` maps opaque clip ids to :class:`EncodedClip`, ``by_scenario`` maps each scenario id to
    its :class:`ScenarioClips`. Scenarios of one example share the anchor, target and mix,
    and an advised mix when their moves agree to 0.1 dB.
    """
    clips: dict[str, EncodedClip] = {}
    by_scenario: dict[str, ScenarioClips] = {}
    for example_id, rows in key.groupby("example_id", sort=False):
        first = rows.iloc[0]
        try:
            record = load_excerpt(first["excerpt_id"])
        except KeyError:
            raise ValueError(
                f"excerpt {first['excerpt_id']!r} of example {example_id!r} is not among the "
                "source-rate excerpts: add its split to ingestion.source_rate.splits and run "
                "the ingestion pipeline again"
            ) from None
        if record["meta"].get("error"):
            raise ValueError(
                f"excerpt {first['excerpt_id']!r} of example {example_id!r} could not be read "
                f"at its source rate ({record['meta']['error']}): run the ingestion pipeline again"
            )
        rate = int(record["meta"].get("sample_rate", 16000))
        moves = {
            sid: advised_move(advice)
            for sid, advice in zip(rows["scenario_id"], rows["advice"], strict=True)
        }
        distinct = sorted({round(m, 1) for m, state in moves.values() if state == ADVISED_MOVED})
        audio = scenario_audio(
            record["audio"], first["anchor"], first["target"], first["gain_db"], rate,
            max_seconds, advised_moves_db=distinct,
        )  # fmt: skip
        ids = {}
        for name, samples in audio.items():
            ids[name] = f"c{len(clips) + 1}"
            clips[ids[name]] = encode_clip_bytes(samples, rate, audio_format, compression)
        for sid, (move, state) in moves.items():
            advised = (
                ids[f"advised {round(move, 1):+.1f}"] if state == ADVISED_MOVED else ids["mix"]
            )
            by_scenario[sid] = ScenarioClips(
                ids["anchor"], ids["target"], ids["mix"], advised, state, move
            )
    return clips, by_scenario
