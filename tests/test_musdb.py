"""MUSDB18 discovery in both layouts, genres, splits and stem-name validation."""

from __future__ import annotations

import numpy as np
import pytest

from anchormix_kedro.instruction_data.audio import AudioError
from anchormix_kedro.instruction_data.musdb import (
    MUSDB_VALIDATION_TRACKS,
    UNKNOWN_GENRE,
    assign_splits,
    discover_corpus,
    genre_of,
    shipped_genres,
    validate_stem_names,
)
from conftest import tone_stems, write_hq_song, write_stem_mp4


def test_discovers_stem_mp4_and_hq_layouts_with_split_folders(tmp_path):
    write_stem_mp4(tmp_path / "train" / "Leaf - Summerghost.stem.mp4", tone_stems(1.0))
    write_hq_song(tmp_path, "test", "Al James - Schoolboy Facination", tone_stems(1.0))
    (tmp_path / "train" / "notes.txt").write_text("ignored")
    corpus = discover_corpus(tmp_path)
    assert [(t.name, t.folder, t.layout) for t in corpus.tracks] == [
        ("Leaf - Summerghost", "train", "stem_mp4"),
        ("Al James - Schoolboy Facination", "test", "wav_folder"),
    ]
    assert corpus.tracks[0].genre == "Pop/Rock"
    stems = corpus.load_stems(corpus.tracks[1])
    assert set(stems.stems) == {"drums", "bass", "other", "vocals"} and stems.sample_rate == 44100


def test_a_root_with_only_test_is_valid(tmp_path):
    write_hq_song(tmp_path, "test", "Song A", tone_stems(1.0))
    assert [t.folder for t in discover_corpus(tmp_path).tracks] == ["test"]


def test_empty_and_missing_roots_raise_naming_the_root(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path} holds no songs"):
        discover_corpus(tmp_path)
    with pytest.raises(FileNotFoundError, match="does-not-exist does not exist; set MUSDB_PATH"):
        discover_corpus(tmp_path / "does-not-exist")


def test_genres_match_the_two_known_spelling_differences_and_default_to_unknown():
    genres = shipped_genres()
    assert len(genres) == 150
    assert (
        genre_of("Patrick Talbot - Set Me Free", genres)
        == genre_of("Patrick Talbot - Set Free Me", genres)
        != UNKNOWN_GENRE
    )
    assert genre_of("Jokers, Jacks & Kings - Sea Of Leaves", genres) != UNKNOWN_GENRE
    assert genre_of("Nobody - Never Released", genres) == UNKNOWN_GENRE


def test_a_root_tracklist_adds_genres(tmp_path):
    write_hq_song(tmp_path, "train", "Synthetic - Rap 001", tone_stems(1.0))
    (tmp_path / "tracklist.csv").write_text(
        "Track Name,Genre,Source,License\nSynthetic - Rap 001,Rap,x,y\n"
    )
    assert discover_corpus(tmp_path).tracks[0].genre == "Rap"


def test_song_folder_without_wav_files_names_what_is_missing(tmp_path):
    (tmp_path / "train" / "Empty Song").mkdir(parents=True)
    corpus = discover_corpus(tmp_path)
    with pytest.raises(
        AudioError,
        match=r"Empty Song: missing stem file\(s\) drums.wav, bass.wav, other.wav, vocals.wav \(found: no wav files\)",
    ):
        corpus.load_stems(corpus.tracks[0])


def test_missing_single_stem_and_nan_samples_are_reported(tmp_path):
    song = write_hq_song(tmp_path, "train", "Song A", tone_stems(1.0))
    (song / "vocals.wav").unlink()
    stems = tone_stems(1.0)
    stems["bass"][5, 1] = np.nan
    write_hq_song(tmp_path, "train", "Song B", stems)
    corpus = discover_corpus(tmp_path)
    with pytest.raises(
        AudioError,
        match=r"missing stem file\(s\) vocals.wav \(found: bass.wav, drums.wav, mixture.wav, other.wav\)",
    ):
        corpus.load_stems(corpus.track("Song A"))
    with pytest.raises(AudioError, match="Song B: stem 'bass' holds 1 NaN"):
        corpus.load_stems(corpus.track("Song B"))


def test_musdb_splits_with_validation_songs_and_test_folder(tmp_path):
    for name in ["Leaf - Summerghost", "Song A", "Song B"]:
        write_hq_song(tmp_path, "train", name, tone_stems(0.5))
    write_hq_song(tmp_path, "test", "Song T", tone_stems(0.5))
    tracks = discover_corpus(tmp_path).tracks
    splits = assign_splits(tracks, MUSDB_VALIDATION_TRACKS, {"valid": 0.5, "test": 0.5}, seed=1)
    # Nothing is carved: valid and test already have songs.
    assert splits == {
        "Leaf - Summerghost": "valid",
        "Song A": "train",
        "Song B": "train",
        "Song T": "test",
    }


def test_missing_split_is_carved_by_name_not_by_listing_order(tmp_path):
    names = [f"Song {i:02d}" for i in range(20)]
    for name in names:
        write_hq_song(tmp_path, "train", name, tone_stems(0.5))
    tracks = discover_corpus(tmp_path).tracks
    splits = assign_splits(tracks, [], {"test": 0.2}, seed=3)
    assert sum(s == "test" for s in splits.values()) == 4
    assert assign_splits(list(reversed(tracks)), [], {"test": 0.2}, seed=3) == splits
    with pytest.raises(ValueError, match="carve_when_missing.test must be in"):
        assign_splits(tracks, [], {"test": 1.5}, seed=3)


def test_unknown_stem_name_in_configuration_lists_the_known_ones():
    assert validate_stem_names(["drums", "vocals"], "pairs.anchors") == ["drums", "vocals"]
    with pytest.raises(
        ValueError,
        match=r"unknown stem name\(s\) \['vocal'\] in pairs.targets; MUSDB18 stems are drums, bass, other, vocals",
    ):
        validate_stem_names(["vocal"], "pairs.targets")
