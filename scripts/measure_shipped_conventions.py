"""Measure the genre conventions shipped with the project (the reference of the DSP baseline
and of ``anchormix advise``).

For every MUSDB18 training song (the songs of ``train/`` minus the 14 validation songs of
``musdb.MUSDB_VALIDATION_TRACKS``) it picks the excerpt and measures the stems exactly as
the ingestion pipeline does, forms all 12 ordered (anchor, target) pairs of the four stems
where both play, and writes

- ``resources/genre_conventions.csv``: each pair's median and spread per genre and over all
  genres, with the templating pipeline's own function (the DSP baseline's reference);
- ``resources/professional_levels.csv``: each song's relative level of each pair, with its
  genre, from which ``anchormix advise`` takes its percentiles and usual ranges.

Both hold statistics, not audio.

    python scripts/measure_shipped_conventions.py [--musdb-root /path/to/musdb18]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd
from kedro.config import OmegaConfigLoader

from anchormix_kedro.evaluation.professional_range import reference_levels
from anchormix_kedro.instruction_data.audio import AudioError
from anchormix_kedro.instruction_data.conventions import measure_genre_conventions
from anchormix_kedro.instruction_data.excerpts import ExcerptSettings, extract_excerpt
from anchormix_kedro.instruction_data.musdb import (
    MUSDB_VALIDATION_TRACKS,
    assign_splits,
    discover_corpus,
)
from anchormix_kedro.instruction_data.perturbation import (
    GainOffsets,
    anchor_target_pairs,
    make_examples,
)
from anchormix_kedro.settings import CONFIG_LOADER_ARGS
from anchormix_kedro.vocabulary import STEM_NAMES

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = PROJECT_ROOT.parent / "shared" / "data" / "musdb18-7s"
RESOURCES = PROJECT_ROOT / "src" / "anchormix_kedro" / "resources"
DEFAULT_OUTPUT = RESOURCES / "genre_conventions.csv"
DEFAULT_LEVELS_OUTPUT = RESOURCES / "professional_levels.csv"
CONF = PROJECT_ROOT / "conf"

logger = logging.getLogger("measure_shipped_conventions")


def pipeline_settings(conf: Path) -> tuple[ExcerptSettings, float]:
    """The excerpt settings and balance tolerance of the project's base configuration."""
    loader = OmegaConfigLoader(conf_source=str(conf), env="base", **CONFIG_LOADER_ARGS)
    params = loader["parameters"]
    return (
        ExcerptSettings(**params["ingestion"]["excerpt"]),
        float(params["perturbation"]["balanced_tolerance_db"]),
    )


def measure_examples(
    root: Path, settings: ExcerptSettings, tolerance_db: float, splits: tuple[str, ...] = ("train",)
) -> pd.DataFrame:
    """The reference level of all 12 ordered stem pairs of the songs of ``splits`` under
    ``root`` (the perturbation step's examples at a single 0 dB offset)."""
    corpus = discover_corpus(root)
    # No carving: every song that is neither a validation nor a test song counts as training.
    assigned = assign_splits(corpus.tracks, MUSDB_VALIDATION_TRACKS, carve_missing={}, seed=0)
    chosen = [t for t in corpus.tracks if assigned[t.name] in splits]
    loudness_rows, track_rows = [], []
    for position, track in enumerate(chosen, start=1):
        try:
            stem_set = corpus.load_stems(track, STEM_NAMES)
        except AudioError as exc:
            logger.warning("[%d/%d] skipped %s: %s", position, len(chosen), track.name, exc)
            continue
        excerpt = extract_excerpt(stem_set, STEM_NAMES, STEM_NAMES, settings)
        track_rows.append({"song": track.name, "split": assigned[track.name], "genre": track.genre})
        loudness_rows.extend(
            {
                "excerpt_id": track.name,
                "song": track.name,
                "stem": stem,
                "lufs": excerpt.lufs[stem],
                "status": excerpt.status[stem],
            }
            for stem in STEM_NAMES
        )
        logger.info("[%d/%d] %s (%s)", position, len(chosen), track.name, track.genre)
    # A single 0 dB offset turns the perturbation step into "the reference level of each
    # pair whose two stems play", the quantity the conventions summarise.
    examples, _ = make_examples(
        pd.DataFrame(loudness_rows),
        pd.DataFrame(track_rows),
        anchor_target_pairs(STEM_NAMES, STEM_NAMES),
        GainOffsets(values=(0.0,)),
        tolerance_db,
        seed=0,
    )
    return examples


def measure(root: Path, settings: ExcerptSettings, tolerance_db: float) -> pd.DataFrame:
    """Conventions of all 12 ordered stem pairs over the training songs under ``root``."""
    return measure_genre_conventions(measure_examples(root, settings, tolerance_db), split="train")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--musdb-root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--levels-output", type=Path, default=DEFAULT_LEVELS_OUTPUT)
    parser.add_argument("--conf", type=Path, default=CONF, help="the project's conf/ folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings, tolerance_db = pipeline_settings(args.conf)
    examples = measure_examples(args.musdb_root, settings, tolerance_db)
    conventions = measure_genre_conventions(examples, split="train")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    conventions.to_csv(args.output, index=False)
    levels = reference_levels(examples)
    levels.to_csv(args.levels_output, index=False)
    print(
        f"wrote {len(levels)} song levels ({levels['song'].nunique()} songs) to {args.levels_output}"
    )
    pooled = conventions[conventions["genre"] == "all"]
    print(f"wrote {len(conventions)} rows ({len(pooled)} pairs over all genres) to {args.output}")
    print(pooled.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
