"""The rating study's inputs and outputs in the pipelines: the source-rate excerpt store of
ingestion, and the page written as ``rating_study/<version>/index.html``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog

from anchormix_kedro.instruction_data.musdb import MusdbCorpus, discover_corpus
from anchormix_kedro.pipelines.ingestion import nodes as ingestion
from anchormix_kedro.pipelines.study.nodes import render_rating_study
from anchormix_kedro.study import kit as study_kit
from conftest import PROJECT_ROOT, RATE, tone_stems, write_hq_song

SPLITS = {"validation_tracks": [], "carve_when_missing": {}, "seed": 0}
EXCERPT = {"seconds": 2.0, "model_sample_rate": 16000, "hop_seconds": 0.5}


@pytest.fixture
def corpus(tmp_path) -> MusdbCorpus:
    stems = tone_stems(3.0)
    # A louder second half, so the excerpt does not start at 0 s.
    for name in stems:
        stems[name][: int(1.0 * RATE)] *= 0.001
    write_hq_song(tmp_path / "musdb", "train", "Train Song", stems)
    write_hq_song(tmp_path / "musdb", "test", "Test Song", stems)
    return discover_corpus(tmp_path / "musdb")


def test_source_rate_excerpts_are_the_same_stretch_in_stereo_at_the_source_rate(corpus):
    empty = MusdbCorpus(root=None)
    tracks = ingestion.list_tracks(corpus, empty, SPLITS)
    excerpts = ingestion.extract_excerpts(
        corpus, empty, tracks, EXCERPT, {"anchors": ["drums"], "targets": ["vocals", "bass"]}
    )
    loudness, _ = ingestion.tabulate_loudness(excerpts)
    source = ingestion.extract_source_rate_excerpts(
        corpus, empty, tracks, excerpts, {"splits": ["test"]}
    )
    assert list(source) == ["Test_Song"]  # only the split the study draws from
    record = source["Test_Song"]()
    meta, audio = record["meta"], record["audio"]
    window = loudness[loudness["excerpt_id"] == "Test_Song"].iloc[0]
    assert meta["start_s"] == pytest.approx(window["excerpt_start_s"]) and meta["start_s"] >= 0.5
    assert (meta["sample_rate"], meta["channels"], meta["error"]) == (RATE, 2, None)
    assert set(audio) == {"drums", "bass", "other", "vocals"}
    original = corpus.load_stems(corpus.track("Test Song")).stems
    start = int(round(meta["start_s"] * RATE))
    for stem, clip in audio.items():
        assert clip.shape == (int(2.0 * RATE), 2)
        np.testing.assert_array_equal(clip, original[stem][start : start + len(clip)])
    # The 16 kHz copy covers the same stretch.
    assert excerpts["Test_Song"]()["meta"]["start_s"] == pytest.approx(meta["start_s"])
    everything = ingestion.extract_source_rate_excerpts(
        corpus, empty, tracks, excerpts, {"splits": None}
    )
    assert sorted(everything) == ["Test_Song", "Train_Song"]


def _catalog_entries(project_root: Path, names: list[str], data_root: Path) -> DataCatalog:
    text = (project_root / "conf" / "base" / "catalog" / "automated_eval.yml").read_text()
    text = text.replace("${globals:data_root}", str(data_root))
    config = yaml.safe_load(text)
    for entry in config.values():
        if isinstance(entry, dict):
            entry.get("metadata", {}).clear()
    return DataCatalog.from_config({name: config[name] for name in names})


def _key(advice_by_system) -> pd.DataFrame:
    rows = [
        {"example_id": "e1", "system": system, "excerpt_id": "x1", "genre": "Pop",
         "anchor": "drums", "target": "vocals", "label": "too_loud", "gain_db": 4.0,
         "advice": advice}
        for system, advice in advice_by_system.items()
    ]  # fmt: skip
    return study_kit.sample_scenarios(pd.DataFrame(rows), 1, "study")


def test_each_build_is_one_folder_named_by_its_version_holding_its_key(tmp_path):
    key = _key({s: f"Pull the vocal fader down by {d} dB." for s, d in (("advisor", 4),
                                                                       ("dsp_baseline", 3))})  # fmt: skip
    stereo = tone_stems(1.0)  # (samples, 2) at 44.1 kHz
    records = {"x1": lambda: {"meta": {"sample_rate": RATE}, "audio": stereo}}
    musdb = pd.DataFrame({"excerpt_id": ["x1"], "source": ["musdb"]})
    params = {"max_page_mb": 5, "clip_seconds": 1.0}
    catalog = _catalog_entries(PROJECT_ROOT, ["rating_study"], tmp_path)
    first = render_rating_study(key, records, musdb, params)
    catalog.save("rating_study", first)
    second = render_rating_study(key, records, musdb, {**params, "offline_page": True})
    assert second.version > first.version  # a new version each run
    catalog.save("rating_study", second)
    with pytest.raises(Exception, match="exists already: a built study is never overwritten"):
        catalog.save("rating_study", second)
    root = tmp_path / "08_reporting" / "rating_study"
    assert sorted(p.name for p in root.iterdir()) == [first.version, second.version]
    loaded = catalog.load("rating_study")  # the latest
    assert loaded.version == second.version and loaded.folder == root / second.version
    # The key and the material share the folder, so its name is the key's version.
    pd.testing.assert_frame_equal(
        loaded.key[["scenario_id", "system"]], key[["scenario_id", "system"]]
    )
    manifest = (root / first.version / "study.json").read_text()
    assert "advisor" not in manifest and "e1" not in manifest
    assert (
        loaded.manifest["audio_source"] == "musdb" and "MUSDB18" in loaded.manifest["audio_notice"]
    )
    for scenario in loaded.manifest["scenarios"]:
        assert loaded.clip_file(scenario["clips"]["mix"]).stat().st_size > 1000
    assert not (root / first.version / "index.html").exists()  # the offline page: asked for only
    html_text = (root / second.version / "index.html").read_text(encoding="utf-8")
    assert all(f'data-scenario="{sid}"' in html_text for sid in key["scenario_id"])
    assert "advisor" not in html_text and "MUSDB18" in html_text
    # Synthetic audio: no MUSDB18 licence notice anywhere.
    synthetic = musdb.assign(source="synthetic")
    built = render_rating_study(key, records, synthetic, {**params, "offline_page": True})
    assert built.manifest["audio_notice"] == "" and "MUSDB18" not in built.offline_page


def test_merged_ratings_are_written_safe_for_spreadsheets_and_read_back_as_typed(tmp_path):
    import csv

    import yaml
    from kedro.io import Version

    from anchormix_kedro.datasets.spreadsheet_csv_dataset import SpreadsheetSafeCSVDataset
    from conftest import PROJECT_ROOT

    entry = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog/correlation.yml").read_text())[
        "merged_ratings"
    ]
    assert entry["type"].endswith("SpreadsheetSafeCSVDataset") and entry["versioned"]
    typed = pd.DataFrame(
        {
            "rater": ['=HYPERLINK("http://x")', "@ana", "bo"],
            "comment": ["-3 dB would do\rbetter", "+1", "'=already escaped"],
            "effectiveness": [5, 6, 7],
        }
    )
    dataset = SpreadsheetSafeCSVDataset(
        filepath=str(tmp_path / "ratings.csv"), version=Version(None, None),
        save_args={"index": False},
    )  # fmt: skip
    dataset.save(typed)
    (written,) = (tmp_path / "ratings.csv").glob("*/ratings.csv")
    with written.open(newline="") as handle:
        rows = list(csv.reader(handle))
    cells = [cell for row in rows[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert rows[1][0] == '\'=HYPERLINK("http://x")'
    assert written.read_text().startswith('"rater","comment","effectiveness"')  # all quoted
    pd.testing.assert_frame_equal(dataset.load(), typed)


def test_a_failed_ingestion_keeps_the_last_good_excerpts(tmp_path):
    import numpy as np

    from anchormix_kedro.datasets.staged_partitioned_dataset import StagedPartitionedDataset

    folder = tmp_path / "excerpts"
    dataset = StagedPartitionedDataset(
        path=str(folder), dataset="anchormix_kedro.datasets.NpzRecordDataset",
        filename_suffix=".npz", overwrite=True,
    )  # fmt: skip

    def good(level: float) -> dict:
        return {"meta": {"error": None}, "audio": {"drums": np.full(8, level, np.float32)}}

    def broken() -> dict:
        return {"meta": {"error": "song_b: corrupt MP4"}, "audio": {}}

    dataset.save({"song_a": lambda: good(0.5), "song_b": lambda: good(0.25)})
    assert sorted(p.name for p in folder.iterdir()) == ["song_a.npz", "song_b.npz"]

    # Kedro names the dataset around the reason (DatasetError).
    with pytest.raises(Exception, match="no song could be read.*corrupt MP4.*kept"):
        dataset.save({"song_b": broken, "song_c": broken})

    def dies() -> dict:
        raise RuntimeError("killed half-way")

    with pytest.raises(Exception, match="killed half-way"):
        dataset.save({"song_a": lambda: good(1.0), "song_b": dies})
    kept = dataset.load()
    assert sorted(kept) == ["song_a", "song_b"]
    assert kept["song_a"]()["audio"]["drums"][0] == np.float32(0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["excerpts"]  # no staging left over

    dataset.save({"song_c": lambda: good(2.0)})  # a good run replaces them all
    assert sorted(dataset.load()) == ["song_c"]
