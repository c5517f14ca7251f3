"""Several excerpts per song: the greedy, spaced choice of windows, their ids (``<song>``,
``<song>__2``, ...), unused ids of short songs, and the ingestion nodes end to end."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import yaml
from kedro.io import DataCatalog

from anchormix_kedro.instruction_data.audio import StemSet, integrated_loudness
from anchormix_kedro.instruction_data.excerpts import (
    ExcerptSettings,
    choose_excerpt_start,
    choose_excerpt_starts,
    extract_excerpt,
    extract_song_excerpts,
    window_scores,
)
from anchormix_kedro.instruction_data.musdb import MusdbCorpus, discover_corpus
from anchormix_kedro.instruction_data.synthetic import plan_corpus, synthesize_song
from anchormix_kedro.pipelines.ingestion import nodes as ingestion
from conftest import PROJECT_ROOT, tone_stems, write_hq_song

ANCHORS, TARGETS = ["drums"], ["vocals", "bass", "other"]
PAIRS = {"anchors": ANCHORS, "targets": TARGETS}
SPLITS = {"validation_tracks": [], "carve_when_missing": {}, "seed": 0}
SYNTH_RATE = 22050


def _synthetic_stems(seconds: float, seed: int = 1) -> dict[str, np.ndarray]:
    plan = next(p for p in plan_corpus(4, seconds, seed) if not p.instrumental)
    return synthesize_song(plan, sample_rate=SYNTH_RATE)


# --------------------------------------------------------------------------- choosing


def test_greedy_choice_takes_the_best_window_then_the_best_spaced_ones_in_time_order():
    n, window, spacing = 400, 50, 100  # 40 s of 100 ms frames, 5 s windows, 10 s apart
    drums = np.zeros(n, dtype=bool)
    vocals = np.zeros(n, dtype=bool)
    drums[150:200] = True  # the best window: the anchor plays from 15 s
    vocals[320:370] = True  # second best: a target plays from 32 s
    activity = {"drums": drums, "vocals": vocals, "bass": np.zeros(n, dtype=bool)}
    starts = choose_excerpt_starts(activity, ANCHORS, ["vocals"], window, 5, count=3,
                                   spacing_frames=spacing)  # fmt: skip
    # 150 first; 320 is the best start at least 150 frames from it; 0 the only one left.
    assert starts == [0, 150, 320]
    assert choose_excerpt_starts(activity, ANCHORS, ["vocals"], window, 5, count=1) == [150]
    assert choose_excerpt_start(activity, ANCHORS, ["vocals"], window, 5) == 150
    # Without spacing the windows may touch but never overlap.
    close = choose_excerpt_starts(activity, ANCHORS, ["vocals"], window, 5, count=2)
    assert close == [150, 320]


def test_greedy_choice_stops_when_no_spaced_window_is_left():
    activity = {"drums": np.ones(400, dtype=bool)}  # all ties: the earliest windows win
    starts = choose_excerpt_starts(activity, ANCHORS, [], 50, 5, count=10, spacing_frames=100)
    assert starts == [0, 150, 300]  # a fourth would start at 450, past the song


@pytest.mark.parametrize("seed", range(8))
def test_greedy_choice_properties_on_random_activity(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(120, 900))
    window, hop, spacing = (
        int(rng.integers(20, 80)),
        int(rng.integers(1, 10)),
        int(rng.integers(0, 150)),
    )
    count = int(rng.integers(1, 6))
    activity = {
        stem: np.repeat(rng.random(n // 10 + 1) < rng.random(), 10)[:n]
        for stem in ["drums", "bass", "other", "vocals"]
    }
    starts = choose_excerpt_starts(activity, ANCHORS, TARGETS, window, hop, count, spacing)
    assert 1 <= len(starts) <= count
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    assert all(s % hop == 0 and 0 <= s and s + window <= n for s in starts)  # inside the song
    assert all(b - a >= window + spacing for a, b in zip(starts, starts[1:], strict=False))
    # The best window is always among them.
    assert choose_excerpt_start(activity, ANCHORS, TARGETS, window, hop) in starts
    scores = window_scores(activity, ANCHORS, TARGETS, window)
    best = choose_excerpt_start(activity, ANCHORS, TARGETS, window, hop)
    assert scores[best] == scores[np.arange(0, len(scores), hop)].max()
    # Greedy stops only when every other start collides with a chosen window.
    if len(starts) < count:
        free = [
            c for c in range(0, n - window + 1, hop)
            if all(abs(c - s) >= window + spacing for s in starts)
        ]  # fmt: skip
        assert free == []


# --------------------------------------------------------------------------- one song


def test_a_7_second_song_gives_one_excerpt():
    stem_set = StemSet(tone_stems(7.0), 44100)
    settings = ExcerptSettings(seconds=5.0, per_song=3, min_spacing_seconds=10.0)
    excerpts = extract_song_excerpts(stem_set, ANCHORS, TARGETS, settings)
    assert len(excerpts) == 1 and excerpts[0].seconds == pytest.approx(5.0)
    # Without spacing two 5 s windows would still not fit in 7 s.
    spaced = ExcerptSettings(seconds=5.0, per_song=3, min_spacing_seconds=0.0)
    assert len(extract_song_excerpts(stem_set, ANCHORS, TARGETS, spaced)) == 1
    # A song shorter than one excerpt is used whole.
    short = extract_song_excerpts(StemSet(tone_stems(3.0), 44100), ANCHORS, TARGETS, settings)
    assert [(e.start_s, e.seconds) for e in short] == [(0.0, pytest.approx(3.0))]


def test_a_long_song_gives_per_song_excerpts_each_with_its_own_loudness():
    stems = _synthetic_stems(40.0)
    stem_set = StemSet(stems, SYNTH_RATE)
    settings = ExcerptSettings(seconds=5.0, per_song=3, min_spacing_seconds=2.0)
    excerpts = extract_song_excerpts(stem_set, ANCHORS, TARGETS, settings)
    assert len(excerpts) == 3  # 40 s always holds three 5 s windows 2 s apart
    starts = [e.start_s for e in excerpts]
    assert starts == sorted(starts) and len(set(starts)) == 3
    assert all(b - a >= 7.0 - 1e-9 for a, b in zip(starts, starts[1:], strict=False))
    for excerpt in excerpts:
        assert excerpt.seconds == pytest.approx(5.0)
        assert excerpt.start_s + excerpt.seconds <= 40.0 + 1e-9
        start = int(round(excerpt.start_s * SYNTH_RATE))
        for stem, data in stems.items():
            clip = data[start : start + int(5.0 * SYNTH_RATE)]
            assert excerpt.lufs[stem] == pytest.approx(
                integrated_loudness(clip, SYNTH_RATE), abs=1e-3
            )
            assert excerpt.audio[stem].shape == (5 * 16000,)
    assert len({e.lufs["vocals"] for e in excerpts}) == 3  # measured on each own stretch
    # The single best window (as before) is one of them.
    best = extract_excerpt(stem_set, ANCHORS, TARGETS, settings)
    assert best.start_s in starts
    # With the default 10 s spacing, the windows keep 10 s between them.
    spaced = extract_song_excerpts(stem_set, ANCHORS, TARGETS, ExcerptSettings(seconds=5.0))
    assert 2 <= len(spaced) <= 3
    assert all(
        b.start_s - (a.start_s + a.seconds) >= 10.0 - 1e-9
        for a, b in zip(spaced, spaced[1:], strict=False)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"per_song": 0}, "ingestion.excerpt.per_song must be at least 1, got 0"),
        ({"per_song": 1.5}, "ingestion.excerpt.per_song must be at least 1, got 1.5"),
        ({"per_song": True}, "ingestion.excerpt.per_song must be at least 1, got True"),
        ({"min_spacing_seconds": -1.0}, "ingestion.excerpt.min_spacing_seconds must be a number >= 0, got -1.0"),
        ({"min_spacing_seconds": float("nan")}, "ingestion.excerpt.min_spacing_seconds must be a number >= 0"),
        ({"min_spacing_seconds": "10"}, "ingestion.excerpt.min_spacing_seconds must be a number >= 0"),
    ],
)  # fmt: skip
def test_settings_name_the_bad_parameter(change, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        ExcerptSettings(**change)
    assert ExcerptSettings(per_song=1, min_spacing_seconds=0).per_song == 1


def test_the_parameters_file_sets_the_defaults():
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters/ingestion.yml").read_text())
    excerpt = params["ingestion"]["excerpt"]
    assert (excerpt["per_song"], excerpt["min_spacing_seconds"]) == (3, 10.0)
    settings = ExcerptSettings()
    assert (settings.per_song, settings.min_spacing_seconds) == (3, 10.0)


def test_excerpt_ids_number_a_songs_later_excerpts():
    assert ingestion.excerpt_id_for("A Song - Live!") == "A_Song_Live"
    assert ingestion.excerpt_id_for("A Song - Live!", 2) == "A_Song_Live__2"
    keys = ["Tune__3", "Tune_Short", "Tune", "Tune__2", "Tune_Short__2", "Tune__x"]
    assert ingestion.excerpt_ids_of("Tune", keys) == ["Tune", "Tune__2", "Tune__3"]
    assert ingestion.excerpt_ids_of("Tune_Short", keys) == ["Tune_Short", "Tune_Short__2"]


# --------------------------------------------------------------------------- the nodes


@pytest.fixture
def corpus(tmp_path) -> MusdbCorpus:
    """A 40 s song (test split) and a 6 s one (train) whose ids interleave when sorted:
    "Tune", "Tune_Short", "Tune_Short__2", ..., "Tune__2"."""
    write_hq_song(tmp_path / "musdb", "test", "Tune", _synthetic_stems(40.0), rate=SYNTH_RATE)
    write_hq_song(tmp_path / "musdb", "train", "Tune Short", _synthetic_stems(6.0, seed=2),
                  rate=SYNTH_RATE)  # fmt: skip
    return discover_corpus(tmp_path / "musdb")


EXCERPT = {"seconds": 5.0, "hop_seconds": 0.5, "per_song": 3, "min_spacing_seconds": 2.0}
ALL_IDS = ["Tune", "Tune_Short", "Tune_Short__2", "Tune_Short__3", "Tune__2", "Tune__3"]
USED = ["Tune", "Tune_Short", "Tune__2", "Tune__3"]


def _count_decodes(monkeypatch) -> Counter:
    decoded: Counter = Counter()
    original = MusdbCorpus.load_stems

    def counting(self, track, stems=ingestion.STEM_NAMES):
        decoded[track.name] += 1
        return original(self, track, stems)

    monkeypatch.setattr(MusdbCorpus, "load_stems", counting)
    return decoded


def _check_outputs(corpus, tracks, excerpts, loudness, summary):
    assert sorted(excerpts) == ALL_IDS
    assert sorted(loudness["excerpt_id"].unique()) == USED  # unused ids are not there
    assert len(loudness) == 4 * len(USED)
    songs = loudness.groupby("excerpt_id")["song"].first().to_dict()
    assert songs == {
        "Tune": "Tune",
        "Tune__2": "Tune",
        "Tune__3": "Tune",
        "Tune_Short": "Tune Short",
    }
    assert summary["songs_listed"] == summary["songs_ingested"] == 2
    assert summary["excerpts_ingested"] == 4 and summary["songs_skipped"] == {}
    for unused in ["Tune_Short__2", "Tune_Short__3"]:
        record = excerpts[unused]()
        assert record["meta"]["unused"] is True and record["meta"]["error"] is None
        assert record["audio"] == {} and record["meta"]["song"] == "Tune Short"
    windows = loudness.drop_duplicates("excerpt_id").set_index("excerpt_id")
    starts = [windows.loc[e, "excerpt_start_s"] for e in ["Tune", "Tune__2", "Tune__3"]]
    assert starts == sorted(starts) and len(set(starts)) == 3  # ids in time order
    assert (windows["excerpt_seconds"] == 5.0).all()
    assert windows.loc["Tune_Short", "excerpt_start_s"] <= 1.0
    # Each excerpt's loudness is measured on its own stretch of the song at the native rate.
    original = corpus.load_stems(corpus.track("Tune")).stems
    for excerpt_id in ["Tune", "Tune__2", "Tune__3"]:
        start = int(round(windows.loc[excerpt_id, "excerpt_start_s"] * SYNTH_RATE))
        rows = loudness[loudness["excerpt_id"] == excerpt_id].set_index("stem")
        for stem, data in original.items():
            expected = integrated_loudness(data[start : start + 5 * SYNTH_RATE], SYNTH_RATE)
            assert rows.loc[stem, "lufs"] == pytest.approx(expected, abs=1e-3)
        meta = excerpts[excerpt_id]()["meta"]
        assert meta["start_s"] == pytest.approx(windows.loc[excerpt_id, "excerpt_start_s"])
    return windows


def _check_source_rate(corpus, tracks, excerpts, windows):
    empty = MusdbCorpus(root=None)
    source = ingestion.extract_source_rate_excerpts(corpus, empty, tracks, excerpts,
                                                    {"splits": ["test"]})  # fmt: skip
    assert sorted(source) == ["Tune", "Tune__2", "Tune__3"]
    original = corpus.load_stems(corpus.track("Tune")).stems
    for excerpt_id in sorted(source):
        meta, audio = source[excerpt_id]()["meta"], source[excerpt_id]()["audio"]
        assert meta["start_s"] == pytest.approx(windows.loc[excerpt_id, "excerpt_start_s"])
        assert (meta["seconds"], meta["sample_rate"], meta["channels"]) == (5.0, SYNTH_RATE, 2)
        assert meta["error"] is None and meta["song"] == "Tune"
        start = int(round(meta["start_s"] * SYNTH_RATE))
        for stem, clip in audio.items():
            assert clip.shape == (5 * SYNTH_RATE, 2)
            np.testing.assert_array_equal(clip, original[stem][start : start + len(clip)])
    everything = ingestion.extract_source_rate_excerpts(corpus, empty, tracks, excerpts,
                                                        {"splits": None})  # fmt: skip
    assert sorted(everything) == USED  # no record for an unused id
    assert everything["Tune_Short"]()["meta"]["start_s"] == pytest.approx(
        windows.loc["Tune_Short", "excerpt_start_s"]
    )


def test_the_nodes_give_each_excerpt_its_id_loudness_and_source_rate_record(corpus, monkeypatch):
    empty = MusdbCorpus(root=None)
    tracks = ingestion.list_tracks(corpus, empty, SPLITS)
    assert sorted(tracks["excerpt_id"]) == ["Tune", "Tune_Short"]  # one row per song
    decoded = _count_decodes(monkeypatch)
    excerpts = ingestion.extract_excerpts(corpus, empty, tracks, EXCERPT, PAIRS)
    loudness, summary = ingestion.tabulate_loudness(excerpts)
    # Each song decoded once for all its excerpts, though its ids interleave with the other's.
    assert decoded == {"Tune": 1, "Tune Short": 1}
    windows = _check_outputs(corpus, tracks, excerpts, loudness, summary)
    _check_source_rate(corpus, tracks, excerpts, windows)


def test_the_catalog_saves_and_reads_back_unused_records(corpus, tmp_path, monkeypatch):
    text = (PROJECT_ROOT / "conf/base/catalog/ingestion.yml").read_text()
    config = yaml.safe_load(text.replace("${globals:data_root}", str(tmp_path / "data")))
    entries = {name: config[name] for name in ["excerpts", "source_rate_excerpts"]}
    for entry in entries.values():
        entry.pop("metadata", None)
    catalog = DataCatalog.from_config(entries)
    empty = MusdbCorpus(root=None)
    tracks = ingestion.list_tracks(corpus, empty, SPLITS)
    decoded = _count_decodes(monkeypatch)
    catalog.save("excerpts", ingestion.extract_excerpts(corpus, empty, tracks, EXCERPT, PAIRS))
    assert decoded == {"Tune": 1, "Tune Short": 1}  # saved in sorted, interleaved order
    files = sorted(p.name for p in (tmp_path / "data/02_intermediate/excerpts").iterdir())
    assert files == [f"{e}.npz" for e in ALL_IDS]
    excerpts = catalog.load("excerpts")
    loudness, summary = ingestion.tabulate_loudness(excerpts)
    windows = _check_outputs(corpus, tracks, excerpts, loudness, summary)
    source = ingestion.extract_source_rate_excerpts(corpus, empty, tracks, excerpts,
                                                    {"splits": None})  # fmt: skip
    catalog.save("source_rate_excerpts", source)
    saved = catalog.load("source_rate_excerpts")
    assert sorted(saved) == USED
    assert saved["Tune__3"]()["meta"]["start_s"] == pytest.approx(
        windows.loc["Tune__3", "excerpt_start_s"]
    )
    _check_source_rate(corpus, tracks, excerpts, windows)


def test_a_song_that_fails_is_skipped_once_with_all_its_ids(corpus):
    (corpus.track("Tune Short").path / "vocals.wav").unlink()
    empty = MusdbCorpus(root=None)
    tracks = ingestion.list_tracks(corpus, empty, SPLITS)
    excerpts = ingestion.extract_excerpts(corpus, empty, tracks, EXCERPT, PAIRS)
    loudness, summary = ingestion.tabulate_loudness(excerpts)
    assert list(summary["songs_skipped"]) == ["Tune Short"]
    assert (summary["songs_listed"], summary["songs_ingested"], summary["excerpts_ingested"]) == (
        2, 1, 3,
    )  # fmt: skip
    assert sorted(loudness["excerpt_id"].unique()) == ["Tune", "Tune__2", "Tune__3"]
    source = ingestion.extract_source_rate_excerpts(corpus, empty, tracks, excerpts,
                                                    {"splits": None})  # fmt: skip
    assert sorted(source) == ["Tune", "Tune_Short", "Tune__2", "Tune__3"]
    assert "vocals.wav" in source["Tune_Short"]()["meta"]["error"]


def test_the_real_7_second_clips_keep_one_excerpt_each(shared_musdb):
    corpus = discover_corpus(shared_musdb)
    empty = MusdbCorpus(root=None)
    tracks = ingestion.list_tracks(corpus, empty, SPLITS).head(2)
    excerpts = ingestion.extract_excerpts(corpus, empty, tracks, EXCERPT, PAIRS)
    assert len(excerpts) == 6
    loudness, summary = ingestion.tabulate_loudness(excerpts)
    assert sorted(loudness["excerpt_id"].unique()) == sorted(tracks["excerpt_id"])
    assert summary["excerpts_ingested"] == 2
    assert (loudness["excerpt_seconds"] == 5.0).all()
