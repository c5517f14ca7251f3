"""`anchormix advise`: loading stems, choosing windows, the DSP baseline and the output."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile

from anchormix_kedro.advise import cli
from anchormix_kedro.evaluation.dsp_baseline import (
    dsp_advice,
    fader_move_db,
    judge_balance,
    judge_pair,
    shipped_conventions,
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
    # Vocals 4 dB above the drums where the convention says 2.5 dB: 1.5 dB off, still balanced.
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


def test_shipped_conventions_hold_all_twelve_pairs():
    conventions = shipped_conventions()
    assert list(conventions.columns) == CONVENTION_COLUMNS
    pooled = conventions[conventions["genre"] == "all"].set_index(["anchor", "target"])
    pairs = {(a, t) for a in STEM_NAMES for t in STEM_NAMES if a != t}
    assert set(pooled.index) == pairs
    # Measured on MUSDB18's training songs: 80 of them (94 clips minus 14 validation songs).
    assert pooled["n_songs"].between(70, 86).all()
    for anchor, target_ in pairs:
        assert pooled.loc[(anchor, target_), "median_db"] == pytest.approx(
            -pooled.loc[(target_, anchor), "median_db"], abs=0.02
        )
    assert {"Pop/Rock", "Rap", "Heavy Metal"} <= set(conventions["genre"])


# --------------------------------------------------------------------------- judgements


def test_vocals_raised_by_8_db_are_too_loud_with_an_8_db_fader_move(capsys, song_stems, tmp_path):
    measured, _ = advise_json(capsys, str(write_stems(tmp_path / "raw", song_stems)))
    vocals = target(measured, "vocals")
    # Re-balance the vocals onto the convention, then raise them by 8 dB.
    to_convention = vocals["convention_db"] - vocals["relative_db"]
    balanced_stems = {**song_stems, "vocals": apply_gain_db(song_stems["vocals"], to_convention)}
    loud_stems = {**song_stems, "vocals": apply_gain_db(song_stems["vocals"], to_convention + 8)}

    balanced, _ = advise_json(capsys, str(write_stems(tmp_path / "balanced", balanced_stems)))
    assert target(balanced, "vocals")["verdict"] == BALANCED
    assert target(balanced, "vocals")["fader_move_db"] == 0.0
    loud, _ = advise_json(capsys, str(write_stems(tmp_path / "loud", loud_stems)))
    loud_vocals = target(loud, "vocals")
    assert loud_vocals["relative_db"] - vocals["relative_db"] == pytest.approx(
        to_convention + 8, abs=0.1
    )
    assert loud_vocals["verdict"] == TOO_LOUD
    assert loud_vocals["fader_move_db"] == pytest.approx(-8.0, abs=0.1)
    assert "8 dB" in loud_vocals["advice"] and "down" in loud_vocals["advice"]
    # The other stems did not change (only the phrasing, seeded by the song's name, may).
    assert {**target(loud, "bass"), "advice": None} == {**target(measured, "bass"), "advice": None}

    code = cli.main(["advise", str(tmp_path / "loud")])
    text = capsys.readouterr().out
    assert code == 0
    vocals_row = next(line for line in text.splitlines() if line.startswith("vocals "))
    assert "too loud" in vocals_row and "-8.0 dB" in vocals_row and "0.0-10.0 s" in vocals_row
    assert "vocals: " in text and "dsp_baseline" in text


def test_json_output_is_one_object_with_every_field(capsys, song_folder):
    result, _ = advise_json(capsys, str(song_folder), "--genre", "pop/rock")
    assert {"song", "anchor", "genre", "model", "targets", "warnings"} <= set(result)
    assert (result["song"], result["anchor"], result["genre"]) == ("My Song", "drums", "Pop/Rock")
    assert result["model"] == "dsp_baseline" and result["warnings"] == []
    assert [t["stem"] for t in result["targets"]] == ["bass", "other", "vocals"]
    for entry in result["targets"]:
        assert entry["status"] == "active"
        assert entry["verdict"] in (BALANCED, TOO_LOUD, TOO_SOFT)
        assert isinstance(entry["relative_db"], float) and isinstance(entry["convention_db"], float)
        assert isinstance(entry["fader_move_db"], float) and entry["advice"]
        ((start, end),) = entry["windows"]  # 12 s hold one 10 s window
        assert end - start == 10.0


def test_other_anchors_and_genre_fallback(capsys, song_folder):
    result, err = advise_json(capsys, str(song_folder), "--anchor", "Vocals", "--genre", "Polka")
    assert result["anchor"] == "vocals" and result["genre"] == "all"
    assert "no shipped conventions for genre 'Polka'" in err and "Pop/Rock" in err
    assert [t["stem"] for t in result["targets"]] == ["drums", "bass", "other"]
    # A genre with too few songs for a pair quotes the all-genre convention.
    country, _ = advise_json(capsys, str(song_folder), "--genre", "Country")
    assert {t["convention_genre"] for t in country["targets"]} == {"all"}


def test_a_silent_stem_is_reported_without_advice(capsys, song_stems, tmp_path):
    stems = {**song_stems, "vocals": np.zeros_like(song_stems["vocals"])}
    result, _ = advise_json(capsys, str(write_stems(tmp_path / "instrumental", stems)))
    vocals = target(result, "vocals")
    assert vocals["status"] == "silent"
    assert vocals["advice"] is None and vocals["verdict"] is None and vocals["windows"] == []
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
    assert f"resampled bass.wav to {RATE} Hz" in err and "'bass' is mono" in err
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
    windows = cli.choose_windows(anchor, target_, 20, 3, 5, 0.25)
    assert windows == [(120, 140), (250, 270)]
    assert cli.choose_windows(anchor, anchor, 50, 3, 5, 0.25) == [(0, 50), (100, 150), (200, 250)]
    assert cli.choose_windows(anchor[:40], anchor[:40], 50, 3, 5, 0.25) == [(0, 40)]


def test_progress_bar_on_a_terminal(capsys, song_folder, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["advise", str(song_folder)]) == 0
    assert "analysing" in capsys.readouterr().err


# --------------------------------------------------------------------------- stem files


def test_a_stem_mp4_is_decoded_into_the_four_stems(capsys, tmp_path):
    stems = synthetic_stems(6.0, rate=44100, seed=3)
    path = write_stem_mp4(tmp_path / "Demo Song.stem.mp4", stems, rate=44100)
    result, _ = advise_json(capsys, str(path))
    reference, _ = advise_json(capsys, str(write_stems(tmp_path / "wav", stems, rate=44100)))
    assert result["song"] == "Demo Song"
    assert [t["stem"] for t in result["targets"]] == ["bass", "other", "vocals"]
    decoded = {s: target(result, s)["relative_db"] for s in ("bass", "other", "vocals")}
    original = {s: target(reference, s)["relative_db"] for s in ("bass", "other", "vocals")}
    # AAC at the writer's bitrate takes about 0.5 dB off the drums' cymbals, the anchor of all
    # three; the targets keep their levels against each other.
    assert decoded == pytest.approx(original, abs=1.0)
    assert decoded["vocals"] - decoded["bass"] == pytest.approx(
        original["vocals"] - original["bass"], abs=0.2
    )


@pytest.mark.musdb
def test_a_real_musdb18_clip(capsys, shared_musdb):
    clips = sorted((shared_musdb / "train").glob("*.stem.mp4"))
    preferred = shared_musdb / "train" / "Triviul - Angelsaint.stem.mp4"
    clip = preferred if preferred.is_file() else clips[0]
    result, _ = advise_json(capsys, str(clip), "--genre", "Pop/Rock")
    assert result["song"] == clip.name.removesuffix(".stem.mp4")
    assert [t["stem"] for t in result["targets"]] == ["bass", "other", "vocals"]
    for entry in result["targets"]:
        assert entry["status"] in ("active", "silent")
        if entry["status"] == "active":
            assert entry["verdict"] in (BALANCED, TOO_LOUD, TOO_SOFT) and entry["advice"]
            assert -40 < entry["relative_db"] < 40
            ((start, end),) = entry["windows"]  # a 7 s clip is one window
            assert start == 0.0 and 6.0 < end < 7.5


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


def test_model_without_an_advisor_module_says_it_is_unavailable(capsys, song_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "anchormix_kedro.model.advisor", None)
    error = advise_error(capsys, str(song_folder), "--model", str(song_folder))
    assert "model advisor is unavailable in this installation" in error


class _StubAdvisor:
    def __init__(self, path: Path):
        self.path = path
        self.calls: list[dict] = []

    def advise(self, **kwargs) -> dict:
        self.calls.append(kwargs)
        return {"advice": f"Stub advice for {kwargs['target']}.", "fader_move_db": 3.0}


def test_model_from_a_directory_or_an_mlflow_uri(capsys, song_folder, tmp_path, monkeypatch):
    loaded: list[_StubAdvisor] = []

    def load_advisor(path):
        loaded.append(_StubAdvisor(Path(path)))
        return loaded[-1]

    module = types.ModuleType("anchormix_kedro.model.advisor")
    module.load_advisor = load_advisor
    monkeypatch.setitem(sys.modules, "anchormix_kedro.model.advisor", module)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    result, _ = advise_json(capsys, str(song_folder), "--model", str(adapter))
    assert result["model"] == str(adapter) and loaded[-1].path == adapter
    vocals = target(result, "vocals")
    assert vocals["verdict"] == TOO_SOFT and vocals["fader_move_db"] == 3.0
    assert vocals["advice"] == "Stub advice for vocals." and vocals["relative_db"] is not None
    call = loaded[-1].calls[0]
    assert call["anchor"] == "drums" and call["sample_rate"] == RATE
    assert call["anchor_audio"].shape == call["target_audio"].shape

    import mlflow.artifacts

    asked = []
    monkeypatch.setattr(
        mlflow.artifacts,
        "download_artifacts",
        lambda artifact_uri, tracking_uri=None: asked.append(artifact_uri) or str(adapter),
    )
    result, _ = advise_json(capsys, str(song_folder), "--model", "runs:/abc123/adapter")
    assert asked == ["runs:/abc123/adapter"] and result["model"] == "runs:/abc123/adapter"
    missing = advise_error(capsys, str(song_folder), "--model", str(tmp_path / "nowhere"))
    assert "no such adapter directory" in missing
