"""Load benchmark of the listening-study web server: save latency with many raters at once.

Measures, on loopback, how fast the study server (:mod:`anchormix_kedro.study.server`)
acknowledges the answers of ``--raters`` raters (default 30) rating at the same time, and
checks that every acknowledged answer is the one stored:

1. builds a small synthetic study (1-second tone clips) and a fresh SQLite database (WAL
   mode, ``synchronous=FULL``, as the server uses it) in a temporary folder, invites the
   raters, and gives their consent and background directly through the store;
2. starts the real server as a separate process (this script with ``--serve``: the
   application of ``create_app`` under uvicorn, as ``anchormix study serve`` runs it, the
   access log included) bound to 127.0.0.1 on a free port, so the load generator does not
   share its interpreter;
3. opens each rater's answers once (``GET /api/r/<token>/state``, as the page does; not
   timed), then measures a *baseline* under the same concurrency: every rater, in its own
   thread and connection, asks ``GET /healthz`` (no database work) ``--saves`` times;
4. measures the *saves*: every rater saves ``--saves`` answers as the rating page does:
   each criterion set is one ``PUT /api/r/<token>/answers/<scenario>`` based on the last
   revision the server acknowledged, and some written feedback is typed in one or two
   saves; a lost reply (transport error, 5xx) is retried with the same ``save_id``. Each
   phase stops at ``--max-seconds`` at the latest (requests in flight are let finish);
5. reads the server's peak resident memory (``VmHWM`` in ``/proc/<pid>/status``) and
   compares it with its resident memory right after start; stops the server;
6. opens the database with the store and checks that each rater's stored answers (revision,
   ratings, texts) are the last ones acknowledged, that no unacknowledged item is stored,
   and that ``answer_revisions`` holds one row per acknowledged save.

It prints count, errors, p50/p95/p99 latency (ms, per request, as the client sees it) and
throughput of the baseline and of the saves, the same percentiles of the time inside the
application (from the server's access log), the server's CPU time per phase, the ratio of
the saves' p95 to the baseline's, the memory figures, the check, the load average and the
latency of a plain ``fsync`` in the work folder (the disk's share of a save), and writes
them as JSON to ``data/08_reporting/benchmarks/study_server.json`` (or ``--output``). It
exits with 1 when the check fails, a save was never acknowledged or the server's reply did
not echo what was sent, 2 when the server cannot be started. The goal is a save p95 of at
most 50 ms on 2 cores with 30 concurrent raters. With the default think time
(``--think-ms 0``: every rater saves again as soon as its last save is acknowledged) this
is a closed-loop stress test far above the rate of human raters; give a think time for a
paced load. The client shares the machine's cores with the server, as it would on a 2-core
runner, and other work on the machine shows in the figures: compare runs on a quiet one.

    .venv/bin/python benchmarks/benchmark_study_server.py               # about 20 s
    .venv/bin/python benchmarks/benchmark_study_server.py --think-ms 500 --saves 30 --max-seconds 40
    .venv/bin/python benchmarks/benchmark_study_server.py --workdir data/tmp --keep --kill
"""

from __future__ import annotations

import os

# Offline and no telemetry, in this process and in the server it starts.
for _name, _value in {
    "DO_NOT_TRACK": "true",
    "KEDRO_DISABLE_TELEMETRY": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}.items():
    os.environ.setdefault(_name, _value)

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = PROJECT_ROOT / "data" / "08_reporting" / "benchmarks" / "study_server.json"
STUDY_PARAMS = PROJECT_ROOT / "conf" / "base" / "parameters" / "study.yml"
GOAL_P95_MS = 50.0
HOST = "127.0.0.1"
VERSION = "2026-01-01T00.00.00.000Z"
RATE = 44100
SYSTEMS = ("advisor", "dsp_baseline", "generic_base")
ADVICE = {
    "advisor": "The vocal is too loud: pull the vocal fader down by about 4 dB.",
    "dsp_baseline": "The vocal sits right against the drums; no gain change is needed.",
    "generic_base": "Interesting song, nice groove.",
}
GENRES = ("Pop", "Rock", "Jazz")
PHRASES = (
    "Clear and specific: it names the stem and how far to move it.",
    "The direction is right, but 4 dB feels like too much here.",
    "Ça sonne mieux après — the vocal finally sits in the mix.",
    "Too vague to act on; I would want a number.",
    "I would rather cut the drums a little than touch the vocal.",
)
BACKGROUND = {"role": "Mixing engineer", "experience_years": "3-5 years",
              "listening_setup": "Headphones", "genres": "Pop, Rock"}  # fmt: skip


# ------------------------------------------------------------------------------ the server


def study_params() -> dict:
    """The ``study`` parameters as shipped (information sheet, background choices)."""
    import yaml

    return yaml.safe_load(STUDY_PARAMS.read_text(encoding="utf-8"))["study"]


def serve(args: argparse.Namespace) -> int:
    """The ``--serve`` mode: the study under ``--study-root`` over ``--database``, served by
    uvicorn as ``anchormix study serve`` serves it, on a port it prints first."""
    import logging
    import socket

    import uvicorn

    from anchormix_kedro.study.material import load_study
    from anchormix_kedro.study.server import create_app
    from anchormix_kedro.study.storage import StudyStore

    study = load_study(Path(args.study_root))
    store = StudyStore.open(f"sqlite:///{args.database}")
    app = create_app(store, study, study_params())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    config = uvicorn.Config(app, host=HOST, port=port, access_log=False, log_level="warning")
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def make_study(root: Path, n_songs: int, n_examples: int):
    """A synthetic study built and saved under ``root``, loaded back as the server loads it."""
    import numpy as np
    import pandas as pd

    from anchormix_kedro.study import kit
    from anchormix_kedro.study.material import build_study, load_study, save_study

    rows = []
    for k in range(n_songs):
        for gain, label in ((4.0, "too_loud"), (0.0, "balanced")):
            example_id = f"song{k}|drums>vocals|{gain:+.1f}"
            for system in SYSTEMS:
                rows.append({"example_id": example_id, "system": system, "excerpt_id": f"song{k}",
                             "genre": GENRES[k % len(GENRES)], "anchor": "drums",
                             "target": "vocals", "label": label, "gain_db": gain,
                             "advice": ADVICE[system]})  # fmt: skip
    t = np.arange(RATE) / RATE  # one second
    tones = {"drums": (110.0, 0.5), "bass": (55.0, 0.3), "other": (440.0, 0.1),
             "vocals": (330.0, 0.25)}  # fmt: skip
    audio = {
        name: np.stack([a * np.sin(2 * np.pi * f * t)] * 2, axis=1).astype(np.float32)
        for name, (f, a) in tones.items()
    }

    def load_excerpt(excerpt_id: str) -> dict:
        return {"meta": {"excerpt_id": excerpt_id, "sample_rate": RATE}, "audio": audio}

    key = kit.sample_scenarios(pd.DataFrame(rows), n_examples, "benchmark-study", seed=1)
    tracks = pd.DataFrame({"excerpt_id": [f"song{k}" for k in range(n_songs)],
                           "source": "synthetic"})  # fmt: skip
    built = build_study(key, load_excerpt, tracks, kit.PageSettings(clip_seconds=1.0), VERSION)
    save_study(built, root)
    return load_study(root, VERSION)


def proc_status(pid: int) -> dict[str, float]:
    """``VmRSS``, ``VmHWM`` (MiB) and ``Threads`` of a process, from ``/proc/<pid>/status``."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024.0
        elif name == "Threads":
            found[name] = float(value.strip())
    if "VmHWM" not in found:
        raise RuntimeError(f"no VmHWM in /proc/{pid}/status: the memory figures need Linux")
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(workdir: Path, study_root: Path, database: Path, timeout: float):
    """``(process, base_url, log_path)``: the server started and answering ``/healthz``."""
    import httpx

    log_path = workdir / "server.log"
    log = log_path.open("w")
    command = [sys.executable, str(Path(__file__).resolve()), "--serve",
               "--study-root", str(study_root), "--database", str(database)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, cwd=PROJECT_ROOT,
                               text=True)  # fmt: skip
    log.close()
    deadline = time.monotonic() + timeout
    port = None
    while port is None and time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line.startswith("PORT "):
                port = int(line.split()[1])
    if port is None:
        stop_server(process)
        raise RuntimeError(f"the server did not start within {timeout:.0f} s: see {log_path}")
    base = f"http://{HOST}:{port}"
    with httpx.Client(base_url=base, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.get("/healthz").status_code == 200:
                    return process, base, log_path
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    stop_server(process)
    raise RuntimeError(f"the server did not answer /healthz within {timeout:.0f} s: see {log_path}")


def stop_server(process: subprocess.Popen, kill: bool = False) -> int | None:
    """Stop the server (SIGTERM: uvicorn's graceful shutdown; SIGKILL with ``kill``)."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


# ------------------------------------------------------------------------------- the raters


@dataclass
class Rater:
    """One simulated rater: its link, what it sent and what the server acknowledged."""

    index: int
    label: str
    token: str
    rater_id: int
    latencies_ms: list[float] = field(default_factory=list)  # requests that got a reply
    errors: Counter = field(default_factory=Counter)  # transport errors and non-2xx replies
    statuses: Counter = field(default_factory=Counter)  # "saved", "replayed", "conflict"
    acked: dict[str, dict] = field(default_factory=dict)  # item -> last acknowledged answer
    acked_saves: int = 0  # save ids acknowledged (saved or replayed), each once
    unacknowledged: int = 0  # saves given up after every retry failed
    echo_mismatches: list[str] = field(default_factory=list)


def _pace(rng: random.Random, think_ms: float) -> None:
    if think_ms > 0:
        time.sleep(rng.uniform(0, 2 * think_ms) / 1000.0)


def run_baseline(rater: Rater, client, n: int, deadline: float, think_ms: float) -> None:
    import httpx

    rng = random.Random(1000 + rater.index)
    _pace(rng, think_ms)  # raters do not start in lockstep
    for _ in range(n):
        if time.monotonic() >= deadline:
            return
        started = time.perf_counter()
        try:
            response = client.get("/healthz")
        except httpx.HTTPError as error:
            rater.errors[type(error).__name__] += 1
            continue
        rater.latencies_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            rater.errors[f"HTTP {response.status_code}"] += 1
        _pace(rng, think_ms)


def save(rater: Rater, client, item: str, ratings: dict, texts: dict, retries: int,
         deadline: float) -> None:  # fmt: skip
    """One save as the page makes it: based on the last acknowledged revision, retried with
    the same ``save_id`` while the reply is lost (transport error, 5xx, 429)."""
    import httpx

    base = rater.acked.get(item, {}).get("revision", 0)
    body = {"revision": base, "ratings": dict(ratings), "texts": dict(texts),
            "save_id": uuid.uuid4().hex}  # fmt: skip
    url = f"/api/r/{rater.token}/answers/{item}"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(0.05 * attempt)
            if time.monotonic() > deadline + 10:
                break
        started = time.perf_counter()
        try:
            response = client.put(url, json=body)
        except httpx.HTTPError as error:
            rater.errors[type(error).__name__] += 1
            continue
        rater.latencies_ms.append((time.perf_counter() - started) * 1000)
        if response.status_code == 200:
            data = response.json()
            rater.statuses[data["status"]] += 1
            rater.acked_saves += 1
            answer = data["answer"]
            if answer["ratings"] != body["ratings"] or answer["texts"] != body["texts"]:
                rater.echo_mismatches.append(f"{item} rev {answer['revision']}")
            rater.acked[item] = answer
            return
        rater.errors[f"HTTP {response.status_code}"] += 1
        if response.status_code == 409:  # the page shows the stored answer and goes on from it
            rater.statuses["conflict"] += 1
            rater.acked[item] = response.json()["answer"]
            return
        if response.status_code < 500 and response.status_code != 429:
            return  # refused (4xx): the page shows the error and does not retry
    rater.unacknowledged += 1


def run_saves(rater: Rater, client, scenarios: list[str], n: int, deadline: float,
              think_ms: float, retries: int) -> None:  # fmt: skip
    """Rate scenario after scenario (a save per criterion, then some typed feedback), going
    round again (changing a rating) once all are rated, until ``n`` saves or the deadline."""
    from anchormix_kedro.vocabulary import CRITERIA, LIKERT_MAX, LIKERT_MIN

    rng = random.Random(rater.index)
    order = list(scenarios)
    rng.shuffle(order)
    _pace(rng, think_ms)  # raters do not start in lockstep
    made = 0
    round_ = 0

    def step(item: str, ratings: dict, texts: dict) -> bool:
        nonlocal made
        if made >= n or time.monotonic() >= deadline:
            return False
        save(rater, client, item, ratings, texts, retries, deadline)
        made += 1
        _pace(rng, think_ms)
        return True

    while made < n and time.monotonic() < deadline:
        for item in order:
            stored = rater.acked.get(item)
            ratings = dict(stored["ratings"]) if stored else {c: None for c in CRITERIA}
            texts = dict(stored["texts"]) if stored else {"strengths": "", "weaknesses": "",
                                                          "suggestions": ""}  # fmt: skip
            criteria = list(CRITERIA) if round_ == 0 else [rng.choice(CRITERIA)]
            for criterion in criteria:
                ratings[criterion] = rng.randint(LIKERT_MIN, LIKERT_MAX)
                if not step(item, ratings, texts):
                    return
            if rng.random() < 0.5:  # typed feedback: saved after a pause in typing, twice
                phrase = rng.choice(PHRASES)
                for typed in (phrase[: len(phrase) // 2], phrase):
                    texts["strengths"] = typed
                    if not step(item, ratings, texts):
                        return
            if rng.random() < 0.2:
                texts["weaknesses"] = rng.choice(PHRASES)
                if not step(item, ratings, texts):
                    return
        if round_ == 0:
            workflow = {"workflow_fit": "It would fit between rough mix and mix review.",
                        "workflow_change": ""}  # fmt: skip
            if not step("workflow", {}, workflow):
                return
        round_ += 1


def run_phase(raters: list[Rater], base: str, work, deadline_s: float,
              log_path: Path) -> tuple[float, tuple[int, int]]:  # fmt: skip
    """Run ``work(rater, client, deadline)`` for every rater in its own thread and
    connection, all released at once: the phase's wall time in seconds, and the span of
    the server's log that the phase wrote (byte offsets)."""
    import httpx

    clients = [
        httpx.Client(
            base_url=base, trust_env=False, timeout=10.0, limits=httpx.Limits(max_connections=1)
        )
        for _ in raters
    ]
    for client in clients:  # open each connection first
        client.get("/healthz")
    barrier = threading.Barrier(len(raters) + 1)
    times: dict[str, float] = {}

    def runner(rater: Rater, client) -> None:
        barrier.wait()
        work(rater, client, times["deadline"])

    threads = [threading.Thread(target=runner, args=(r, c), daemon=True)
               for r, c in zip(raters, clients, strict=True)]  # fmt: skip
    for thread in threads:
        thread.start()
    log_start = log_path.stat().st_size
    times["deadline"] = time.monotonic() + deadline_s
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join(timeout=max(0.0, times["deadline"] - time.monotonic()) + 60)
    elapsed = time.perf_counter() - started
    log_end = log_path.stat().st_size
    for client in clients:
        client.close()
    if any(thread.is_alive() for thread in threads):
        raise RuntimeError("a rater thread did not stop after the deadline")
    return elapsed, (log_start, log_end)


def server_side(log_path: Path, span: tuple[int, int], method: str) -> dict:
    """Latency percentiles of the ``method`` requests the server's access log shows in
    ``span``: the time inside the application (middleware to reply), without the HTTP
    server's parsing, the network and the client."""
    import numpy as np

    with log_path.open("rb") as log:
        log.seek(span[0])
        lines = log.read(span[1] - span[0]).decode("utf-8", "replace").splitlines()
    times = np.array([float(line.split()[-2]) for line in lines
                      if f"study.access {method} " in line and line.endswith(" ms")])  # fmt: skip
    if not times.size:
        return {"requests": 0}
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"requests": int(times.size), "p50_ms": round(float(p50), 2),
            "p95_ms": round(float(p95), 2), "p99_ms": round(float(p99), 2),
            "max_ms": round(float(times.max()), 2)}  # fmt: skip


def summary(raters: list[Rater], seconds: float) -> dict:
    import numpy as np

    latencies = np.array([x for r in raters for x in r.latencies_ms], dtype=float)
    errors: Counter = sum((r.errors for r in raters), Counter())
    figures = {"requests": int(latencies.size), "errors": int(sum(errors.values())),
               "error_kinds": dict(errors), "seconds": round(seconds, 3),
               "throughput_per_s": round(latencies.size / seconds, 1) if seconds else None}  # fmt: skip
    if latencies.size:
        p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
        figures.update(p50_ms=round(float(p50), 2), p95_ms=round(float(p95), 2),
                       p99_ms=round(float(p99), 2), mean_ms=round(float(latencies.mean()), 2),
                       max_ms=round(float(latencies.max()), 2))  # fmt: skip
    return figures


# ------------------------------------------------------------------------------- the check


def check_store(database: Path, raters: list[Rater]) -> dict:
    """Compare the database, read with the store once the server is stopped, with what the
    server acknowledged to each rater."""
    import sqlalchemy as sa

    from anchormix_kedro.study.schema import answer_revisions
    from anchormix_kedro.study.storage import StudyStore

    store = StudyStore.open(f"sqlite:///{database}", upgrade=False)
    mismatches: list[str] = []
    try:
        for rater in raters:
            stored = store.answers_of(rater.rater_id)
            for item in sorted(set(stored) | set(rater.acked)):
                got, want = stored.get(item), rater.acked.get(item)
                if got is None or want is None:
                    mismatches.append(f"{rater.label} {item}: stored {got is not None}, "
                                      f"acknowledged {want is not None}")  # fmt: skip
                elif (got.revision, got.ratings, got.texts) != (
                    want["revision"],
                    want["ratings"],
                    want["texts"],
                ):
                    mismatches.append(f"{rater.label} {item}: stored revision {got.revision} "
                                      f"{got.ratings}, acknowledged {want['revision']} "
                                      f"{want['ratings']}")  # fmt: skip
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(answer_revisions.c.rater_id, sa.func.count())
                .group_by(answer_revisions.c.rater_id)
            ).all()  # fmt: skip
        per_rater = {int(rater_id): int(count) for rater_id, count in rows}
    finally:
        store.close()
    revision_rows = sum(per_rater.values())
    for rater in raters:
        if per_rater.get(rater.rater_id, 0) != rater.acked_saves:
            mismatches.append(f"{rater.label}: {per_rater.get(rater.rater_id, 0)} rows in "
                              f"answer_revisions, {rater.acked_saves} saves acknowledged")  # fmt: skip
    acked_items = sum(len(r.acked) for r in raters)
    acked_saves = sum(r.acked_saves for r in raters)
    return {"ok": not mismatches, "acknowledged_saves": acked_saves,
            "answer_revisions_rows": revision_rows, "acknowledged_items": acked_items,
            "mismatches": len(mismatches), "first_mismatches": mismatches[:20]}  # fmt: skip


# ---------------------------------------------------------------------------------- main


def filesystem_of(path: Path) -> str:
    """The file system type holding ``path`` (``/proc/mounts``; ``?`` when unknown)."""
    best, kind = "", "?"
    resolved = str(path.resolve())
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            mount = parts[1]
            if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(
                mount
            ) >= len(best):
                best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


def fsync_probe(folder: Path, n: int = 50) -> dict:
    """Latency of ``n`` small appends each followed by ``fsync`` in ``folder`` (what a
    commit with ``synchronous=FULL`` waits for at least): the disk's share of a save."""
    import numpy as np

    path = folder / "fsync-probe.bin"
    times = []
    with path.open("ab") as probe:
        for _ in range(n):
            started = time.perf_counter()
            probe.write(b"x" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
            times.append((time.perf_counter() - started) * 1000)
    path.unlink()
    p50, p95 = np.percentile(times, [50, 95])
    return {"fsyncs": n, "p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2),
            "max_ms": round(float(max(times)), 2)}  # fmt: skip


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load benchmark of the study server on loopback: save latency of many "
        "concurrent raters against a /healthz baseline, server memory, and a check that "
        "every acknowledged answer is stored.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--raters", type=int, default=30, help="concurrent raters")
    parser.add_argument("--saves", type=int, default=40,
                        help="saves per rater (and /healthz requests per rater in the baseline)")  # fmt: skip
    parser.add_argument("--think-ms", type=float, default=0.0,
                        help="mean pause of a rater after each reply (uniform 0 to twice it)")  # fmt: skip
    parser.add_argument("--max-seconds", type=float, default=20.0,
                        help="hard deadline of each phase; requests in flight are let finish")  # fmt: skip
    parser.add_argument("--examples", type=int, default=8,
                        help="examples in the synthetic study (3 scenarios each)")  # fmt: skip
    parser.add_argument("--retries", type=int, default=3,
                        help="retries of a save whose reply is lost (same save_id)")  # fmt: skip
    parser.add_argument("--kill", action="store_true",
                        help="stop the server with SIGKILL instead of SIGTERM before the check")  # fmt: skip
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the temporary study and database (default: the "
                        "system's temporary folder)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON of the figures")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--study-root", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.serve:
        for name in ("raters", "saves", "examples"):
            if getattr(args, name) < 1:
                parser.error(f"--{name} must be at least 1")
        if args.max_seconds <= 0 or args.think_ms < 0 or args.retries < 0:
            parser.error("--max-seconds must be positive, --think-ms and --retries not negative")
    return args


def print_phase(name: str, figures: dict) -> None:
    line = (f"{name:<9} {figures['requests']:>6} requests, {figures['errors']} errors, "
            f"{figures['seconds']:.2f} s, {figures['throughput_per_s']} req/s")  # fmt: skip
    if "p50_ms" in figures:
        line += (f"; latency p50 {figures['p50_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, "
                 f"p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms")  # fmt: skip
    print(line)
    inside = figures.get("in_server", {})
    if inside.get("requests"):
        print(f"{'':<9} in the server (access log): p50 {inside['p50_ms']:.1f} ms, p95 "
              f"{inside['p95_ms']:.1f} ms, p99 {inside['p99_ms']:.1f} ms, max "
              f"{inside['max_ms']:.1f} ms")  # fmt: skip
    if figures["error_kinds"]:
        print(f"{'':<9} errors: {figures['error_kinds']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        return serve(args)
    import uvicorn

    from anchormix_kedro.study.storage import StudyStore

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="study-bench-", dir=args.workdir))
    database = workdir / "study.db"
    cpus = len(os.sched_getaffinity(0))
    load_before = loadavg()
    print(f"Study server benchmark: {args.raters} raters, {args.saves} saves each, think time "
          f"{args.think_ms:g} ms, {cpus} CPUs, load average {load_before[0]:.2f} before; "
          f"work folder {workdir} ({filesystem_of(workdir)})")  # fmt: skip
    process = None
    try:
        study = make_study(workdir / "studies", n_songs=max(3, (args.examples + 1) // 2),
                           n_examples=args.examples)  # fmt: skip
        store = StudyStore.open(f"sqlite:///{database}")
        store.register_study(study.version, study.study_id, len(study.scenario_ids))
        raters = []
        for index, (label, token) in enumerate(store.invite(study.version, args.raters)):
            rater_id = store.rater_by_token(token).id
            store.consent(rater_id)
            store.set_background(rater_id, BACKGROUND)
            raters.append(Rater(index, label, token, rater_id))
        store.close()
        scenarios = list(study.scenario_ids)
        fsync_before = fsync_probe(workdir)

        try:
            process, base, log_path = start_server(workdir, workdir / "studies", database, 60.0)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            log = workdir / "server.log"
            if log.is_file():
                print(log.read_text()[-3000:], file=sys.stderr)
            args.keep = True
            return 2
        at_start = proc_status(process.pid)
        print(f"Server pid {process.pid} at {base}: {len(scenarios)} scenarios; resident "
              f"{at_start['VmRSS']:.1f} MiB after start")  # fmt: skip

        import httpx

        for rater in raters:  # each page loads its answers first (not timed)
            with httpx.Client(base_url=base, trust_env=False, timeout=10.0) as client:
                client.get(f"/api/r/{rater.token}/state").raise_for_status()

        cpu0 = cpu_seconds(process.pid)
        baseline_raters = [Rater(r.index, r.label, r.token, r.rater_id) for r in raters]
        seconds, baseline_span = run_phase(baseline_raters, base, lambda r, c, d: run_baseline(
            r, c, args.saves, d, args.think_ms), args.max_seconds, log_path)  # fmt: skip
        cpu1 = cpu_seconds(process.pid)
        baseline = summary(baseline_raters, seconds)
        baseline["server_cpu_s"] = round(cpu1 - cpu0, 2)
        seconds, saves_span = run_phase(raters, base, lambda r, c, d: run_saves(
            r, c, scenarios, args.saves, d, args.think_ms, args.retries), args.max_seconds,
            log_path)  # fmt: skip
        cpu2 = cpu_seconds(process.pid)
        saves = summary(raters, seconds)
        saves["server_cpu_s"] = round(cpu2 - cpu1, 2)
        saves["statuses"] = dict(sum((r.statuses for r in raters), Counter()))
        saves["unacknowledged"] = sum(r.unacknowledged for r in raters)
        saves["echo_mismatches"] = sum(len(r.echo_mismatches) for r in raters)

        at_end = proc_status(process.pid)
        fsync_after = fsync_probe(workdir)
        returncode = stop_server(process, kill=args.kill)
        baseline["in_server"] = server_side(log_path, baseline_span, "GET")
        saves["in_server"] = server_side(log_path, saves_span, "PUT")
        load_after = loadavg()
        check = check_store(database, raters)
    finally:
        if process is not None and process.poll() is None:
            stop_server(process, kill=True)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    ratio = (saves["p95_ms"] / baseline["p95_ms"]
             if "p95_ms" in saves and baseline.get("p95_ms") else None)  # fmt: skip
    memory = {"start_rss_mib": round(at_start["VmRSS"], 1),
              "start_hwm_mib": round(at_start["VmHWM"], 1),
              "end_rss_mib": round(at_end["VmRSS"], 1), "peak_hwm_mib": round(at_end["VmHWM"], 1),
              "peak_to_start_ratio": round(at_end["VmHWM"] / at_start["VmRSS"], 3),
              "threads_at_end": int(at_end["Threads"])}  # fmt: skip
    met = saves.get("p95_ms") is not None and saves["p95_ms"] <= GOAL_P95_MS
    figures = {
        "benchmark": "study_server",
        "config": {
            "raters": args.raters,
            "saves_per_rater": args.saves,
            "think_ms": args.think_ms,
            "max_seconds": args.max_seconds,
            "scenarios": len(scenarios),
            "retries": args.retries,
            "stop": "SIGKILL" if args.kill else "SIGTERM",
        },
        "machine": {
            "cpus": cpus,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "python": platform.python_version(),
            "uvicorn": uvicorn.__version__,
            "platform": platform.platform(),
            "database_filesystem": filesystem_of(database.parent),
            "fsync_before": fsync_before,
            "fsync_after": fsync_after,
        },
        "baseline_healthz": baseline,
        "saves": saves,
        "save_p95_to_baseline_p95": round(ratio, 2) if ratio is not None else None,
        "server_memory": memory,
        "server_exit_code": returncode,
        "consistency": check,
        "goal": {"save_p95_ms_at_most": GOAL_P95_MS, "met": met},
    }

    print_phase("baseline", baseline)
    print_phase("saves", saves)
    print(f"{'':<9} statuses {saves['statuses']}, unacknowledged {saves['unacknowledged']}; "
          f"server CPU {baseline['server_cpu_s']:.2f} s (baseline), "
          f"{saves['server_cpu_s']:.2f} s (saves)")  # fmt: skip
    print(f"save p95 / baseline p95 = {figures['save_p95_to_baseline_p95']}; goal p95 <= "
          f"{GOAL_P95_MS:g} ms: {'met' if met else 'NOT met'}")  # fmt: skip
    print(f"server memory: {memory['start_rss_mib']:.1f} MiB after start, peak (VmHWM) "
          f"{memory['peak_hwm_mib']:.1f} MiB, ratio {memory['peak_to_start_ratio']:.2f}")  # fmt: skip
    print(f"consistency: {'OK' if check['ok'] else 'FAILED'}: {check['acknowledged_saves']} "
          f"saves acknowledged, {check['answer_revisions_rows']} rows in answer_revisions, "
          f"{check['acknowledged_items']} answers acknowledged, {check['mismatches']} "
          f"mismatches")  # fmt: skip
    for line in check["first_mismatches"]:
        print(f"  {line}")
    print(f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; disk fsync "
          f"(4 KiB append) p50/p95 {fsync_before['p50_ms']:.1f}/{fsync_before['p95_ms']:.1f} ms "
          f"before, {fsync_after['p50_ms']:.1f}/{fsync_after['p95_ms']:.1f} ms after")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=1, ensure_ascii=False) + "\n")
    print(f"Wrote {args.output}")
    failed = not check["ok"] or saves["unacknowledged"] or saves["echo_mismatches"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
