"""Benchmark of ``anchormix advise`` (the measurement, no model) on long songs.

For each song length it measures, each in a fresh process, in the same run:

- ``decode``: only decoding the four stems whole into memory (the baseline: what loading a
  song cost before stems were streamed, and the least any whole-song approach needs);
- ``advise``: ``anchormix advise SONG --json``, which streams the stems block by block.

and reports wall time and peak memory (each worker's own ``VmHWM``), their ratios, and how
``advise``'s peak grows from the shortest song to the longest. The songs are four 16-bit
stereo 44.1 kHz WAV stems made by tiling a synthetic song (so the stems have the usual
loud and quiet passages), rendered once into ``data/benchmark/`` and reused.

    python benchmarks/benchmark_advise.py                    # 10 and 60 minutes
    python benchmarks/benchmark_advise.py --minutes 1 5 --rounds 1
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

import anchormix_kedro  # noqa: F401  (sets the offline/telemetry defaults)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_ROOT / "data" / "benchmark"
RATE = 44100
STEMS = ("drums", "bass", "other", "vocals")


def render_song(minutes: float) -> Path:
    """Four WAV stems of ``minutes``: a 30 s synthetic song tiled, each repeat at its own gain."""
    from anchormix_kedro.instruction_data.synthetic import plan_corpus, synthesize_song

    folder = BENCH_DIR / f"advise-{minutes:g}min"
    done = folder / ".complete"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (plan,) = plan_corpus(1, 30.0, 7, genres=["Pop/Rock"], instrumental_fraction=0.0)
    song = synthesize_song(plan, sample_rate=RATE)
    repeats = int(np.ceil(minutes * 60 / 30.0))
    total = int(minutes * 60 * RATE)
    rng = np.random.default_rng(0)
    gains = rng.uniform(0.5, 1.0, size=(repeats, len(STEMS)))
    for index, stem in enumerate(STEMS):
        written = 0
        with soundfile.SoundFile(str(folder / f"{stem}.wav"), "w", RATE, 2, "PCM_16") as out:
            for repeat in range(repeats):
                piece = song[stem][: total - written] * np.float32(gains[repeat, index])
                out.write(piece)
                written += len(piece)
    done.touch()
    return folder


def peak_memory_mb() -> float:
    """This process's own peak resident memory (Linux ``VmHWM``, in MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0  # reported in kB
    raise RuntimeError("no VmHWM in /proc/self/status: the memory figures need Linux")


def worker(kind: str, folder: Path) -> dict:
    from anchormix_kedro.commands import main as anchormix

    start = time.perf_counter()
    if kind == "decode":
        stems = [soundfile.read(str(folder / f"{s}.wav"), dtype="float32")[0] for s in STEMS]
        result = {"decoded_samples": sum(stem.size for stem in stems)}
    else:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = anchormix(["advise", str(folder), "--json"])
        if code != 0:
            raise SystemExit(f"anchormix advise failed on {folder} (exit {code})")
        report = json.loads(out.getvalue())
        result = {"seconds_of_audio": report["seconds"], "targets": len(report["targets"])}
    return {**result, "wall_s": time.perf_counter() - start, "peak_mb": peak_memory_mb()}


def run_worker(kind: str, folder: Path) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(folder)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--rounds", type=int, default=3, help="the fastest round counts")
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "data/08_reporting/benchmark_advise.json"
    )
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return

    rows = []
    for minutes in args.minutes:
        folder = render_song(minutes)
        rounds: dict[str, list[dict]] = {"decode": [], "advise": []}
        for _ in range(args.rounds):
            for kind in rounds:  # alternating: both see the same machine load
                rounds[kind].append(run_worker(kind, folder))
        # The fastest round's time; the highest peak of all rounds.
        best = {
            kind: {
                **min(runs, key=lambda r: r["wall_s"]),
                "peak_mb": max(r["peak_mb"] for r in runs),
            }
            for kind, runs in rounds.items()
        }
        rows.append(
            {
                "minutes": minutes,
                "decode": best["decode"],
                "advise": best["advise"],
                "time_ratio": best["advise"]["wall_s"] / best["decode"]["wall_s"],
                "memory_ratio": best["advise"]["peak_mb"] / best["decode"]["peak_mb"],
            }
        )
        print(
            f"{minutes:g} min: decode {best['decode']['wall_s']:.1f} s, "
            f"{best['decode']['peak_mb']:.0f} MB; advise {best['advise']['wall_s']:.1f} s, "
            f"{best['advise']['peak_mb']:.0f} MB",
            flush=True,
        )
    growth = rows[-1]["advise"]["peak_mb"] / rows[0]["advise"]["peak_mb"]
    summary = {"songs": rows, "advise_peak_growth": growth, "rounds": args.rounds}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=1))
    print(
        f"advise peak memory, {args.minutes[-1]:g} min against {args.minutes[0]:g} min: "
        f"x{growth:.3f}; written to {args.output}"
    )


if __name__ == "__main__":
    main()
