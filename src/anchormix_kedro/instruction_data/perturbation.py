"""Gain perturbations of a professional mix and their labels.

The professional mix defines "balanced": its target-minus-anchor loudness is the
reference relative level. A perturbed copy raises or lowers the target by ``gain_db``;
the advice that undoes it is a fader move of ``-gain_db``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from anchormix_kedro.instruction_data.excerpts import ACTIVE
from anchormix_kedro.instruction_data.musdb import validate_stem_names
from anchormix_kedro.vocabulary import label_for_gain


def anchor_target_pairs(anchors: Sequence[str], targets: Sequence[str]) -> list[tuple[str, str]]:
    """Every (anchor, target) with distinct stems, in configuration order."""
    anchors = validate_stem_names(anchors, "pairs.anchors")
    targets = validate_stem_names(targets, "pairs.targets")
    return [(a, t) for a in anchors for t in targets if a != t]


@dataclass(frozen=True)
class GainOffsets:
    """Either a fixed grid of offsets, or ``count`` offsets drawn uniformly per pair.

    ``grid``: ``values`` are used for every pair. ``uniform``: ``count`` offsets drawn from
    ``±[min_abs_db, max_abs_db]`` per (excerpt, pair), plus 0 dB when ``include_zero``.
    """

    mode: str = "grid"
    values: tuple[float, ...] = (0.0,)
    count: int = 0
    min_abs_db: float = 1.0
    max_abs_db: float = 12.0
    include_zero: bool = True

    @classmethod
    def from_params(cls, params: dict) -> GainOffsets:
        mode = params.get("mode", "grid")
        if mode == "grid":
            values = params.get("values")
            if not values:
                raise ValueError(
                    "perturbation.offsets.values must list at least one gain in dB for mode 'grid'"
                )
            bad = [v for v in values if not np.isfinite(float(v))]
            if bad:
                raise ValueError(f"perturbation.offsets.values holds non-finite gains {bad}")
            return cls(mode=mode, values=tuple(float(v) for v in values))
        if mode == "uniform":
            offsets = cls(
                mode=mode,
                count=int(params["count"]),
                min_abs_db=float(params.get("min_abs_db", 1.0)),
                max_abs_db=float(params.get("max_abs_db", 12.0)),
                include_zero=bool(params.get("include_zero", True)),
            )
            if offsets.count < 1 or not 0 <= offsets.min_abs_db <= offsets.max_abs_db:
                raise ValueError(
                    "perturbation.offsets for mode 'uniform' needs count >= 1 and "
                    f"0 <= min_abs_db <= max_abs_db, got {params}"
                )
            return offsets
        raise ValueError(f"perturbation.offsets.mode must be 'grid' or 'uniform', got {mode!r}")

    def draw(self, key: str, seed: int) -> list[float]:
        """The offsets for one (excerpt, pair); depends only on ``key`` and ``seed``."""
        if self.mode == "grid":
            return list(self.values)
        digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
        magnitudes = rng.uniform(self.min_abs_db, self.max_abs_db, size=self.count)
        signs = rng.choice([-1.0, 1.0], size=self.count)
        drawn = [round(float(m * s), 1) for m, s in zip(magnitudes, signs, strict=True)]
        return ([0.0] if self.include_zero else []) + drawn


def example_id(excerpt_id: str, anchor: str, target: str, gain_db: float) -> str:
    """Readable, unique id: ``<excerpt>|<anchor>><target>|<gain>``."""
    return f"{excerpt_id}|{anchor}>{target}|{gain_db:+.1f}"


def make_examples(
    loudness: pd.DataFrame,
    tracks: pd.DataFrame,
    pairs: Sequence[tuple[str, str]],
    offsets: GainOffsets,
    tolerance_db: float,
    seed: int,
) -> tuple[pd.DataFrame, dict]:
    """One row per (excerpt, anchor-target pair, gain offset), and a count of skipped pairs.

    A pair forms only when both stems are ``active`` in the excerpt; otherwise it is
    counted under ``"<anchor|target> <status>"``.
    """
    label_for_gain(0.0, tolerance_db)  # validates the tolerance before any work
    by_song = loudness.set_index(["excerpt_id", "stem"])
    songs = tracks.set_index("song")
    rows: list[dict] = []
    skipped: dict[str, int] = {}
    for excerpt_id_, song in (
        loudness[["excerpt_id", "song"]].drop_duplicates().itertuples(index=False)
    ):
        track = songs.loc[song]
        for anchor, target in pairs:
            anchor_row, target_row = (
                by_song.loc[(excerpt_id_, anchor)],
                by_song.loc[(excerpt_id_, target)],
            )
            if anchor_row["status"] != ACTIVE or target_row["status"] != ACTIVE:
                reason = (
                    f"anchor {anchor_row['status']}"
                    if anchor_row["status"] != ACTIVE
                    else f"target {target_row['status']}"
                )
                skipped[f"{anchor}>{target}: {reason}"] = (
                    skipped.get(f"{anchor}>{target}: {reason}", 0) + 1
                )
                continue
            reference = float(target_row["lufs"] - anchor_row["lufs"])
            for gain in offsets.draw(f"{excerpt_id_}|{anchor}>{target}", seed):
                rows.append(
                    {
                        "example_id": example_id(excerpt_id_, anchor, target, gain),
                        "excerpt_id": excerpt_id_,
                        "song": song,
                        "split": track["split"],
                        "genre": track["genre"],
                        "anchor": anchor,
                        "target": target,
                        "anchor_lufs": float(anchor_row["lufs"]),
                        "target_lufs": float(target_row["lufs"]),
                        "reference_relative_db": round(reference, 3),
                        "gain_db": float(gain),
                        "perturbed_relative_db": round(reference + gain, 3),
                        "label": label_for_gain(gain, tolerance_db),
                    }
                )
    columns = [
        "example_id", "excerpt_id", "song", "split", "genre", "anchor", "target", "anchor_lufs",
        "target_lufs", "reference_relative_db", "gain_db", "perturbed_relative_db", "label",
    ]  # fmt: skip
    examples = pd.DataFrame(rows, columns=columns)
    summary = {
        "pairs_formed": int(
            examples[["excerpt_id", "anchor", "target"]].drop_duplicates().shape[0]
        ),
        "pairs_skipped": dict(sorted(skipped.items())),
        "examples": len(examples),
        "examples_by_label": {
            k: int(v) for k, v in examples["label"].value_counts().sort_index().items()
        },
    }
    return examples, summary
