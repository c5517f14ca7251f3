"""Benchmark of the data pipelines (ingestion + perturbation + templating).

For each corpus it measures, each in a fresh process, in the same run:

- ``decode``: only decoding the four stems of every song once (the baseline);
- ``pipeline``: the ``data`` pipeline run by Kedro's SequentialRunner on the project's
  catalog and parameters (real datasets, written under a temporary folder; no MLflow).

and reports wall time and peak memory of each, and their ratios. Peak memory is each
worker's own: its ``VmHWM`` (the high-water mark of its resident memory, which starts
afresh at ``exec``), read by the worker as it ends. (``ru_maxrss`` would not do: Linux
carries it over from the parent across fork and exec, so every worker reported the
parent's peak.)

Corpora: the real MUSDB18 clips (``--musdb``, default ``../shared/data/musdb18-7s`` when
present) and synthetic full-length songs (``--songs 5 20 50`` of ``--seconds 210``),
rendered once into ``data/benchmark/`` and reused.

    python benchmarks/benchmark_data.py                 # everything
    python benchmarks/benchmark_data.py --songs 5 --no-musdb
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anchormix_kedro  # noqa: F401  (sets the offline/telemetry defaults)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_ROOT / "data" / "benchmark"


def peak_memory_mb() -> float:
    """This process's own peak resident memory (Linux ``VmHWM``, in MB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0  # reported in kB
    raise RuntimeError("no VmHWM in /proc/self/status: the memory figures need Linux")


def worker_decode(root: Path) -> dict:
    from anchormix_kedro.instruction_data.musdb import discover_corpus
    from anchormix_kedro.pipeline_registry import register_pipelines
    from anchormix_kedro.vocabulary import STEM_NAMES

    register_pipelines()  # same libraries loaded as the pipeline worker: memory compares like with like

    start = time.perf_counter()
    corpus = discover_corpus(root)
    samples = 0
    for track in corpus.tracks:
        samples += corpus.load_stems(track, STEM_NAMES).n_samples
    return {"seconds": time.perf_counter() - start, "songs": len(corpus), "samples": samples}


def worker_pipeline(root: Path) -> dict:
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner
    from omegaconf.resolvers import oc

    from anchormix_kedro.pipeline_registry import register_pipelines

    with tempfile.TemporaryDirectory() as workdir:
        os.chdir(workdir)  # relative catalog paths land in the temporary folder
        loader = OmegaConfigLoader(
            conf_source=str(PROJECT_ROOT / "conf"),
            base_env="base",
            default_run_env="base",
            custom_resolvers={"oc.env": oc.env},
            runtime_params={"musdb_root": str(root)},
        )
        params = loader["parameters"]
        catalog = DataCatalog.from_config(loader["catalog"])
        for name, value in _flatten_params(params).items():
            catalog[name] = MemoryDataset(value)
        start = time.perf_counter()
        SequentialRunner().run(register_pipelines()["data"], catalog)
        seconds = time.perf_counter() - start
        examples = len(catalog.load("instruction_dataset"))
    return {"seconds": seconds, "examples": examples}


def _flatten_params(params: dict) -> dict:
    """Kedro's parameter feed: ``parameters`` plus ``params:a`` and ``params:a.b`` for nested keys."""
    feed = {"parameters": params}

    def add(key: str, value) -> None:
        feed[f"params:{key}"] = value
        if isinstance(value, dict):
            for sub_key, sub_value in value.items():
                add(f"{key}.{sub_key}", sub_value)

    for key, value in params.items():
        add(key, value)
    return feed


def run_worker(kind: str, root: Path) -> dict:
    """Run one measurement in a fresh interpreter, so peak memory is its own."""
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--root", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{kind} worker failed on {root}:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def synthetic_root(n_songs: int, seconds: float, pool_size: int) -> Path:
    """A root holding the first ``n_songs`` of a rendered pool of full-length songs."""
    from anchormix_kedro.datasets import MusdbCorpusDataset
    from anchormix_kedro.instruction_data.synthetic.corpus import SyntheticCorpusSpec

    pool = BENCH_DIR / f"synthetic_{pool_size}x{int(seconds)}s"
    spec = SyntheticCorpusSpec.from_params(
        {
            "n_songs": pool_size,
            "seconds": seconds,
            "seed": 99,
            "test_fraction": 0.2,
            "instrumental_fraction": 0.1,
        }
    )
    started = time.perf_counter()
    MusdbCorpusDataset(path=str(pool)).save(spec)  # no-op when already rendered
    if time.perf_counter() - started > 1:
        print(
            f"  rendered {pool_size} synthetic songs in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    subset = BENCH_DIR / f"subset_{n_songs}x{int(seconds)}s"
    if subset.exists():
        shutil.rmtree(subset)
    songs = [p for folder in ("train", "test") for p in sorted((pool / folder).glob("*"))][:n_songs]
    for song in songs:
        (subset / song.parent.name).mkdir(parents=True, exist_ok=True)
        (subset / song.parent.name / song.name).symlink_to(song)
    shutil.copy(pool / "tracklist.csv", subset / "tracklist.csv")
    return subset


def measure(label: str, root: Path) -> dict:
    decode = run_worker("decode", root)
    pipeline = run_worker("pipeline", root)
    row = {
        "corpus": label,
        "songs": decode["songs"],
        "audio_minutes": round(decode["samples"] / 44100 / 60, 1),
        "decode_s": round(decode["seconds"], 2),
        "pipeline_s": round(pipeline["seconds"], 2),
        "time_ratio": round(pipeline["seconds"] / decode["seconds"], 2),
        "decode_peak_mb": round(decode["peak_memory_mb"]),
        "pipeline_peak_mb": round(pipeline["peak_memory_mb"]),
        "memory_ratio": round(pipeline["peak_memory_mb"] / decode["peak_memory_mb"], 2),
        "examples": pipeline["examples"],
    }
    print(
        f"  {label}: {row['songs']} songs, decode {row['decode_s']} s / {row['decode_peak_mb']} MB, "
        f"pipeline {row['pipeline_s']} s / {row['pipeline_peak_mb']} MB "
        f"(time x{row['time_ratio']}, memory x{row['memory_ratio']})",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--musdb", type=Path, default=PROJECT_ROOT.parent / "shared" / "data" / "musdb18-7s"
    )
    parser.add_argument("--no-musdb", action="store_true", help="skip the real clips")
    parser.add_argument(
        "--songs", type=int, nargs="*", default=[5, 20, 50], help="synthetic corpus sizes"
    )
    parser.add_argument(
        "--seconds", type=float, default=210.0, help="length of each synthetic song"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=PROJECT_ROOT / "data" / "08_reporting" / "benchmark_data.json",
    )
    parser.add_argument("--worker", choices=["decode", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        root = args.root.resolve()
        result = worker_decode(root) if args.worker == "decode" else worker_pipeline(root)
        result["peak_memory_mb"] = peak_memory_mb()
        print(json.dumps(result))
        return

    rows = []
    if not args.no_musdb:
        if (args.musdb / "train").is_dir() or (args.musdb / "test").is_dir():
            rows.append(measure("MUSDB18 clips", args.musdb))
        else:
            print(f"  (no MUSDB18 at {args.musdb}: skipping the real clips)")
    for n_songs in args.songs:
        root = synthetic_root(n_songs, args.seconds, max(args.songs))
        rows.append(measure(f"synthetic {args.seconds / 60:.1f} min", root))

    header = "| corpus | songs | audio (min) | decode only | pipeline | time ratio | peak MB decode | peak MB pipeline | memory ratio |"
    print("\n" + header + "\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['corpus']} | {r['songs']} | {r['audio_minutes']} | {r['decode_s']} s | {r['pipeline_s']} s | "
            f"{r['time_ratio']} | {r['decode_peak_mb']} | {r['pipeline_peak_mb']} | {r['memory_ratio']} |"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
