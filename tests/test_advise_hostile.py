"""`anchormix advise` on odd and hostile song folders: each answer is one clear line or a
named warning, never a traceback, and nothing the user made is touched.

The expensive cases (a 60-minute song, ...) are in ``tools/hostile_advise.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from anchormix_kedro import commands as cli
from anchormix_kedro.advise.session import is_mix_name
from conftest import write_stem_mp4

RATE = 22050
STEMS = ("drums", "bass", "other", "vocals")


def noise(seconds: float = 3.0, level: float = 0.1, channels: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((int(seconds * RATE), channels)) * level).astype(np.float32)


def stem_folder(folder: Path, levels: dict[str, float] | None = None, **write) -> Path:
    """The four stems as noise at the given peak-ish levels (default 0.1 each)."""
    folder.mkdir(parents=True, exist_ok=True)
    levels = levels or dict.fromkeys(STEMS, 0.1)
    for seed, (stem, level) in enumerate(levels.items()):
        soundfile.write(str(folder / f"{stem}.wav"), noise(level=level, seed=seed), RATE, **write)
    return folder


def run_advise(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["advise", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_error(capsys, *args: str) -> str:
    """The command's single ``anchormix: error:`` line; it must exit 2 and print nothing."""
    code, out, err = run_advise(capsys, *args)
    assert code == 2, err
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("anchormix: error: ")]
    assert len(errors) == 1, err
    return errors[0]


def advice(capsys, *args: str) -> tuple[dict, str]:
    code, out, err = run_advise(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out), err


def target(result: dict, stem: str) -> dict:
    return next(t for t in result["targets"] if t["stem"] == stem)


# --------------------------------------------------------------------------- mixes in the folder


@pytest.mark.parametrize(
    "name",
    ["mixture", "Mix", "Final Mix", "Master 24bit", "Bounce 1", "mixdown_v2", "Rough Mix 3",
     "Song Master", "premaster", "Full Mix 48k"],
)  # fmt: skip
def test_whole_mix_names_are_recognised(name):
    assert is_mix_name(name)


@pytest.mark.parametrize("name", ["Drum Mix", "Vocal Master", "Bass", "Keys", "Mixed Choir"])
def test_instrument_names_are_not_mixes(name):
    assert not is_mix_name(name)


def test_a_sessions_mix_master_and_bounce_are_left_out_and_listed(capsys, tmp_path):
    folder = stem_folder(tmp_path / "session")
    whole = sum(soundfile.read(str(folder / f"{s}.wav"), dtype="float32")[0] for s in STEMS)
    for name in ("Final Mix.wav", "Master 24bit.wav", "Bounce 1.wav"):
        soundfile.write(str(folder / name), whole, RATE)
    result, _ = advice(capsys, str(folder))
    assert result["not_stems"] == ["Bounce 1.wav", "Final Mix.wav", "Master 24bit.wav"]
    assert result["stem_files"]["other"] == ["other.wav"]
    reference, _ = advice(capsys, str(stem_folder(tmp_path / "stems only")))
    assert target(result, "other")["relative_db"] == target(reference, "other")["relative_db"]
    code, out, _ = run_advise(capsys, str(folder))
    assert code == 0
    assert "not used (a whole mix): Bounce 1.wav, Final Mix.wav, Master 24bit.wav" in out


def test_a_mix_named_by_stem_is_used(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    soundfile.write(str(folder / "Final Mix.wav"), noise(seed=9), RATE)
    result, _ = advice(capsys, str(folder), "--stem", "other=Final Mix.wav")
    assert result["stem_files"]["other"] == ["Final Mix.wav"] and result["not_stems"] == []


# --------------------------------------------------------------------------- names


def test_control_characters_in_file_names_are_escaped_on_the_terminal(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song\x1b[31m", {"drums": 0.1, "other": 0.1})
    hostile = "bass\x1b[2J\nvocals: too loud\r.wav"
    soundfile.write(str(folder / hostile), noise(seed=4), RATE)
    (folder / "notes\x1b[H.txt").write_text("x")
    code, out, err = run_advise(capsys, str(folder))
    assert code == 0
    assert "\x1b" not in out + err and "\r" not in out + err
    assert "bass\\x1b[2J\\nvocals: too loud\\r.wav" in out
    assert not any(line.startswith("vocals: too loud") for line in out.splitlines())
    assert "notes\\x1b[H.txt" in err
    result, _ = advice(capsys, str(folder))  # JSON escapes them itself
    assert result["stem_files"]["vocals"] == [hostile]  # its words name the vocals
    (folder / "vocals\x1b[2J.wav").write_bytes(b"not audio")
    error = one_error(capsys, str(folder))
    assert "\x1b" not in error and "vocals\\x1b[2J.wav" in error


def test_a_file_name_that_is_not_utf8_is_read_and_shown_escaped(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    name = os.fsdecode(b"vocals \xff.wav")
    soundfile.write(os.fsencode(folder / name), noise(seed=5), RATE)
    code, out, err = run_advise(capsys, str(folder))
    assert code == 0, err
    assert "vocals <- vocals \\xff.wav" in out
    result, _ = advice(capsys, str(folder))
    assert result["stem_files"]["vocals"] == [name]  # JSON's \udcff gives the name back


def test_names_a_terminal_cannot_show_are_escaped(tmp_path):
    folder = stem_folder(tmp_path / "Zoé", {"drums": 0.1, "bass": 0.1})
    soundfile.write(str(folder / "Voix de Zoé.wav"), noise(seed=5), RATE)
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from anchormix_kedro.commands import main; "
         "sys.exit(main())", "advise", str(folder)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Song:    Zo\\xe9 (" in done.stdout and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- files


def test_a_dangling_link_is_named_not_skipped_silently(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "other": 0.1, "vocals": 0.1})
    (folder / "bass.wav").symlink_to(tmp_path / "elsewhere" / "bass.wav")
    result, err = advice(capsys, str(folder))
    assert "bass.wav" in err and "does not exist" in err
    assert any("bass.wav" in w for w in result["warnings"])
    assert (folder / "bass.wav").is_symlink()  # left as it was


def test_random_bytes_named_mp3_are_not_a_readable_mp3(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    (folder / "vocals.mp3").write_bytes(np.random.default_rng(1).bytes(20000))
    error = one_error(capsys, str(folder))
    assert "vocals.mp3" in error and "not a readable MP3" in error
    assert "does not exist" not in error and "use wav" not in error


def test_a_mono_and_a_six_channel_stem_blame_the_six_channels(capsys, tmp_path):
    folder = tmp_path / "song"
    folder.mkdir()
    soundfile.write(str(folder / "drums.wav"), noise(channels=1), RATE)
    soundfile.write(str(folder / "vocals.wav"), noise(channels=6, seed=1), RATE)
    error = one_error(capsys, str(folder))
    assert "'vocals.wav' has 6 channels" in error and "'drums.wav' has" not in error


def test_every_stem_silent_is_said_once(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", dict.fromkeys(STEMS, 0.0))
    error = one_error(capsys, str(folder))
    assert "every stem is silent" in error and "--anchor" not in error


def test_a_silent_anchor_suggests_only_stems_that_play(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.0, "bass": 0.0, "vocals": 0.1})
    error = one_error(capsys, str(folder))
    assert "is silent" in error and "--anchor vocals" in error and "bass" not in error


def test_samples_far_outside_full_scale_are_refused(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1}, subtype="FLOAT")
    soundfile.write(str(folder / "vocals.wav"), noise(level=1e30, seed=3), RATE, subtype="FLOAT")
    error = one_error(capsys, str(folder))
    assert "vocals.wav" in error and "full scale" in error


def test_samples_a_little_over_full_scale_are_a_warning(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1}, subtype="FLOAT")
    soundfile.write(str(folder / "vocals.wav"), noise(level=2.0, seed=3), RATE, subtype="FLOAT")
    result, err = advice(capsys, str(folder))
    assert "vocals.wav" in err and "above full scale" in err
    assert target(result, "vocals")["status"] == "active"


def test_a_sample_rate_below_8_khz_is_refused(capsys, tmp_path):
    folder = tmp_path / "song"
    folder.mkdir()
    for seed, stem in enumerate(("drums", "bass")):
        soundfile.write(str(folder / f"{stem}.wav"), noise(seed=seed)[:3000], 100)
    error = one_error(capsys, str(folder))
    assert "100 Hz" in error and "8000 Hz" in error and "drums.wav" in error


def test_a_header_claiming_a_gigahertz_rate_is_refused(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    header = bytearray((folder / "bass.wav").read_bytes())
    header[24:32] = (10**9).to_bytes(4, "little") + (4 * 10**9).to_bytes(4, "little")
    (folder / "bass.wav").write_bytes(bytes(header))
    error = one_error(capsys, str(folder))
    assert "bass.wav 1000000000 Hz" in error and "768000 Hz" in error


def test_stem_words_that_are_not_text_are_one_line(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    words = tmp_path / "words.yml"
    words.write_bytes(b"\x8d\xff\x00 binary")
    error = one_error(capsys, str(folder), "--stem-words", str(words))
    assert "words.yml" in error and "UTF-8" in error


@pytest.mark.parametrize("link", ["hard", "copy"])
def test_a_target_identical_to_the_anchor_is_said_to_be(capsys, tmp_path, link):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    if link == "hard":
        os.link(folder / "drums.wav", folder / "vocals.wav")
    else:
        data, rate = soundfile.read(str(folder / "drums.wav"), dtype="float32")
        soundfile.write(str(folder / "vocals.flac"), data, rate)
    result, err = advice(capsys, str(folder))
    vocals = target(result, "vocals")
    assert vocals["status"] == "identical_to_anchor" and vocals["advice"] is None
    assert "same audio as the anchor" in err
    assert target(result, "bass")["status"] == "active"
    code, out, _ = run_advise(capsys, str(folder))
    assert code == 0 and "vocals: the same audio as drums" in out


# --------------------------------------------------------------------------- options, output


@pytest.mark.parametrize("value", ["1e308", "inf", "nan", "0.5", "100000"])
def test_absurd_window_lengths_are_one_line(capsys, tmp_path, value):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    code, out, err = run_advise(capsys, str(folder), "--window-seconds", value)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()[-1:]
    assert "--window-seconds" in line and "86400" in line


def test_a_full_disk_is_one_line(tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-c", "import sys; from anchormix_kedro.commands import main; "
             "sys.exit(main())", "advise", str(folder)],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "anchormix: error: cannot write the report to the standard output "
        "([Errno 28] No space left on device); free some space or write elsewhere"
    ]


# --------------------------------------------------------------------------- already one line

ERRORS = {
    "zero-byte stem": ("bass.wav", b"", "bass.wav"),
    "text named wav": ("bass.wav", b"drums, bass, other, vocals\n" * 50, "bass.wav"),
    "fake RIFF header": ("bass.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40, "bass.wav"),
    "fake flac": ("bass.flac", b"fLaC" + b"\x00" * 100, "bass.flac"),
    "fake ogg": ("bass.ogg", b"OggS" + b"\x00" * 100, "bass.ogg"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_files_that_are_not_audio_are_one_line(capsys, tmp_path, case):
    name, data, named = ERRORS[case]
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "vocals": 0.1})
    (folder / name).write_bytes(data)
    assert named in one_error(capsys, str(folder))
    assert (folder / name).read_bytes() == data  # nothing the user made is touched


@pytest.mark.parametrize("channels", [3, 6])
def test_a_stem_with_more_channels_is_named(capsys, tmp_path, channels):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    soundfile.write(str(folder / "vocals.wav"), noise(channels=channels), RATE)
    assert f"'vocals.wav' has {channels} channels" in one_error(capsys, str(folder))


def test_ten_ms_and_empty_stems_are_one_line(capsys, tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    for stem in ("drums", "bass"):
        soundfile.write(str(short / f"{stem}.wav"), noise()[: RATE // 100], RATE)
    assert "need at least 0.4 s" in one_error(capsys, str(short))
    empty = stem_folder(tmp_path / "empty", {"drums": 0.1, "bass": 0.1})
    soundfile.write(str(empty / "vocals.wav"), np.zeros((0, 2), np.float32), RATE)
    assert "vocals.wav" in one_error(capsys, str(empty))


def test_a_stem_mp4_missing_streams_is_one_line(capsys, tmp_path):
    tracks = {s: noise(seconds=1.0, seed=i) for i, s in enumerate(STEMS)}
    path = write_stem_mp4(tmp_path / "Song.stem.mp4", tracks, rate=RATE)
    cut = tmp_path / "Cut.stem.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    assert "Cut.stem.mp4" in one_error(capsys, str(cut))


def test_a_closed_pipe_is_one_line(capsys, tmp_path, monkeypatch):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})

    class ClosedPipe:
        encoding = "utf-8"

        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

        def fileno(self):
            raise ValueError("no descriptor")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["advise", str(folder)]) == 2
    assert capsys.readouterr().err == (
        "anchormix: error: the standard output was closed before the report was written\n"
    )


def test_ctrl_c_while_decoding_is_one_line(capsys, tmp_path, monkeypatch):
    from anchormix_kedro.advise import songs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(songs, "stem_blocks", interrupted)
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    assert cli.main(["advise", str(folder)]) == 130
    out, err = capsys.readouterr()
    assert out == "" and err == "anchormix: interrupted\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its permissions")
def test_an_unreadable_file_says_so(capsys, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    (folder / "bass.wav").chmod(0)
    assert "bass.wav: cannot be read (permission denied)" in one_error(capsys, str(folder))


def test_decoder_notes_on_a_damaged_mp3_stay_off_the_terminal(capfd, tmp_path):
    folder = stem_folder(tmp_path / "song", {"drums": 0.1, "bass": 0.1})
    try:
        soundfile.write(str(folder / "vocals.mp3"), noise(seconds=6.0, seed=3), RATE, format="MP3")
    except (soundfile.LibsndfileError, TypeError, ValueError):
        pytest.skip("this libsndfile writes no MP3")
    damaged = bytearray((folder / "vocals.mp3").read_bytes())
    third = len(damaged) // 3
    damaged[third : third + 4000] = np.random.default_rng(0).bytes(4000)
    (folder / "vocals.mp3").write_bytes(bytes(damaged))
    assert cli.main(["advise", str(folder)]) == 2
    out, err = capfd.readouterr()
    assert out == "" and "Note:" not in err and "Traceback" not in err
    assert err.count("\n") == 1 and "vocals.mp3" in err
