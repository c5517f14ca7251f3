"""Benchmark of concurrent judging: 1,000 judge calls against a local test server.

Starts the local test judge (:mod:`anchormix_kedro.evaluation.judge.fake_server`) on 127.0.0.1, answering every request after a
fixed ``--delay`` (0.1 s), and judges ``--items`` distinct pieces of advice (1,000) with
the project's judge (the OpenAI-compatible backend, ``judge_all``), in the same run:

- ``serial``: one call at a time (``max_in_flight=1``), the baseline;
- ``concurrent``: ``--in-flight`` calls at once (16);
- ``cached``: the concurrent run again over its own cache (no call should be made);
- ``listwise``: ``--listwise-examples`` examples of four systems each, ranked concurrently.

Each answer is derived from its prompt (scores from a digest of the advice; every
``--malformed-every``-th answer is not JSON), so the script checks that every row holds
its own item's scores, that malformed answers stay missing (nothing invented) and that
rankings map back to the right systems. It prints a table and writes
``data/08_reporting/benchmark_judge.json``; it exits with an error if a check fails.

    python benchmarks/benchmark_judge.py
    python benchmarks/benchmark_judge.py --items 200 --in-flight 32
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import anchormix_kedro  # noqa: F401  (sets the offline/telemetry defaults)
from anchormix_kedro.evaluation.judge.fake_server import (
    FakeJudgeServer,
    digest,
    expected_ranking,
    expected_scores,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = PROJECT_ROOT / "data" / "08_reporting" / "benchmark_judge.json"
SYSTEMS = ("advisor", "no_anchor", "generic_base", "dsp_baseline")
LABELS = ("too_loud", "too_soft", "balanced")
TARGETS = ("vocals", "bass", "other")


def make_items(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` items, each with its own scenario and advice (no two prompts alike)."""
    from anchormix_kedro.advice_language.wording import advice_text

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label, target = LABELS[i % 3], rng.choice(TARGETS)
        gain = 0.0 if label == "balanced" else round(rng.uniform(1.6, 12.0), 2)
        gain = -gain if label == "too_soft" else gain
        advice = advice_text(label, target, "drums", gain, rng) + f" (Take {i}.)"
        rows.append(
            {"item_id": f"item-{i:04d}", "advice": advice, "target": target, "anchor": "drums",
             "genre": "Pop/Rock", "gain_db": gain, "label": label}
        )  # fmt: skip
    return pd.DataFrame(rows)


def check_pointwise(items: pd.DataFrame, frame: pd.DataFrame, malformed_every: int) -> dict:
    """Rows in item order, each with its own item's scores, malformed answers missing."""
    from anchormix_kedro.vocabulary import CRITERIA

    misplaced = invented = missing_unexpectedly = 0
    for item, row in zip(items.itertuples(index=False), frame.itertuples(index=False), strict=True):
        malformed = malformed_every and int(digest(item.advice), 16) % malformed_every == 0
        if row.item_id != item.item_id:
            misplaced += 1
        elif malformed:
            invented += int(bool(row.judge_ok) or any(pd.notna(getattr(row, c)) for c in CRITERIA))
        elif not row.judge_ok:
            missing_unexpectedly += 1
        elif {c: int(getattr(row, c)) for c in CRITERIA} != expected_scores(item.advice) or (
            digest(item.advice)[:16] not in row.rationale
        ):
            misplaced += 1
    return {
        "rows": len(frame),
        "scored": int(frame["judge_ok"].sum()),
        "malformed_kept_missing": int((~frame["judge_ok"]).sum()),
        "misplaced": misplaced,
        "invented": invented,
        "missing_unexpectedly": missing_unexpectedly,
    }


def timed_judge_all(items: pd.DataFrame, url: str, in_flight: int, cache_dir: Path) -> tuple:
    from anchormix_kedro.evaluation.judge import LLMJudge, OpenAICompatibleBackend, judge_all

    backend = OpenAICompatibleBackend(url, "fake-judge", timeout_s=30, max_retries=2)
    judge = LLMJudge(backend, cache_dir=cache_dir, max_in_flight=in_flight)
    started = time.perf_counter()
    frame = judge_all(items, judge, progress=False)
    return frame, time.perf_counter() - started


def listwise_check(n_examples: int, url: str, in_flight: int, cache_dir: Path) -> dict:
    """Rank ``n_examples`` examples of four systems; every rank must follow the server's."""
    from anchormix_kedro.evaluation.judge import LLMJudge, OpenAICompatibleBackend
    from anchormix_kedro.evaluation.listwise import rank_advice

    answers = make_items(n_examples * len(SYSTEMS), seed=1)
    table = answers.assign(
        example_id=[f"ex-{i // len(SYSTEMS):04d}" for i in range(len(answers))],
        system=[SYSTEMS[i % len(SYSTEMS)] for i in range(len(answers))],
        song=[f"song-{i // (4 * len(SYSTEMS))}" for i in range(len(answers))],
    )
    # One scenario per example: the first answer's.
    for column in ("target", "gain_db", "label"):
        table[column] = table.groupby("example_id")[column].transform("first")
    keys = zip(table["example_id"], table["system"], strict=True)
    advice_of = dict(zip(keys, table["advice"], strict=True))
    backend = OpenAICompatibleBackend(url, "fake-judge", timeout_s=30, max_retries=2)
    judge = LLMJudge(backend, cache_dir=cache_dir, max_in_flight=in_flight)
    started = time.perf_counter()
    ranks = rank_advice(table, judge, seed=0)
    seconds = time.perf_counter() - started
    wrong = 0
    for example_id, rows in ranks.groupby("example_id"):
        system_of = dict(zip(rows["shown_as"], rows["system"], strict=True))
        shown = {label: advice_of[(example_id, s)] for label, s in system_of.items()}
        expected = {system_of[label]: r + 1 for r, label in enumerate(expected_ranking(shown))}
        wrong += sum(
            rank is pd.NA or int(rank) != expected[system]
            for system, rank in zip(rows["system"], rows["listwise_rank"], strict=True)
        )
    per_example = ranks.drop_duplicates("example_id")
    return {
        "examples": n_examples,
        "seconds": round(seconds, 2),
        "ranked": int(per_example["listwise_ok"].sum()),
        "wrong_ranks": int(wrong),
        "orders_seen": int(ranks.groupby("example_id")["shown_as"].agg("".join).nunique()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1000, help="judge calls (default 1000)")
    parser.add_argument("--delay", type=float, default=0.1, help="server delay per answer (s)")
    parser.add_argument("--in-flight", type=int, default=16, help="concurrent calls (16)")
    parser.add_argument("--malformed-every", type=int, default=25, help="0: none malformed")
    parser.add_argument("--listwise-examples", type=int, default=250)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    items = make_items(args.items)
    results: dict = {"items": args.items, "delay_s": args.delay, "in_flight": args.in_flight}
    with FakeJudgeServer(args.delay, malformed_every=args.malformed_every) as server, \
            tempfile.TemporaryDirectory() as scratch:  # fmt: skip
        runs = {}
        for name, in_flight, cache in (
            ("serial", 1, "serial"),
            ("concurrent", args.in_flight, "concurrent"),
            ("cached", args.in_flight, "concurrent"),
        ):
            before = server.requests
            server.peak_in_flight = 0
            frame, seconds = timed_judge_all(items, server.url, in_flight, Path(scratch) / cache)
            runs[name] = {
                "seconds": round(seconds, 2),
                "requests": server.requests - before,
                "peak_in_flight": server.peak_in_flight,
                **check_pointwise(items, frame, args.malformed_every),
            }
            print(f"  {name}: {seconds:.2f} s, {runs[name]['requests']} requests", flush=True)
        listwise = listwise_check(
            args.listwise_examples, server.url, args.in_flight, Path(scratch) / "listwise"
        )
    ratio = runs["concurrent"]["seconds"] / runs["serial"]["seconds"]
    results |= {
        "runs": runs,
        "concurrent_over_serial": round(ratio, 4),
        "listwise": listwise,
        "machine": {"cpus": os.cpu_count(), "load_average_1min": round(os.getloadavg()[0], 2)},
    }
    print(f"\n{args.items} judge calls, server delay {args.delay} s\n")
    print(
        "| run | seconds | requests | peak in flight | scored | kept missing | misplaced | invented |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, run in runs.items():
        print(f"| {name} | {run['seconds']} | {run['requests']} | {run['peak_in_flight']} | "
              f"{run['scored']} | {run['malformed_kept_missing']} | {run['misplaced']} | {run['invented']} |")  # fmt: skip
    print(f"\nconcurrent / serial time: {ratio:.3f} (goal: at most 0.1)")
    print(f"listwise: {listwise['examples']} examples ranked in {listwise['seconds']} s, "
          f"{listwise['ranked']} ranked, {listwise['wrong_ranks']} ranks wrong")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.output}")
    failures = [
        f"{name}: {key} = {run[key]}"
        for name, run in runs.items()
        for key in ("misplaced", "invented", "missing_unexpectedly")
        if run[key]
    ]
    if runs["cached"]["requests"]:
        failures.append(f"cached run sent {runs['cached']['requests']} requests")
    if listwise["wrong_ranks"] or listwise["ranked"] != listwise["examples"]:
        failures.append(f"listwise: {listwise}")
    if ratio > 0.1:
        failures.append(f"concurrent took {ratio:.3f} of the serial time (goal <= 0.1)")
    if failures:
        sys.exit("FAILED: " + "; ".join(failures))


if __name__ == "__main__":
    main()
