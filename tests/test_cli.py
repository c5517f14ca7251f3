"""`anchormix advise`: loading stems and session tracks, windows, the graded verdict against
professional mixes, the genre, a fine-tuned model beside the measurement, and the output."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from anchormix_kedro import commands as cli
from anchormix_kedro.advise.analysis import choose_windows
from anchormix_kedro.evaluation.dsp_baseline import (
    dsp_advice,
    fader_move_db,
    judge_balance,
    judge_pair,
    shipped_conventions,
)
from anchormix_kedro.evaluation.professional_range import (
    LOUD_SIDE,
    QUIET_SIDE,
    WITHIN_USUAL_RANGE,
    percentile_of,
    quantile,
    shipped_levels,
)
from anchormix_kedro.instruction_data.audio import apply_gain_db, resample
from anchormix_kedro.instruction_data.conventions import CONVENTION_COLUMNS
from anchormix_kedro.instruction_data.synthetic import plan_corpus, synthesize_song
from anchormix_kedro.vocabulary import BALANCED, STEM_NAMES, TOO_LOUD, TOO_SOFT
from conftest import tone, tone_stems, write_stem_mp4

RATE = 22050


def synthetic_stems(seconds: float, rate: int = RATE, seed: int = 5) -> dict[str, np.ndarray]:
    """A Pop/Rock song from the synthetic generator, vocals included."""
    (plan,) = plan_corpus(1, seconds, seed, genres=["Pop/Rock"], instrumental_fraction=0.0)
    return synthesize_song(plan, sample_rate=rate)


def write_stems(
    folder: Path, stems: dict[str, np.ndarray], rate: int = RATE, ext: str = "wav"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, audio in stems.items():
        soundfile.write(str(folder / f"{stem}.{ext}"), audio, rate)
    return folder


def advise_json(capsys, *args: str) -> tuple[dict, str]:
    """Run ``anchormix advise --json`` in-process: the parsed object and stderr."""
    code = cli.main(["advise", *args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def advise_error(capsys, *args: str) -> str:
    """Run a command that must fail; returns its one-line error."""
    code = cli.main(["advise", *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("anchormix: error: ")]
    assert len(errors) == 1 and "Traceback" not in err
    return errors[0]


def target(result: dict, stem: str) -> dict:
    return next(t for t in result["targets"] if t["stem"] == stem)


@pytest.fixture(scope="module")
def song_stems() -> dict[str, np.ndarray]:
    return synthetic_stems(12.0)


@pytest.fixture(scope="module")
def song_folder(song_stems, tmp_path_factory) -> Path:
    return write_stems(tmp_path_factory.mktemp("songs") / "My Song", song_stems)


# --------------------------------------------------------------------------- the DSP baseline


def test_judge_balance_at_the_tolerance_boundary():
    # The pipeline's yardstick keeps its definition: within ±1.5 dB of the genre median.
    assert judge_balance(-20.0, -16.0, 2.5) == (BALANCED, pytest.approx(1.5))
    assert judge_balance(-20.0, -16.0, 2.49)[0] == TOO_LOUD
    assert judge_balance(-20.0, -19.0, 2.5) == (BALANCED, pytest.approx(-1.5))
    assert judge_balance(-20.0, -19.0, 2.51)[0] == TOO_SOFT
    assert judge_balance(-20.0, -16.0, 2.5, tolerance_db=1.0)[0] == TOO_LOUD
    assert fader_move_db(TOO_LOUD, 3.5) == -3.5
    assert fader_move_db(BALANCED, 1.2) == 0.0


def test_dsp_advice_uses_the_dataset_templates_deterministically():
    convention = {"genre": "Rap", "median_db": 3.2}
    first = dsp_advice(TOO_LOUD, "drums", "vocals", 4.2, "song|drums>vocals", convention)
    assert first == dsp_advice(TOO_LOUD, "drums", "vocals", 4.2, "song|drums>vocals", convention)
    assert "4 dB" in first and "vocal fader" in first
    assert first.endswith("In Rap mixes, the vocal usually sits about 3 dB above the drums.")
    pooled = dsp_advice(BALANCED, "drums", "bass", 0.3, "x", {"genre": "all", "median_db": -1.3})
    assert "Across genres, the bass usually sits about 1 dB below the drums." in pooled
    judgement = judge_pair("drums", "vocals", 10.0, convention, "song", mention_convention=False)
    assert (judgement.label, judgement.fader_move_db) == (TOO_LOUD, pytest.approx(-6.8))
    assert "Rap" not in judgement.advice


def test_shipped_conventions_and_levels_hold_all_twelve_pairs():
    conventions = shipped_conventions()
    assert list(conventions.columns) == CONVENTION_COLUMNS
    pooled = conventions[conventions["genre"] == "all"].set_index(["anchor", "target"])
    pairs = {(a, t) for a in STEM_NAMES for t in STEM_NAMES if a != t}
    assert set(pooled.index) == pairs
    # Measured on MUSDB18's training songs: 80 of them (94 clips minus 14 validation songs).
    assert pooled["n_songs"].between(70, 86).all()
    levels = shipped_levels()
    for anchor, target_ in pairs:
        assert pooled.loc[(anchor, target_), "median_db"] == pytest.approx(
            -pooled.loc[(target_, anchor), "median_db"], abs=0.02
        )
        # The per-song levels behind the percentiles are the conventions' songs.
        distribution = levels.distribution("all", anchor, target_)
        assert distribution.n_songs == pooled.loc[(anchor, target_), "n_songs"]
        assert distribution.median_db == pytest.approx(
            pooled.loc[(anchor, target_), "median_db"], abs=0.02
        )
    assert {"Pop/Rock", "Rap", "Heavy Metal"} <= set(conventions["genre"])


# --------------------------------------------------------------------------- graded verdict


def test_levels_are_graded_by_where_they_sit_among_professional_mixes(capsys, song_stems, tmp_path):
    measured, _ = advise_json(capsys, str(write_stems(tmp_path / "raw", song_stems)))
    start = target(measured, "vocals")["relative_db"]
    values = shipped_levels().distribution("all", "drums", "vocals").values
    usual = (quantile(values, 25), quantile(values, 75))
    outer = (quantile(values, 10), quantile(values, 90))
    cases = {
        "median": (float(np.median(values)), WITHIN_USUAL_RANGE, BALANCED),
        "loud side": ((usual[1] + outer[1]) / 2, LOUD_SIDE, BALANCED),
        "quiet side": ((usual[0] + outer[0]) / 2, QUIET_SIDE, BALANCED),
        "too loud": (outer[1] + 3.0, TOO_LOUD, TOO_LOUD),
        "too soft": (outer[0] - 3.0, TOO_SOFT, TOO_SOFT),
    }
    for name, (level, grade, verdict) in cases.items():
        stems = {**song_stems, "vocals": apply_gain_db(song_stems["vocals"], level - start)}
        result, _ = advise_json(capsys, str(write_stems(tmp_path / name, stems)))
        vocals = target(result, "vocals")
        assert vocals["relative_db"] == pytest.approx(level, abs=0.05), name
        assert (vocals["grade"], vocals["verdict"]) == (grade, verdict), name
        assert vocals["usual_range_db"] == pytest.approx(list(usual), abs=0.01)
        assert vocals["outer_range_db"] == pytest.approx(list(outer), abs=0.01)
        assert vocals["percentile"] == pytest.approx(percentile_of(values, level), abs=0.6)
        assert vocals["range_genre"] == "all" and vocals["range_songs"] == len(values)
        if verdict == BALANCED:
            assert vocals["fader_move_db"] == 0.0 and "into the usual range" not in (
                vocals["advice"] if grade == WITHIN_USUAL_RANGE else ""
            )
        else:
            # The move ends at the edge of the usual range, not at the median.
            edge = usual[1] if verdict == TOO_LOUD else usual[0]
            assert vocals["fader_move_db"] == pytest.approx(edge - level, abs=0.1)
            assert "into the usual range" in vocals["advice"]
    assert "within the usual range" in target(result, "bass")["advice"] or target(result, "bass")[
        "grade"
    ] in (LOUD_SIDE, QUIET_SIDE, TOO_LOUD, TOO_SOFT)

    # Following the advice of the too loud case brings the vocal back into the usual range.
    level = outer[1] + 3.0
    loud = {**song_stems, "vocals": apply_gain_db(song_stems["vocals"], level - start)}
    result, _ = advise_json(capsys, str(write_stems(tmp_path / "loud again", loud)))
    move = target(result, "vocals")["fader_move_db"]
    fixed = {**loud, "vocals": apply_gain_db(loud["vocals"], move)}
    after, _ = advise_json(capsys, str(write_stems(tmp_path / "fixed", fixed)))
    assert target(after, "vocals")["relative_db"] == pytest.approx(usual[1], abs=0.1)
    assert target(after, "vocals")["verdict"] == BALANCED

    # The outer percentiles are the user's choice: 25-75 calls the loud side too loud.
    stems = {**song_stems, "vocals": apply_gain_db(song_stems["vocals"], cases["loud side"][0] - start)}  # fmt: skip
    folder = write_stems(tmp_path / "narrow", stems)
    narrow, _ = advise_json(capsys, str(folder), "--outer-percentiles", "25,75")
    assert target(narrow, "vocals")["grade"] == TOO_LOUD
    assert narrow["outer_percentiles"] == [25.0, 75.0]
    assert cli.main(["advise", str(folder), "--outer-percentiles", "90,10"]) == 2
    assert "expected LOW,HIGH percentiles" in capsys.readouterr().err
    clash = advise_error(capsys, str(folder), "--outer-percentiles", "30,70")
    assert "--usual-percentiles and --outer-percentiles" in clash and "usual 25-75" in clash


def test_json_output_is_one_object_with_every_field(capsys, song_folder):
    result, _ = advise_json(capsys, str(song_folder), "--genre", "pop/rock")
    assert {"song", "anchor", "genre", "model", "targets", "warnings", "stem_files"} <= set(result)
    assert (result["song"], result["anchor"], result["genre"]) == ("My Song", "drums", "Pop/Rock")
    assert result["genre_source"] == "--genre" and result["model"] is None
    # Every target's verdict is the measurement's; a model's stands apart, under "model".
    assert "verdict_by" not in result and all(t["model"] is None for t in result["targets"])
    assert result["model"] is None and result["warnings"] == []
    assert (result["usual_percentiles"], result["outer_percentiles"]) == (
        [25.0, 75.0],
        [10.0, 90.0],
    )
    assert [t["stem"] for t in result["targets"]] == ["bass", "other", "vocals"]
    for entry in result["targets"]:
        assert entry["status"] == "active" and entry["model"] is None
        assert entry["verdict"] in (BALANCED, TOO_LOUD, TOO_SOFT)
        low, high = entry["usual_range_db"]
        assert entry["outer_range_db"][0] <= low < high <= entry["outer_range_db"][1]
        assert 0.0 <= entry["percentile"] <= 100.0
        assert isinstance(entry["relative_db"], float) and isinstance(entry["convention_db"], float)
        assert isinstance(entry["fader_move_db"], float) and entry["advice"]
        ((start, end),) = entry["windows"]  # 12 s hold one 10 s window
        assert end - start == 10.0


def test_the_text_report_shows_percentile_range_files_and_advice(capsys, song_folder):
    assert cli.main(["advise", str(song_folder)]) == 0
    text = capsys.readouterr().out
    assert "percentile" in text and "usual range" in text and "measurement" in text
    assert "Stems:   drums <- drums.wav; bass <- bass.wav" in text
    vocals_row = next(line for line in text.splitlines() if line.startswith("vocals "))
    assert re.search(r"[+-]\d+\.\d to [+-]\d+\.\d dB", vocals_row)  # the usual range
    assert "0.0-10.0 s" in vocals_row
    assert "vocals: The vocal is" in text and "percentile of professional mixes" in text


# --------------------------------------------------------------------------- genres


def test_genre_from_the_track_list_from_the_option_or_all(capsys, song_stems, tmp_path):
    folder = write_stems(tmp_path / "Young Griffo - Pennies", song_stems)
    result, _ = advise_json(capsys, str(folder))
    assert (result["genre"], result["genre_source"]) == ("Heavy Metal", "MUSDB18 track list")
    chosen, _ = advise_json(capsys, str(folder), "--genre", "rap")
    assert (chosen["genre"], chosen["genre_source"]) == ("Rap", "--genre")
    unknown, err = advise_json(capsys, str(folder), "--genre", "Polka")
    assert unknown["genre"] == "all" and "no shipped conventions for genre 'Polka'" in err
    assert "Pop/Rock" in err
    # A MUSDB18 song of a genre without conventions (a test-set genre) falls back, saying why.
    reggae, err = advise_json(
        capsys, str(write_stems(tmp_path / "Arise - Run Run Run", song_stems))
    )
    assert reggae["genre"] == "all" and "is a MUSDB18 Reggae song" in err


def test_help_lists_the_genres(capsys):
    assert cli.main(["advise", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    genres = sorted(set(shipped_conventions()["genre"]) - {"all"})
    assert all(genre in shown for genre in genres) and "--stem GROUP=FILE" in shown


def test_genre_ranges_use_a_genres_own_songs_when_it_has_enough(capsys, song_folder):
    pooled, _ = advise_json(capsys, str(song_folder), "--genre", "Pop/Rock")
    own, _ = advise_json(capsys, str(song_folder), "--genre", "Pop/Rock", "--genre-ranges")
    values = shipped_levels(10).distribution("Pop/Rock", "drums", "vocals").values
    assert target(pooled, "vocals")["range_genre"] == "all"
    vocals = target(own, "vocals")
    assert vocals["range_genre"] == "Pop/Rock" and vocals["range_songs"] == len(values) >= 10
    assert vocals["usual_range_db"] == pytest.approx(
        [quantile(values, 25), quantile(values, 75)], abs=0.01
    )
    # Rap has 4 songs: its ranges stay those of every genre.
    rap, _ = advise_json(capsys, str(song_folder), "--genre", "Rap", "--genre-ranges")
    assert {t["range_genre"] for t in rap["targets"]} == {"all"}


def test_other_anchors(capsys, song_folder):
    result, _ = advise_json(capsys, str(song_folder), "--anchor", "Vocals")
    assert result["anchor"] == "vocals"
    assert [t["stem"] for t in result["targets"]] == ["drums", "bass", "other"]
    values = shipped_levels().distribution("all", "vocals", "drums").values
    drums = target(result, "drums")
    assert drums["percentile"] == pytest.approx(
        percentile_of(values, drums["relative_db"]), abs=0.6
    )


# --------------------------------------------------------------------------- session stems


def test_session_tracks_are_grouped_summed_and_listed(capsys, song_stems, tmp_path):
    session = tmp_path / "Session"
    session.mkdir()
    parts = {
        "Kick In.wav": song_stems["drums"] * 0.6,
        "Snare Top.wav": song_stems["drums"] * 0.3,
        "OH L.wav": song_stems["drums"] * 0.1,
        "Bass DI.wav": song_stems["bass"],
        "Lead Vox.wav": song_stems["vocals"] * 0.8,
        "BV 1.wav": song_stems["vocals"] * 0.2,
        "Gtr L.wav": song_stems["other"] * 0.5,
        "Keys.wav": song_stems["other"] * 0.5,
        "Mix.wav": sum(song_stems.values()),
    }
    for name, audio in parts.items():
        soundfile.write(str(session / name), audio, RATE, subtype="FLOAT")
    result, err = advise_json(capsys, str(session))
    assert result["stem_files"] == {
        "drums": ["Kick In.wav", "OH L.wav", "Snare Top.wav"],
        "bass": ["Bass DI.wav"],
        "other": ["Gtr L.wav", "Keys.wav"],
        "vocals": ["BV 1.wav", "Lead Vox.wav"],
    }
    assert result["not_stems"] == ["Mix.wav"] and err == ""
    reference, _ = advise_json(capsys, str(write_stems(tmp_path / "plain", song_stems)))
    for stem in ("bass", "other", "vocals"):  # the groups sum back to the stems
        assert target(result, stem)["relative_db"] == pytest.approx(
            target(reference, stem)["relative_db"], abs=0.05
        )
    cli.main(["advise", str(session)])
    text = capsys.readouterr().out
    assert "drums <- Kick In.wav, OH L.wav, Snare Top.wav" in text
    assert "not used (a whole mix): Mix.wav" in text


def test_stem_overrides_and_extra_words(capsys, song_stems, tmp_path):
    session = tmp_path / "Takes"
    session.mkdir()
    for name, audio in {
        "Drums.wav": song_stems["drums"],
        "Take 3.wav": song_stems["vocals"],
        "Gang.wav": song_stems["bass"],
    }.items():
        soundfile.write(str(session / name), audio, RATE)
    plain, _ = advise_json(capsys, str(session))
    assert plain["stem_files"] == {"drums": ["Drums.wav"], "other": ["Gang.wav", "Take 3.wav"]}
    forced, _ = advise_json(
        capsys, str(session), "--stem", "vocals=Take 3.wav", "--stem", "BASS=gang.wav"
    )
    assert forced["stem_files"] == {
        "drums": ["Drums.wav"],
        "bass": ["Gang.wav"],
        "vocals": ["Take 3.wav"],
    }
    words = tmp_path / "words.yml"
    words.write_text("vocals: [take]\nbass: [gang]\n")
    worded, _ = advise_json(capsys, str(session), "--stem-words", str(words))
    assert worded["stem_files"] == forced["stem_files"]

    missing = advise_error(capsys, str(session), "--stem", "vocals=Lead Vox.wav")
    assert "no such audio file" in missing and "Drums.wav, Gang.wav, Take 3.wav" in missing
    assert cli.main(["advise", str(session), "--stem", "piano=Gang.wav"]) == 2
    assert "unknown stem group 'piano'" in capsys.readouterr().err
    words.write_text("keyboards: [keys]\n")
    assert "unknown stem group(s) ['keyboards']" in advise_error(
        capsys, str(session), "--stem-words", str(words)
    )


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("Kick In", "drums"), ("SNR_top", "drums"), ("OH L", "drums"), ("Hi-Hat", "drums"),
        ("Bass Drum", "drums"), ("Room Mics", "drums"), ("Toms 2", "drums"),
        ("Lead Vox", "vocals"), ("LeadVox", "vocals"), ("BV 2", "vocals"), ("Lead", "vocals"),
        ("Backing L", "vocals"), ("Harmonies", "vocals"), ("vocals", "vocals"),
        ("Bass DI", "bass"), ("Synth Bass", "bass"), ("Sub", "bass"), ("808", "bass"),
        ("Lead Guitar", "other"), ("Keys", "other"), ("Piano L", "other"), ("Strings", "other"),
        ("other", "other"), ("Take 3", "other"),
    ],
)  # fmt: skip
def test_common_track_names_map_to_stem_groups(name, group):
    from anchormix_kedro.advise.session import group_of

    assert group_of(name) == group


# --------------------------------------------------------------------------- silence and time


def test_a_silent_stem_is_reported_without_advice(capsys, song_stems, tmp_path):
    stems = {**song_stems, "vocals": np.zeros_like(song_stems["vocals"])}
    result, _ = advise_json(capsys, str(write_stems(tmp_path / "instrumental", stems)))
    vocals = target(result, "vocals")
    assert vocals["status"] == "silent"
    assert vocals["advice"] is None and vocals["verdict"] is None and vocals["windows"] == []
    assert vocals["percentile"] is None and vocals["usual_range_db"] is None
    assert target(result, "bass")["status"] == "active"
    cli.main(["advise", str(tmp_path / "instrumental")])
    assert "vocals: silent in the whole song; no advice." in capsys.readouterr().out


def test_stems_that_never_play_together_get_no_advice(capsys, tmp_path):
    half = tone(110.0, 4.0, 0.2, rate=RATE)
    silence = np.zeros_like(half)
    stems = {
        "drums": np.concatenate([half, silence]),
        "bass": np.concatenate([silence, half]),
        "vocals": np.concatenate([half, half]),
    }
    result, err = advise_json(capsys, str(write_stems(tmp_path / "apart", stems)))
    assert target(result, "bass")["status"] == "not_together"
    assert target(result, "bass")["advice"] is None
    assert "drums and bass never play at the same time" in err
    assert target(result, "vocals")["windows"] == [[0.0, 8.0]]


# --------------------------------------------------------------------------- bad input


def test_unknown_anchor_lists_the_stems_found(capsys, song_folder):
    error = advise_error(capsys, str(song_folder), "--anchor", "piano")
    assert "no stem named 'piano'" in error and "stems found: bass, drums, other, vocals" in error


def test_corrupt_and_unsupported_files_are_named(capsys, song_folder, tmp_path):
    broken = tmp_path / "broken"
    write_stems(broken, tone_stems(2.0))
    (broken / "bass.wav").write_bytes(b"RIFF but not really a wave file")
    error = advise_error(capsys, str(broken))
    assert "bass.wav" in error and "unsupported or corrupt" in error

    extras = tmp_path / "extras"
    write_stems(extras, tone_stems(2.0), rate=44100)
    (extras / "notes.txt").write_text("mix notes")
    (extras / "cover.jpg").write_bytes(b"\xff\xd8")
    result, err = advise_json(capsys, str(extras))
    assert "cover.jpg, notes.txt" in err and "warning" in err
    assert len(result["warnings"]) == 1

    (tmp_path / "Bad Song.stem.mp4").write_bytes(b"\x00" * 64)
    assert "Bad Song.stem.mp4" in advise_error(capsys, str(tmp_path / "Bad Song.stem.mp4"))

    (tmp_path / "single.wav").write_bytes((song_folder / "bass.wav").read_bytes())
    assert ".stem.mp4" in advise_error(capsys, str(tmp_path / "single.wav"))
    assert "no such file or folder" in advise_error(capsys, str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    assert "no stem files found" in advise_error(capsys, str(tmp_path / "empty"))


def test_different_sample_rates_are_resampled_with_a_warning(capsys, song_stems, tmp_path):
    folder = write_stems(tmp_path / "rates", song_stems)
    # The bass exported at 16 kHz and mono.
    bass = resample(song_stems["bass"][:, :1], RATE, 16000)
    soundfile.write(str(folder / "bass.wav"), bass, 16000)
    result, err = advise_json(capsys, str(folder))
    assert "different sample rates" in err and "bass.wav 16000 Hz" in err
    assert f"resampled bass.wav to {RATE} Hz" in err and "'bass.wav' is mono" in err
    reference, _ = advise_json(capsys, str(write_stems(tmp_path / "ref", song_stems)))
    # The synthetic bass sits in the centre: one channel, duplicated, measures like the original.
    assert target(result, "bass")["relative_db"] == pytest.approx(
        target(reference, "bass")["relative_db"], abs=0.3
    )


def test_different_lengths_are_aligned_with_a_warning(capsys, song_stems, tmp_path):
    stems = {**song_stems, "vocals": song_stems["vocals"][: 11 * RATE]}
    result, err = advise_json(capsys, str(write_stems(tmp_path / "lengths", stems)))
    assert "stems differ in length" in err
    assert "vocals.wav 11.00 s" in err and "drums.wav 12.00 s" in err
    assert "trimmed to the shortest, 11.00 s" in err
    ((start, end),) = target(result, "bass")["windows"]
    assert end - start == 10.0 and end <= 11.0


# --------------------------------------------------------------------------- windows


def test_a_full_length_song_is_measured_in_windows_across_it(capsys, tmp_path):
    stems = synthetic_stems(180.0, seed=11)
    # No vocals in the first minute (an instrumental intro).
    stems["vocals"][: 60 * RATE] = 0.0
    folder = write_stems(tmp_path / "Full Song", {s: a for s, a in stems.items() if s != "other"})
    soundfile.write(str(folder / "other.flac"), stems["other"], RATE)
    result, _ = advise_json(capsys, str(folder))
    for entry in result["targets"]:
        windows = entry["windows"]
        assert len(windows) >= 2
        assert all(end - start == pytest.approx(10.0) for start, end in windows)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(windows))  # no overlap
        assert max(start for start, _ in windows) > 60.0  # not all at the start
    bass_starts = [start for start, _ in target(result, "bass")["windows"]]
    assert [int(start // 60) for start in bass_starts] == [0, 1, 2]  # one per third
    vocals = target(result, "vocals")
    assert len(vocals["windows"]) == 2 and min(s for s, _ in vocals["windows"]) >= 60.0
    assert vocals["verdict"] in (BALANCED, TOO_LOUD, TOO_SOFT)


def test_choose_windows_skips_regions_where_the_stems_do_not_play_together():
    frames = 300
    anchor = np.ones(frames, dtype=bool)
    target_ = np.zeros(frames, dtype=bool)
    target_[120:170] = True
    target_[250:290] = True
    windows = choose_windows(anchor, target_, 20, 3, 5, 0.25)
    assert windows == [(120, 140), (250, 270)]
    assert choose_windows(anchor, anchor, 50, 3, 5, 0.25) == [(0, 50), (100, 150), (200, 250)]
    assert choose_windows(anchor[:40], anchor[:40], 50, 3, 5, 0.25) == [(0, 40)]


def test_progress_bar_on_a_terminal(capsys, song_folder, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["advise", str(song_folder)]) == 0
    err = capsys.readouterr().err
    assert "decoding" in err and "s of audio" in err and "analysing" in err


# --------------------------------------------------------------------------- stem files


def test_a_stem_mp4_is_decoded_into_the_four_stems(capsys, tmp_path):
    stems = synthetic_stems(6.0, rate=44100, seed=3)
    path = write_stem_mp4(tmp_path / "Demo Song.stem.mp4", stems, rate=44100)
    result, _ = advise_json(capsys, str(path))
    reference, _ = advise_json(capsys, str(write_stems(tmp_path / "wav", stems, rate=44100)))
    assert result["song"] == "Demo Song"
    assert result["stem_files"]["vocals"] == ["Demo Song.stem.mp4 stream 4"]
    assert [t["stem"] for t in result["targets"]] == ["bass", "other", "vocals"]
    decoded = {s: target(result, s)["relative_db"] for s in ("bass", "other", "vocals")}
    original = {s: target(reference, s)["relative_db"] for s in ("bass", "other", "vocals")}
    # AAC at the writer's bitrate takes about 0.5 dB off the drums' cymbals, the anchor of all
    # three; the targets keep their levels against each other.
    assert decoded == pytest.approx(original, abs=1.0)
    assert decoded["vocals"] - decoded["bass"] == pytest.approx(
        original["vocals"] - original["bass"], abs=0.2
    )
    assert "--stem applies to a folder" in advise_error(capsys, str(path), "--stem", "vocals=x.wav")


@pytest.mark.musdb
def test_real_musdb18_clips_take_their_genre_and_mostly_sit_in_the_usual_range(
    capsys, shared_musdb
):
    clips = sorted((shared_musdb / "train").glob("*.stem.mp4"))[:8]
    grades = []
    for clip in clips:
        result, _ = advise_json(capsys, str(clip))
        assert result["song"] == clip.name.removesuffix(".stem.mp4")
        assert result["genre_source"] == "MUSDB18 track list" and result["genre"] != "all"
        for entry in result["targets"]:
            assert entry["status"] in ("active", "silent", "not_together")
            if entry["status"] == "active":
                assert entry["advice"] and 0 <= entry["percentile"] <= 100
                ((start, end),) = entry["windows"]  # a 7 s clip is one window
                assert start == 0.0 and 6.0 < end < 7.5
                grades.append(entry["grade"])
    # Professional mixes: most pairs sit inside the outer band (the graded verdict's point).
    flagged = sum(g in (TOO_LOUD, TOO_SOFT) for g in grades)
    assert flagged <= 0.35 * len(grades), grades


def test_the_installed_console_script(song_folder):
    script = Path(sys.executable).with_name("anchormix")
    assert script.is_file(), "reinstall the project: pip install -e . --no-deps"
    done = subprocess.run(
        [str(script), "advise", str(song_folder), "--json", "--anchor", "bass"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["anchor"] == "bass" and len(result["targets"]) == 3
    assert done.stderr == ""  # no progress bar when stderr is not a terminal


# --------------------------------------------------------------------------- --model


def test_a_missing_model_or_advisor_module_is_named(capsys, song_folder, monkeypatch):
    missing = advise_error(capsys, str(song_folder), "--model", str(song_folder / "nowhere"))
    assert "no such adapter directory" in missing
    monkeypatch.setitem(sys.modules, "anchormix_kedro.model.advisor", None)
    error = advise_error(capsys, str(song_folder), "--model", str(song_folder))
    assert "model advisor is unavailable in this installation" in error


def test_an_mlflow_uri_without_a_tracking_store_says_what_to_pass(tmp_path, monkeypatch):
    from anchormix_kedro.advise.model_advice import load_model_advisor, tracking_store
    from anchormix_kedro.errors import CliError

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CliError, match="no MLflow tracking store.*--tracking-uri"):
        load_model_advisor("runs:/0123abcd/advisor", None)
    assert not (tmp_path / "mlflow.db").exists()  # nothing created where the user stands
    (tmp_path / "mlflow.db").write_bytes(b"")
    assert tracking_store("runs:/x/advisor", None) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    assert tracking_store("runs:/x/advisor", None) == "http://127.0.0.1:9"
    assert tracking_store("runs:/x/advisor", "sqlite:///other.db") == "sqlite:///other.db"


def test_a_versioned_package_folder_resolves_to_its_newest_version(tmp_path):
    from anchormix_kedro.model.package import PACKAGE_MANIFEST, newest_version

    folder = tmp_path / "advisor"
    for version in ("2026-01-02T10.00.00.000Z", "2026-01-10T09.00.00.000Z"):
        (folder / version / "advisor").mkdir(parents=True)
        (folder / version / "advisor" / PACKAGE_MANIFEST).write_text("{}")
    assert newest_version(folder) == folder / "2026-01-10T09.00.00.000Z" / "advisor"
    plain = folder / "2026-01-02T10.00.00.000Z" / "advisor"
    assert newest_version(plain) == plain
    assert newest_version(tmp_path / "elsewhere") == tmp_path / "elsewhere"
