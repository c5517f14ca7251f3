"""Where a stem's level sits among professional mixes: percentiles, usual range, graded verdict.

Professional mixes do not agree on one level per stem pair: over MUSDB18's training songs
the vocal sits anywhere from a few dB below to several dB above the drums. So the engineers'
verdict of ``anchormix advise`` places a measured level (target minus anchor loudness, dB)
in the distribution of the professional mixes of its genre instead of comparing it with the
median alone:

- inside the *usual range* (the central band, by default the 25th to 75th percentile):
  ``within_usual_range``;
- between the usual range and the *outer* percentiles (default 10th and 90th):
  ``loud_side`` or ``quiet_side``, still a professional level;
- beyond the outer percentiles: ``too_loud`` / ``too_soft``, with the fader move that
  brings the level back to the edge of the usual range.

Percentiles are predictive (Weibull plotting positions, ``rank / (n + 1)``), so that on
songs not used to measure them a new professional mix falls below the 10th percentile about
10% of the time even for modest numbers of songs. By default the range of a pair comes from
the professional mixes of every genre: measured on MUSDB18 songs not used for the
percentiles (``anchormix analyse verdict-tradeoff``), ranges of single genres (at most 29 songs
each) flagged more professional mixes and caught fewer errors than the pooled range. With
``genre_min_songs`` a genre with at least that many songs for a pair uses its own songs.

The research yardstick, :mod:`anchormix_kedro.evaluation.dsp_baseline`, keeps its own
definition (within ±1.5 dB of the genre median); this module does not change it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from anchormix_kedro.instruction_data.conventions import ALL_GENRES
from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT

#: Grades of the engineers' verdict, from quietest to loudest.
WITHIN_USUAL_RANGE, LOUD_SIDE, QUIET_SIDE = "within_usual_range", "loud_side", "quiet_side"
GRADES: tuple[str, ...] = (TOO_SOFT, QUIET_SIDE, WITHIN_USUAL_RANGE, LOUD_SIDE, TOO_LOUD)
#: With genre ranges asked for, a genre with fewer songs for a pair uses every genre's songs.
RANGE_MIN_SONGS = 10
#: Columns of a professional levels table (one row per song and ordered stem pair).
LEVEL_COLUMNS: tuple[str, ...] = ("genre", "song", "anchor", "target", "relative_db")
LEVELS_RESOURCE = "resources/professional_levels.csv"


@dataclass(frozen=True)
class Bands:
    """The usual range and the outer percentiles, in percent (0-100)."""

    usual: tuple[float, float] = (25.0, 75.0)
    outer: tuple[float, float] = (10.0, 90.0)

    def __post_init__(self) -> None:
        (ulo, uhi), (olo, ohi) = self.usual, self.outer
        if not 0.0 < olo <= ulo < uhi <= ohi < 100.0:
            raise ValueError(
                f"percentiles must satisfy 0 < outer low <= usual low < usual high <= outer high "
                f"< 100; got usual {ulo:g}-{uhi:g}, outer {olo:g}-{ohi:g}"
            )


def quantile(values: Sequence[float], percent: float) -> float:
    """The predictive ``percent``-th percentile of ``values`` (Weibull positions, clipped).

    With ``n`` values the ``i``-th smallest sits at ``100 * i / (n + 1)`` percent; between
    two positions the level is interpolated linearly; outside them it is the extreme value.
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    if ordered.size == 0:
        raise ValueError("no professional levels to take a percentile of")
    positions = 100.0 * np.arange(1, ordered.size + 1) / (ordered.size + 1)
    return float(np.interp(percent, positions, ordered))


def percentile_of(values: Sequence[float], level: float) -> float:
    """The percentile of ``level`` among ``values``: the inverse of :func:`quantile`.

    0 below every value, 100 above every value, otherwise interpolated between positions.
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    if ordered.size == 0:
        raise ValueError("no professional levels to place a level among")
    positions = 100.0 * np.arange(1, ordered.size + 1) / (ordered.size + 1)
    if level < ordered[0]:
        return 0.0
    if level > ordered[-1]:
        return 100.0
    # Equal values share the middle of their positions.
    low = np.searchsorted(ordered, level, side="left")
    high = np.searchsorted(ordered, level, side="right")
    if high > low:
        return float(positions[low:high].mean())
    return float(np.interp(level, ordered, positions))


@dataclass(frozen=True)
class Distribution:
    """The professional levels of one (anchor, target) pair in one genre (or ``all``)."""

    genre: str
    anchor: str
    target: str
    values: tuple[float, ...]

    @property
    def n_songs(self) -> int:
        return len(self.values)

    @property
    def median_db(self) -> float:
        return float(np.median(self.values))


@dataclass(frozen=True)
class Placement:
    """A measured level placed among professional mixes, and the verdict it gives."""

    relative_db: float
    genre: str  # whose mixes: the asked genre, or "all" when it had too few songs
    n_songs: int
    median_db: float
    percentile: float
    usual_range_db: tuple[float, float]
    outer_range_db: tuple[float, float]
    bands: Bands
    grade: str
    verdict: str  # too_loud, too_soft or balanced
    fader_move_db: float  # the move back into the usual range; 0 unless too loud or soft
    to_usual_range_db: float  # the move to the nearest edge of the usual range (0 inside it)

    def as_dict(self) -> dict:
        return {
            "range_genre": self.genre,
            "range_songs": self.n_songs,
            "percentile": round(self.percentile, 1) + 0.0,
            "usual_range_db": [round(v, 2) + 0.0 for v in self.usual_range_db],
            "usual_percentiles": list(self.bands.usual),
            "outer_range_db": [round(v, 2) + 0.0 for v in self.outer_range_db],
            "outer_percentiles": list(self.bands.outer),
            "grade": self.grade,
        }


def place_level(relative_db: float, distribution: Distribution, bands: Bands) -> Placement:
    """Grade ``relative_db`` against ``distribution`` (see the module's docstring)."""
    values = distribution.values
    usual = (quantile(values, bands.usual[0]), quantile(values, bands.usual[1]))
    outer = (quantile(values, bands.outer[0]), quantile(values, bands.outer[1]))
    if relative_db > usual[1]:
        to_usual = usual[1] - relative_db
    elif relative_db < usual[0]:
        to_usual = usual[0] - relative_db
    else:
        to_usual = 0.0
    if relative_db > outer[1]:
        grade, verdict = TOO_LOUD, TOO_LOUD
    elif relative_db < outer[0]:
        grade, verdict = TOO_SOFT, TOO_SOFT
    elif relative_db > usual[1]:
        grade, verdict = LOUD_SIDE, BALANCED
    elif relative_db < usual[0]:
        grade, verdict = QUIET_SIDE, BALANCED
    else:
        grade, verdict = WITHIN_USUAL_RANGE, BALANCED
    return Placement(
        relative_db=float(relative_db),
        genre=distribution.genre,
        n_songs=distribution.n_songs,
        median_db=distribution.median_db,
        percentile=percentile_of(values, relative_db),
        usual_range_db=usual,
        outer_range_db=outer,
        bands=bands,
        grade=grade,
        verdict=verdict,
        fader_move_db=to_usual if verdict != BALANCED else 0.0,
        to_usual_range_db=to_usual,
    )


class ProfessionalLevels:
    """Per-song professional levels of every stem pair, looked up by genre and pair."""

    def __init__(self, levels: pd.DataFrame, genre_min_songs: int | None = None) -> None:
        missing = [c for c in ("genre", "anchor", "target", "relative_db") if c not in levels]
        if missing:
            raise ValueError(
                f"professional levels need columns {', '.join(LEVEL_COLUMNS)}; missing {missing}"
            )
        if genre_min_songs is not None and genre_min_songs < 2:
            raise ValueError(f"genre_min_songs must be at least 2, got {genre_min_songs}")
        self.genre_min_songs = genre_min_songs
        clean = levels.dropna(subset=["relative_db"])
        self._by_genre: dict[tuple[str, str, str], tuple[float, ...]] = {
            key: tuple(sorted(group.astype(float)))
            for key, group in clean.groupby(["genre", "anchor", "target"])["relative_db"]
        }
        self._pooled: dict[tuple[str, str], tuple[float, ...]] = {
            key: tuple(sorted(group.astype(float)))
            for key, group in clean.groupby(["anchor", "target"])["relative_db"]
        }

    @property
    def genres(self) -> list[str]:
        """The genres with levels, sorted (without ``all``)."""
        return sorted({genre for genre, _, _ in self._by_genre})

    def genre_songs(self, genre: str, anchor: str, target: str) -> int:
        return len(self._by_genre.get((genre, anchor, target), ()))

    def distribution(self, genre: str, anchor: str, target: str) -> Distribution | None:
        """Every genre's levels for the pair; the genre's own when genre ranges are asked for
        and it has at least ``genre_min_songs`` songs for the pair.

        ``None`` when no song has both stems playing (e.g. a stem that is not a MUSDB18 stem).
        """
        own = self._by_genre.get((genre, anchor, target), ())
        minimum = self.genre_min_songs
        if genre != ALL_GENRES and minimum is not None and len(own) >= minimum:
            return Distribution(genre, anchor, target, own)
        pooled = self._pooled.get((anchor, target), ())
        if not pooled:
            return None
        return Distribution(ALL_GENRES, anchor, target, pooled)


@lru_cache(maxsize=1)
def _read_shipped_levels() -> pd.DataFrame:
    with resources.files("anchormix_kedro").joinpath(LEVELS_RESOURCE).open("r") as handle:
        return pd.read_csv(handle, dtype={"genre": str, "song": str, "anchor": str, "target": str})


def shipped_levels(genre_min_songs: int | None = None) -> ProfessionalLevels:
    """The professional levels shipped with the project (MUSDB18's training songs)."""
    return ProfessionalLevels(_read_shipped_levels(), genre_min_songs)


def reference_levels(examples: pd.DataFrame) -> pd.DataFrame:
    """One row per song and pair (columns :data:`LEVEL_COLUMNS`) from the perturbation's
    examples: the reference relative level of each pair whose two stems play."""
    levels = examples.drop_duplicates(["song", "anchor", "target"]).rename(
        columns={"reference_relative_db": "relative_db"}
    )
    levels = levels[list(LEVEL_COLUMNS)].copy()
    levels["relative_db"] = levels["relative_db"].astype(float).round(2)
    return levels.sort_values(["anchor", "target", "genre", "song"], ignore_index=True)


# --------------------------------------------------------------------------- trade-off


def band_tradeoff(
    reference: pd.DataFrame,
    held_out: pd.DataFrame,
    outer_percentiles: Sequence[float],
    error_db: float = 12.0,
    usual: tuple[float, float] = (25.0, 75.0),
    genre_min_songs: int | None = None,
) -> pd.DataFrame:
    """How often each outer band flags professional mixes, and how many errors it catches.

    Percentiles come from ``reference`` (levels tables, :data:`LEVEL_COLUMNS`); every pair of
    ``held_out`` (songs not in ``reference``) is judged as it is (a professional level: a
    ``too_loud``/``too_soft`` verdict is a false alarm) and with its target raised and lowered
    by ``error_db`` (caught when the verdict says the right direction). ``outer_percentiles``
    are the low ends ``p`` of bands ``p``-``100 - p``; the usual range narrows to the outer
    band where the outer band is narrower than ``usual``.
    """
    overlap = set(reference["song"]) & set(held_out["song"])
    if overlap:
        raise ValueError(f"held-out songs were used to measure the percentiles: {sorted(overlap)}")
    levels = ProfessionalLevels(reference, genre_min_songs)
    rows = []
    for low in outer_percentiles:
        outer = (float(low), 100.0 - float(low))
        bands = Bands(usual=(max(usual[0], outer[0]), min(usual[1], outer[1])), outer=outer)
        flagged = caught = pairs = 0
        for row in held_out.itertuples(index=False):
            distribution = levels.distribution(row.genre, row.anchor, row.target)
            if distribution is None:
                continue
            pairs += 1
            level = float(row.relative_db)
            flagged += place_level(level, distribution, bands).verdict != BALANCED
            caught += place_level(level + error_db, distribution, bands).verdict == TOO_LOUD
            caught += place_level(level - error_db, distribution, bands).verdict == TOO_SOFT
        rows.append(
            {
                "outer_low": outer[0],
                "outer_high": outer[1],
                "pairs": pairs,
                "songs": held_out["song"].nunique(),
                "professional_flagged": flagged / pairs if pairs else float("nan"),
                "errors_caught": caught / (2 * pairs) if pairs else float("nan"),
            }
        )
    return pd.DataFrame(rows)
