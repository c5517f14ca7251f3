"""A synthetic MUSDB18-HQ corpus described by its settings, rendered song by song on save."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from anchormix_kedro.instruction_data.synthetic import SongPlan, plan_corpus, synthesize_song


@dataclass(frozen=True)
class SyntheticCorpusSpec:
    """What to render; an empty spec (``n_songs == 0``) renders nothing."""

    n_songs: int = 0
    seconds: float = 12.0
    seed: int = 0
    sample_rate: int = 44100
    genres: tuple[str, ...] | None = None
    test_fraction: float = 0.25
    instrumental_fraction: float = 0.1
    plans: tuple[SongPlan, ...] = field(default=(), compare=False)

    @classmethod
    def from_params(cls, params: dict) -> SyntheticCorpusSpec:
        """Build from the ``ingestion.synthetic`` parameters block."""
        genres = tuple(params["genres"]) if params.get("genres") else None
        spec = cls(
            n_songs=int(params["n_songs"]),
            seconds=float(params["seconds"]),
            seed=int(params["seed"]),
            sample_rate=int(params.get("sample_rate", 44100)),
            genres=genres,
            test_fraction=float(params.get("test_fraction", 0.25)),
            instrumental_fraction=float(params.get("instrumental_fraction", 0.1)),
        )
        plans = plan_corpus(
            spec.n_songs,
            spec.seconds,
            spec.seed,
            genres=genres,
            test_fraction=spec.test_fraction,
            instrumental_fraction=spec.instrumental_fraction,
        )
        return cls(**{**asdict(spec), "genres": genres, "plans": tuple(plans)})

    @property
    def fingerprint(self) -> str:
        """Changes whenever the rendered audio would change."""
        settings = {k: v for k, v in asdict(self).items() if k != "plans"}
        return hashlib.sha256(
            json.dumps(settings, sort_keys=True, default=list).encode()
        ).hexdigest()[:16]

    def render(self) -> Iterator[tuple[SongPlan, dict[str, np.ndarray]]]:
        """Yield each song's stems in turn (one song in memory at a time)."""
        for plan in self.plans:
            yield plan, synthesize_song(plan, sample_rate=self.sample_rate)
