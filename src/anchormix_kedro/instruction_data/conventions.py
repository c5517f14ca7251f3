"""Genre mixing conventions measured on the training split.

For each genre and (anchor, target) pair: how far above or below the anchor the target
sits in the professional mixes (median and spread of the reference relative level).
"""

from __future__ import annotations

import pandas as pd

ALL_GENRES = "all"
CONVENTION_COLUMNS = [
    "genre",
    "anchor",
    "target",
    "n_songs",
    "median_db",
    "q25_db",
    "q75_db",
    "std_db",
]


def measure_genre_conventions(examples: pd.DataFrame, split: str = "train") -> pd.DataFrame:
    """Median and spread of each pair's reference relative level per genre, plus ``all`` genres.

    Only ``split`` is used, so conventions never leak from validation or test songs.
    """
    references = examples.loc[
        examples["split"] == split, ["song", "genre", "anchor", "target", "reference_relative_db"]
    ]
    references = references.drop_duplicates(["song", "anchor", "target"])
    pooled = references.assign(genre=ALL_GENRES)
    table = (
        pd.concat([references, pooled])
        .groupby(["genre", "anchor", "target"])["reference_relative_db"]
        .agg(
            n_songs="count",
            median_db="median",
            q25_db=lambda s: s.quantile(0.25),
            q75_db=lambda s: s.quantile(0.75),
            std_db="std",
        )
        .reset_index()
    )
    table[["median_db", "q25_db", "q75_db", "std_db"]] = table[
        ["median_db", "q25_db", "q75_db", "std_db"]
    ].round(2)
    return table[CONVENTION_COLUMNS].sort_values(["anchor", "target", "genre"], ignore_index=True)


def convention_index(conventions: pd.DataFrame) -> dict[tuple[str, str, str], dict]:
    """``{(genre, anchor, target): row}`` for constant-time lookups over many examples."""
    return {(r["genre"], r["anchor"], r["target"]): r for r in conventions.to_dict("records")}


def lookup_convention(
    index: dict[tuple[str, str, str], dict],
    genre: str,
    anchor: str,
    target: str,
    min_songs: int = 3,
) -> dict | None:
    """The genre's convention for a pair, falling back to all genres when it has too few songs."""
    for candidate in (genre, ALL_GENRES):
        row = index.get((candidate, anchor, target))
        if row is not None and int(row["n_songs"]) >= min_songs:
            return row
    return None
