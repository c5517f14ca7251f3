"""Run ``anchormix advise`` on odd and hostile song folders and print what it answers.

Builds each hostile input in a temporary folder (nothing outside it is touched), runs the
installed ``anchormix advise`` on it as a user would, and prints one row per case:

    case | exit | the message (stderr's error or warning line, else its first line) | verdict

A case PASSes when the command answers as the case expects -- an error is exit status 2,
nothing on stdout and exactly one ``error:`` line holding the expected words; advice is
exit status 0 with the expected words in its output -- with no traceback, and the files the
case built are left exactly as they were. The script exits 1 if any case fails.

    .venv/bin/python tools/hostile_advise.py            # every case, the 60-minute song too
    .venv/bin/python tools/hostile_advise.py --quick    # without the expensive cases
    .venv/bin/python tools/hostile_advise.py --long-minutes 10 --keep /tmp/hostile

The cheap cases are also tests (``tests/test_advise_hostile.py``); this script adds the
expensive ones (a 60-minute song, an interrupted run, output to a full disk) and shows the
answers side by side.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

RATE = 22050
STEMS = ("drums", "bass", "other", "vocals")
ANCHORMIX = Path(sys.executable).with_name("anchormix")
ERROR, ADVICE, INTERRUPTED = "error", "advice", "interrupted"


def noise(seconds: float = 3.0, level: float = 0.1, channels: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((int(seconds * RATE), channels)) * level).astype(np.float32)


def stems(folder: Path, levels: dict[str, float] | None = None, **write) -> Path:
    """The four stems (or those of ``levels``) as 3 s of noise in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (stem, level) in enumerate((levels or dict.fromkeys(STEMS, 0.1)).items()):
        soundfile.write(str(folder / f"{stem}.wav"), noise(level=level, seed=seed), RATE, **write)
    return folder


def two(folder: Path) -> Path:
    return stems(folder, {"drums": 0.1, "bass": 0.1})


@dataclass
class Case:
    name: str
    build: Callable[[Path], list[str]]  # builds the input under a folder; the command's args
    expect: str  # ERROR, ADVICE or INTERRUPTED
    words: tuple[str, ...] = ()  # in the error line, or in the advice's stdout + stderr
    absent: tuple[str, ...] = ()  # never anywhere in the output
    expensive: bool = False
    stdout: str | None = None  # a file to send stdout to (e.g. /dev/full)
    interrupt_after_s: float | None = None
    skip: str | None = None
    timeout_s: float = 600.0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the cases


def _write(folder: Path, name: str, data: bytes, base: Callable[[Path], Path] = two) -> list[str]:
    song = base(folder / "song")
    (song / name).write_bytes(data)
    return [str(song)]


def mixes(folder: Path) -> list[str]:
    song = stems(folder / "song")
    whole = sum(soundfile.read(str(song / f"{s}.wav"), dtype="float32")[0] for s in STEMS)
    for name in ("Final Mix.wav", "Master 24bit.wav", "Bounce 1.wav"):
        soundfile.write(str(song / name), whole, RATE)
    return [str(song)]


def escapes(folder: Path) -> list[str]:
    song = stems(folder / "song", {"drums": 0.1, "other": 0.1})
    soundfile.write(str(song / "bass\x1b[2J\nvocals: +0.0 dB\r.wav"), noise(seed=4), RATE)
    return [str(song)]


def not_utf8(folder: Path) -> list[str]:
    song = two(folder / "song")
    name = os.fsdecode(b"vocals \xff\xfe.wav")
    soundfile.write(os.fsencode(song / name), noise(seed=5), RATE)
    return [str(song), "--json"]


def dangling(folder: Path) -> list[str]:
    song = stems(folder / "song", {"drums": 0.1, "other": 0.1, "vocals": 0.1})
    (song / "bass.wav").symlink_to(folder / "moved away" / "bass.wav")
    return [str(song)]


def channels(widths: dict[str, int]) -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        song = folder / "song"
        song.mkdir()
        for seed, (stem, width) in enumerate(widths.items()):
            soundfile.write(str(song / f"{stem}.wav"), noise(channels=width, seed=seed), RATE)
        return [str(song)]

    return build


def float_scale(level: float) -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        song = stems(folder / "song", {"drums": 0.1, "bass": 0.1}, subtype="FLOAT")
        soundfile.write(str(song / "vocals.wav"), noise(level=level, seed=3), RATE, subtype="FLOAT")
        return [str(song)]

    return build


def nan_stem(folder: Path) -> list[str]:
    song = stems(folder / "song", {"drums": 0.1, "bass": 0.1}, subtype="FLOAT")
    audio = noise(seed=3)
    audio[100:110] = np.nan
    soundfile.write(str(song / "vocals.wav"), audio, RATE, subtype="FLOAT")
    return [str(song)]


def low_rate(folder: Path) -> list[str]:
    song = folder / "song"
    song.mkdir()
    for seed, stem in enumerate(("drums", "bass")):
        soundfile.write(str(song / f"{stem}.wav"), noise(seed=seed)[:3000], 100)
    return [str(song)]


def damaged_mp3(folder: Path) -> list[str]:
    song = two(folder / "song")
    soundfile.write(str(song / "vocals.mp3"), noise(seconds=6.0, seed=3), RATE, format="MP3")
    damaged = bytearray((song / "vocals.mp3").read_bytes())
    third = len(damaged) // 3
    damaged[third : third + 4000] = np.random.default_rng(0).bytes(4000)
    (song / "vocals.mp3").write_bytes(bytes(damaged))
    return [str(song)]


def writes_mp3() -> bool:
    return "MP3" in soundfile.available_formats()


def gigahertz(folder: Path) -> list[str]:
    song = two(folder / "song")
    header = bytearray((song / "bass.wav").read_bytes())
    header[24:32] = (10**9).to_bytes(4, "little") + (4 * 10**9).to_bytes(4, "little")
    (song / "bass.wav").write_bytes(bytes(header))
    return [str(song)]


def binary_words(folder: Path) -> list[str]:
    (folder / "words.yml").write_bytes(np.random.default_rng(3).bytes(300))
    return [str(two(folder / "song")), "--stem-words", str(folder / "words.yml")]


def identical(folder: Path) -> list[str]:
    song = two(folder / "song")
    os.link(song / "drums.wav", song / "vocals.wav")
    return [str(song)]


def short(seconds: float) -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        song = two(folder / "song")
        soundfile.write(str(song / "vocals.wav"), noise(seed=3)[: int(seconds * RATE)], RATE)
        return [str(song)]

    return build


def all_short(folder: Path) -> list[str]:
    song = folder / "song"
    song.mkdir()
    for seed, stem in enumerate(("drums", "bass")):
        soundfile.write(str(song / f"{stem}.wav"), noise(seed=seed)[: RATE // 100], RATE)
    return [str(song)]


def truncated_wav(folder: Path) -> list[str]:
    song = two(folder / "song")
    data = (song / "bass.wav").read_bytes()
    (song / "vocals.wav").write_bytes(data[:60])
    return [str(song)]


def stem_mp4(cut: float | None) -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        path = folder / "Song.stem.mp4"
        if cut is None:
            path.write_bytes(np.random.default_rng(2).bytes(4000))
            return [str(path)]
        _write_stem_mp4(path, {s: noise(seconds=2.0, seed=i) for i, s in enumerate(STEMS)})
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * cut)])
        return [str(path)]

    return build


def _write_stem_mp4(path: Path, tracks: dict[str, np.ndarray]) -> None:
    """An NI-style stem MP4 (AAC: mixture, drums, bass, other, vocals), as the tests write it."""
    from fractions import Fraction

    import av

    order = [sum(tracks.values()), *(tracks[s] for s in STEMS)]
    with av.open(str(path), "w", format="mp4") as container:
        streams = []
        for _ in order:
            stream = container.add_stream("aac", rate=RATE)
            stream.layout = "stereo"
            stream.time_base = Fraction(1, RATE)
            streams.append(stream)
        for stream, audio in zip(streams, order, strict=True):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio.T), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts, frame.time_base = RATE, 0, Fraction(1, RATE)
            for packet in stream.encode(frame):
                container.mux(packet)
        for stream in streams:
            for packet in stream.encode(None):
                container.mux(packet)


def long_song(minutes: float) -> Callable[[Path], list[str]]:
    """Four mono 16-bit stems of ``minutes`` (60 min at 22050 Hz: 4 x 159 MB), written in blocks."""

    def build(folder: Path) -> list[str]:
        song = folder / "long song"
        song.mkdir()
        rng = np.random.default_rng(7)
        for index, stem in enumerate(STEMS):
            with soundfile.SoundFile(
                str(song / f"{stem}.wav"), "w", RATE, 1, subtype="PCM_16"
            ) as handle:
                for _ in range(int(minutes * 60 / 10)):
                    level = 0.05 * (index + 1)
                    handle.write((rng.standard_normal((10 * RATE, 1)) * level).astype(np.float32))
        return [str(song)]

    return build


def cases(long_minutes: float) -> list[Case]:
    rooted = os.geteuid() == 0 if hasattr(os, "geteuid") else False
    as_root = "root reads any file" if rooted else None
    return [
        Case("four stems (reference)", lambda f: [str(stems(f / "song"))], ADVICE, ("vocals",)),
        Case("Final Mix / Master 24bit / Bounce 1 in the folder", mixes, ADVICE,
             ("not used (a whole mix): Bounce 1.wav, Final Mix.wav, Master 24bit.wav",)),
        Case("ANSI escapes and a newline in a file name", escapes, ADVICE,
             ("\\x1b[2J\\nvocals",), absent=("\x1b", "\r")),
        Case("a file name that is not UTF-8 (--json)", not_utf8, ADVICE, ("vocals \\udcff",)),
        Case("dangling symlink bass.wav", dangling, ADVICE, ("does not exist",)),
        Case("--window-seconds 1e308", lambda f: [str(two(f / "song")), "--window-seconds",
             "1e308"], ERROR, ("--window-seconds", "86400")),
        Case("--windows 0", lambda f: [str(two(f / "song")), "--windows", "0"], ERROR,
             ("--windows",)),
        Case("--usual-percentiles 90,10", lambda f: [str(two(f / "song")),
             "--usual-percentiles", "90,10"], ERROR, ("LOW,HIGH",)),
        Case("report to a full disk (> /dev/full)", lambda f: [str(two(f / "song"))], ERROR,
             ("No space left on device",), stdout="/dev/full",
             skip=None if Path("/dev/full").exists() else "no /dev/full"),
        Case("mono drums.wav + 6-channel vocals.wav", channels({"drums": 1, "vocals": 6}), ERROR,
             ("'vocals.wav' has 6 channels",)),
        Case("3-channel vocals.wav", channels({"drums": 2, "bass": 2, "vocals": 3}), ERROR,
             ("'vocals.wav' has 3 channels",)),
        Case("every stem silent", lambda f: [str(stems(f / "song", dict.fromkeys(STEMS, 0.0)))],
             ERROR, ("every stem is silent",)),
        Case("silent anchor", lambda f: [str(stems(f / "song", {"drums": 0.0, "bass": 0.1}))],
             ERROR, ("--anchor bass",)),
        Case("silent vocals", lambda f: [str(stems(f / "song", {"drums": 0.1, "vocals": 0.0}))],
             ADVICE, ("vocals: silent in the whole song",)),
        Case("random bytes named vocals.mp3", lambda f: _write(
            f, "vocals.mp3", np.random.default_rng(1).bytes(20000)), ERROR,
            ("not a readable MP3",), absent=("mpg123", "does not exist")),
        Case("an MP3 damaged a third of the way in", damaged_mp3, ERROR, ("vocals.mp3",),
             absent=("Note:", "mpg123"), skip=None if writes_mp3() else "libsndfile writes no MP3"),
        Case("zero-byte vocals.wav", lambda f: _write(f, "vocals.wav", b""), ERROR, ("vocals.wav",)),
        Case("text named vocals.wav", lambda f: _write(f, "vocals.wav", b"la la la\n" * 99),
             ERROR, ("vocals.wav",)),
        Case("fake RIFF header", lambda f: _write(f, "vocals.wav", b"RIFF\x24\0\0\0WAVEfmt "),
             ERROR, ("vocals.wav",)),
        Case("truncated WAV (60 bytes)", truncated_wav, ERROR, ("vocals.wav",)),
        Case("float WAV at 1e30", float_scale(1e30), ERROR, ("full scale",)),
        Case("float WAV above full scale (noise at 2.0 RMS)", float_scale(2.0), ADVICE, ("above full scale",)),
        Case("NaN samples", nan_stem, ERROR, ("NaN",)),
        Case("stems at 100 Hz", low_rate, ERROR, ("below 8000 Hz",)),
        Case("a header claiming 1 GHz", gigahertz, ERROR, ("above 768000 Hz",)),
        Case("--stem-words of random bytes", binary_words, ERROR, ("not UTF-8",)),
        Case("vocals.wav hard-linked to drums.wav", identical, ADVICE,
             ("the same audio as the anchor drums",)),
        Case("10 ms stems", all_short, ERROR, ("at least 0.4 s",)),
        Case("empty vocals.wav (no frames)", short(0.0), ERROR, ("vocals.wav",)),
        Case("vocals.wav a third as long", short(1.0), ERROR, ("looks truncated",)),
        Case("random bytes named .stem.mp4", stem_mp4(None), ERROR, ("Song.stem.mp4",)),
        Case("truncated .stem.mp4", stem_mp4(0.3), ERROR, ("Song.stem.mp4",)),
        Case("missing folder", lambda f: [str(f / "nowhere")], ERROR, ("no such file",)),
        Case("empty folder", lambda f: [str((f / "empty").mkdir() or f / "empty")], ERROR,
             ("no stem files",)),
        Case("one wav as SONG", lambda f: [str(two(f / "song") / "drums.wav")], ERROR,
             (".stem.mp4",)),
        Case("unknown anchor", lambda f: [str(two(f / "song")), "--anchor", "piano"], ERROR,
             ("stems found: bass, drums",)),
        Case("--stem naming a missing file", lambda f: [str(two(f / "song")), "--stem",
             "vocals=Lead.wav"], ERROR, ("no such audio file",)),
        Case("--model that does not exist", lambda f: [str(two(f / "song")), "--model",
             str(f / "no adapter")], ERROR, ("no such adapter",)),
        Case("unreadable bass.wav (chmod 000)", _unreadable, ERROR, ("permission denied",),
             skip=as_root),
        Case(f"{long_minutes:g}-minute song", long_song(long_minutes), ADVICE, ("vocals",),
             expensive=True),
        Case(f"{long_minutes:g}-minute song, Ctrl-C after 8 s", long_song(long_minutes),
             INTERRUPTED, ("interrupted",), expensive=True, interrupt_after_s=8.0),
    ]  # fmt: skip


def _unreadable(folder: Path) -> list[str]:
    song = stems(folder / "song")
    (song / "bass.wav").chmod(0)
    return [str(song)]


# --------------------------------------------------------------------------- running


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every path under ``folder`` with its size, mode and modification time."""
    found = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        found[str(path)] = (info.st_size, info.st_mode, info.st_mtime_ns)
    return found


def message_line(err: str) -> str:
    lines = err.splitlines()
    for marker in ("error:", "warning:", "interrupted"):
        for line in lines:
            if marker in line:
                return line
    return lines[0] if lines else ""


def run_case(case: Case, folder: Path) -> tuple[str, str, str, float]:
    """``(exit status, message line, verdict, seconds)`` of one case."""
    args = case.build(folder)
    before = snapshot(folder)
    command = [str(ANCHORMIX), "advise", *args]
    started = time.perf_counter()
    stdout = open(case.stdout, "w") if case.stdout else subprocess.PIPE  # noqa: SIM115
    try:
        process = subprocess.Popen(
            command,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            # A shell's background job ignores Ctrl-C, and so would the command: restore it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        if case.interrupt_after_s is not None:
            time.sleep(case.interrupt_after_s)
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=case.timeout_s)
    finally:
        if case.stdout:
            stdout.close()
    seconds = time.perf_counter() - started
    out = out or ""
    code, line = process.returncode, message_line(err)
    problems = []
    if "Traceback" in err:
        problems.append("traceback")
    if snapshot(folder) != before:
        problems.append("inputs changed")
    everything = out + err
    problems += [f"printed {word!r}" for word in case.absent if word in everything]
    if case.expect == ERROR:
        errors = [x for x in err.splitlines() if "error:" in x]
        if code != 2 or out or len(errors) != 1:
            problems.append(f"expected one error line and exit 2, got {len(errors)} and {code}")
        problems += [f"no {w!r}" for w in case.words if not errors or w not in errors[0]]
    elif case.expect == INTERRUPTED:
        if code != 130:
            problems.append(f"expected exit 130, got {code}")
        problems += [f"no {w!r}" for w in case.words if w not in err]
    else:
        if code != 0:
            problems.append(f"expected advice, got exit {code}")
        problems += [f"no {w!r}" for w in case.words if w not in everything]
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    return str(code), line, verdict, seconds


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # a row as soon as its case ends: the long cases take minutes


def shown(text: str, width: int) -> str:
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= width else text[: width - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="leave out the expensive cases")
    parser.add_argument(
        "--long-minutes", type=float, default=60.0, help="the long song's length (default 60)"
    )
    parser.add_argument("--keep", type=Path, help="build the cases here and keep them")
    parser.add_argument("--only", help="run the cases whose name holds this text")
    parser.add_argument("--width", type=int, default=90, help="width of the message column")
    options = parser.parse_args(argv)
    if not ANCHORMIX.is_file():
        parser.error(f"no {ANCHORMIX}; install the project (pip install -e .)")
    chosen = [
        c
        for c in cases(options.long_minutes)
        if not (options.quick and c.expensive)
        and (options.only is None or options.only.lower() in c.name.lower())
    ]
    root = options.keep or Path(tempfile.mkdtemp(prefix="hostile-advise-"))
    failed = 0
    say(f"{'case':<52} {'exit':>4}  {'verdict':<7} {'s':>5}  message")
    for index, case in enumerate(chosen):
        if case.skip:
            say(f"{case.name:<52} {'-':>4}  {'SKIP':<7} {'':>5}  ({case.skip})")
            continue
        folder = root / f"{index:02d}"
        folder.mkdir(parents=True)
        try:
            code, line, verdict, seconds = run_case(case, folder)
        finally:
            if options.keep is None:
                _remove(folder)
        failed += verdict != "PASS"
        say(
            f"{case.name:<52} {code:>4}  {verdict[:4]:<7} {seconds:5.1f}  "
            f"{shown(line, options.width)}"
        )
        if verdict != "PASS":
            say(f"{'':<52}       {verdict}")
    say(f"\n{len(chosen) - failed} of {len(chosen)} cases as expected (skips included)")
    if options.keep is None:
        _remove(root)
    return 1 if failed else 0


def _remove(folder: Path) -> None:
    import shutil

    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
