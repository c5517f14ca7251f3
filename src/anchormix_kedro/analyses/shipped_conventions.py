"""Measure the genre conventions shipped with the project (the reference of the DSP baseline
and of ``anchormix advise``).

For every MUSDB18 training song (the songs of ``train/`` minus the 14 validation songs of
``musdb.MUSDB_VALIDATION_TRACKS``) it picks the excerpt and measures the stems exactly as
the ingestion pipeline does (with the project's base configuration), forms all 12 ordered
(anchor, target) pairs of the four stems where both play, and writes

- ``genre_conventions.csv``: each pair's median and spread per genre and over all genres,
  with the templating pipeline's own function (the DSP baseline's reference);
- ``professional_levels.csv``: each song's relative level of each pair, with its genre,
  from which ``anchormix advise`` takes its percentiles and usual ranges.

Both hold statistics, not audio. They go to
``data/08_reporting/analyses/shipped-conventions/``; to ship them, copy them over
``src/anchormix_kedro/resources/`` (or give ``--output`` and ``--levels-output``)::

    anchormix analyse shipped-conventions [--musdb-root /path/to/musdb18]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pandas as pd

from anchormix_kedro.errors import CliError
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
from anchormix_kedro.vocabulary import STEM_NAMES

NAME = "shipped-conventions"
CONVENTIONS_FILE = "genre_conventions.csv"
LEVELS_FILE = "professional_levels.csv"

logger = logging.getLogger(__name__)


def pipeline_settings(conf: Path) -> tuple[ExcerptSettings, float]:
    """The excerpt settings and balance tolerance of the project's base configuration."""
    from anchormix_kedro.analyses.project import quiet_kedro
    from anchormix_kedro.config import BASE_ENV, project_config

    with quiet_kedro():
        loader = project_config(conf, BASE_ENV)
        params = loader["parameters"]
    return (
        ExcerptSettings(**params["ingestion"]["excerpt"]),
        float(params["perturbation"]["balanced_tolerance_db"]),
    )


def musdb_root(given: Path | None, project: Path) -> Path:
    """``given``, else the project's ``musdb_root`` global (``MUSDB_PATH``): a MUSDB18 root."""
    if given is None:
        from anchormix_kedro.analyses.project import project_globals

        found = project_globals(project).get("musdb_root")
        if not found:
            raise CliError("no MUSDB18: give --musdb-root /path/to/musdb18 or set MUSDB_PATH")
        given = Path(str(found))
    root = given.expanduser()
    if not (root / "train").is_dir():
        raise CliError(f"{root} holds no MUSDB18 train/ folder: give --musdb-root /path/to/musdb18")
    return root


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


def command(args) -> int:
    """``anchormix analyse shipped-conventions``."""
    from anchormix_kedro.analyses.project import output_folder, project_root

    project = project_root(args.project)
    root = musdb_root(args.musdb_root, project)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger.setLevel(logging.INFO)
    settings, tolerance_db = pipeline_settings(project / "conf")
    examples = measure_examples(root, settings, tolerance_db)
    if examples.empty:
        raise CliError(f"no training song under {root} could be measured")
    conventions = measure_genre_conventions(examples, split="train")
    output = args.output or output_folder(project, NAME) / CONVENTIONS_FILE
    levels_output = args.levels_output or output_folder(project, NAME) / LEVELS_FILE
    for path in (output, levels_output):
        path.parent.mkdir(parents=True, exist_ok=True)
    conventions.to_csv(output, index=False)
    levels = reference_levels(examples)
    levels.to_csv(levels_output, index=False)
    out = sys.stdout.write
    out(f"wrote {len(levels)} song levels ({levels['song'].nunique()} songs) to {levels_output}\n")
    pooled = conventions[conventions["genre"] == "all"]
    out(f"wrote {len(conventions)} rows ({len(pooled)} pairs over all genres) to {output}\n")
    out(pooled.to_string(index=False) + "\n")
    return 0
