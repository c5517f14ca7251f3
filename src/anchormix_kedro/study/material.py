"""A built study: what the study server serves and the key that unblinds it, in one folder.

``data/08_reporting/rating_study/<version>/`` (``version``: the build's timestamp, named
like Kedro's versions) holds

- ``study.json``: the blind manifest the server renders (the study's id and texts, and for
  each scenario its genre, stems, advice and clip ids; no system or example id);
- ``clips/<clip>.ogg`` (or ``.wav``): the audio, served only to invited raters;
- ``key.csv``: the key from scenario ids to examples and systems (keep it to yourself);
- ``index.html``: the self-contained offline page, only when ``study_kit.offline_page`` is
  true (a pilot on one desk; it embeds the audio, so MUSDB18's licence forbids passing it on).

A folder is written once and never overwritten; the latest folder is the study the
``anchormix study`` commands act on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from anchormix_kedro.study.kit.audio import EncodedClip, render_clips
from anchormix_kedro.study.kit.build import PageSettings, PageTooLargeError
from anchormix_kedro.study.kit.page import page_size_mb, render_page, stem_noun
from anchormix_kedro.study.kit.sampling import KEY_COLUMNS

logger = logging.getLogger(__name__)

MANIFEST = "study.json"
KEY_FILE = "key.csv"
CLIP_FOLDER = "clips"
OFFLINE_PAGE = "index.html"
#: Where the audio of a study comes from: MUSDB18 (research use only) or the synthetic corpus.
AUDIO_SOURCES = ("musdb", "synthetic")


class StudyNotFoundError(FileNotFoundError):
    """No built study where one was expected; the message says how to build one."""


@dataclass
class BuiltStudy:
    """A study's blind manifest, its key and its clips (bytes when built, files when loaded)."""

    version: str
    manifest: dict
    key: pd.DataFrame
    clips: Mapping[str, EncodedClip] = field(default_factory=dict, repr=False)
    offline_page: str | None = field(default=None, repr=False)
    folder: Path | None = None

    @property
    def study_id(self) -> str:
        return str(self.manifest["study_id"])

    @property
    def scenario_ids(self) -> list[str]:
        return [s["scenario_id"] for s in self.manifest["scenarios"]]

    def clip_file(self, clip_id: str) -> Path | None:
        """The file of a clip of this study (``None`` for an id it does not hold)."""
        name = self.manifest["clip_files"].get(clip_id)
        return None if name is None or self.folder is None else self.folder / CLIP_FOLDER / name


def _audio_source(key: pd.DataFrame, tracks: pd.DataFrame) -> str:
    sources = set(tracks.loc[tracks["excerpt_id"].isin(key["excerpt_id"]), "source"])
    return "musdb" if "musdb" in sources or not sources else "synthetic"


def build_study(
    key: pd.DataFrame,
    load_excerpt: Callable[[str], Mapping],
    tracks: pd.DataFrame,
    settings: PageSettings,
    version: str,
    offline_page: bool = False,
) -> BuiltStudy:
    """The study of the key's scenarios: clips from ``load_excerpt`` (source-rate records),
    the blind manifest, and the offline page when asked for. The MUSDB18 notice is shown
    only when the audio comes from MUSDB18."""
    studies = key["study_id"].unique()
    if len(studies) > 1:
        raise ValueError(f"a study has one study_id; the key holds {sorted(studies)}")
    source = _audio_source(key, tracks)
    notice = settings.audio_notice if source == "musdb" else ""
    clips, by_scenario = ({}, {}) if key.empty else render_clips(
        key, load_excerpt, settings.audio_format, settings.clip_seconds,
        settings.audio_compression,
    )  # fmt: skip
    scenarios = [
        {
            "scenario_id": row.scenario_id,
            "position": int(row.position),
            "genre": str(row.genre),
            "anchor": stem_noun(row.anchor),
            "target": stem_noun(row.target),
            "advice": str(row.advice),
            "clips": by_scenario[row.scenario_id].as_dict(),
        }
        for row in key.sort_values("position").itertuples(index=False)
    ]
    manifest = {
        "version": version,
        "study_id": str(studies[0]) if len(studies) else "",
        "audio_source": source,
        "title": settings.title,
        "instructions": settings.instructions,
        "audio_notice": notice,
        "consent": settings.consent,
        "scenarios": scenarios,
        "clip_files": {clip_id: clip_id + clip.suffix for clip_id, clip in clips.items()},
    }
    page = None
    if offline_page and not key.empty:
        page = render_page(key, clips, by_scenario, title=settings.title,
                           instructions=settings.instructions, audio_notice=notice,
                           consent=settings.consent)  # fmt: skip
        size_mb = page_size_mb(page)
        if settings.max_page_mb is not None and size_mb > float(settings.max_page_mb):
            raise PageTooLargeError(
                f"the offline rating page would be {size_mb:.1f} MB, over "
                f"study_kit.max_page_mb = {settings.max_page_mb} MB ({len(key)} scenarios, "
                f"{len(clips)} clips): lower study_kit.n_examples or clip_seconds, raise "
                "audio_compression, raise the limit, or serve the study instead"
            )
    megabytes = sum(len(c.data) for c in clips.values()) / 1e6
    logger.info("Study %s (%s): %d scenarios, %d clips, %.1f MB of %s audio%s", version,
                manifest["study_id"], len(scenarios), len(clips), megabytes, source,
                ", offline page written" if page else "")  # fmt: skip
    return BuiltStudy(version, manifest, key, clips, page)


def save_study(study: BuiltStudy, root: Path) -> Path:
    """Write the study to ``root/<version>/``; an existing folder is never overwritten."""
    folder = root / study.version
    if folder.exists():
        raise FileExistsError(f"{folder} exists already: a built study is never overwritten")
    staging = root / f".{study.version}.partial"
    (staging / CLIP_FOLDER).mkdir(parents=True, exist_ok=True)
    for clip_id, clip in study.clips.items():
        (staging / CLIP_FOLDER / study.manifest["clip_files"][clip_id]).write_bytes(clip.data)
    study.key.to_csv(staging / KEY_FILE, index=False)
    if study.offline_page is not None:
        (staging / OFFLINE_PAGE).write_text(study.offline_page, encoding="utf-8")
    (staging / MANIFEST).write_text(json.dumps(study.manifest, indent=1), encoding="utf-8")
    staging.rename(folder)  # a folder appears whole or not at all
    return folder


def study_versions(root: Path) -> list[str]:
    """The versions of the studies built under ``root``, oldest first."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST).is_file())


def load_study(root: Path, version: str | None = None) -> BuiltStudy:
    """The study ``version`` under ``root`` (``None``: the latest)."""
    versions = study_versions(root)
    if not versions:
        raise StudyNotFoundError(
            f"no study has been built under {root}: run `kedro run --pipeline=automated_eval` "
            "(or `make run`) first"
        )
    version = version or versions[-1]
    if version not in versions:
        raise StudyNotFoundError(
            f"no study {version!r} under {root}; built studies: {', '.join(versions)}"
        )
    folder = root / version
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    key = pd.read_csv(folder / KEY_FILE, dtype={c: str for c in (
        "study_id", "scenario_id", "example_id", "system", "advice", "excerpt_id",
        "advice_evaluated")},
        keep_default_na=False, na_values=[""])  # fmt: skip
    if "advice_evaluated" not in key.columns:  # built before blinding could reword advice
        key["advice_evaluated"] = key["advice"]
    missing = [c for c in KEY_COLUMNS if c not in key.columns]
    if missing:
        raise ValueError(f"{folder / KEY_FILE} lacks columns {missing}: build the study again")
    return BuiltStudy(version, manifest, key, folder=folder)


class StudyShelf:
    """The built studies a server serves, each loaded once, by version: a rater's link
    keeps working with the study they were invited to after the pipeline builds a new one."""

    def __init__(self, root: Path | None = None, studies: tuple[BuiltStudy, ...] = ()):
        self._root = root
        self._loaded = {study.version: study for study in studies}

    def get(self, version: str) -> BuiltStudy | None:
        if version not in self._loaded and self._root is not None:
            if version not in study_versions(self._root):
                return None
            self._loaded[version] = load_study(self._root, version)
        return self._loaded.get(version)
