"""Benchmark of the training input pipeline: cached log-mel features against extracting on the fly.

Both paths produce the same batches (token ids with expanded audio placeholders, masked
labels, features, feature masks) for the same conversations of the instruction dataset:

- ``cached``: the project's path, features from the log-mel cache with the gain applied
  in the log domain (:mod:`anchormix_kedro.model.features`);
- ``on the fly``: load the 16 kHz excerpt, scale the clip by its gain and call the
  Qwen2-Audio processor (Whisper feature extraction and tokenisation) for every example.

It reports examples per second for each, in the same run, for the real model's 30 s
window and the tiny model's window. Run the ``data`` pipeline first (it reads
``instruction_dataset`` and ``excerpts`` through the project's catalog).

    python benchmarks/benchmark_training_input.py --examples 256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from anchormix_kedro.advice_language.wording import parse_audio_uri
from anchormix_kedro.instruction_data.audio import apply_gain_db
from anchormix_kedro.model.data import AudioChatCollator, ConversationDataset, FeatureStore
from anchormix_kedro.model.features import log_mel_record
from anchormix_kedro.model.front_end import FrontEnd
from anchormix_kedro.model.pretraining import conversation_texts
from anchormix_kedro.model.tiny import tiny_processor
from anchormix_kedro.vocabulary import ANCHOR_TARGET, messages_column

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def on_the_fly_batch(conversations: list[list[dict]], processor, excerpts: dict) -> dict:
    """What a loader without the cache does: audio from disk, gain, processor call."""
    texts, clips = [], []
    for messages in conversations:
        texts.append(processor.apply_chat_template(messages, tokenize=False))
        for message in messages:
            if isinstance(message["content"], list):
                for item in message["content"]:
                    if item["type"] == "audio":
                        excerpt_id, stems, gain_db = parse_audio_uri(item["audio_url"])
                        audio = excerpts[excerpt_id]()["audio"]
                        clips.append(apply_gain_db(audio[stems[0]], gain_db))
    return processor(
        text=texts,
        audio=clips,
        sampling_rate=processor.feature_extractor.sampling_rate,
        return_tensors="pt",
        padding=True,
    )


def measure(
    conversations: list[str], processor, store: FeatureStore, excerpts: dict, batch_size: int
) -> dict:
    collator = AudioChatCollator(processor.tokenizer.pad_token_id)
    dataset = ConversationDataset(conversations, processor, store)
    started = time.perf_counter()
    for start in range(0, len(dataset), batch_size):
        collator([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
    cached = len(dataset) / (time.perf_counter() - started)
    parsed = [json.loads(c) for c in conversations]
    started = time.perf_counter()
    for start in range(0, len(parsed), batch_size):
        on_the_fly_batch(parsed[start : start + batch_size], processor, excerpts)
    fly = len(parsed) / (time.perf_counter() - started)
    return {
        "cached_examples_per_s": round(cached, 1),
        "on_the_fly_examples_per_s": round(fly, 1),
        "speedup": round(cached / fly, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--output",
        type=Path,
        default=PROJECT_ROOT / "data" / "08_reporting" / "benchmark_training_input.json",
    )
    args = parser.parse_args()

    bootstrap_project(PROJECT_ROOT)
    with KedroSession.create(project_path=PROJECT_ROOT) as session:
        catalog = session.load_context().catalog
        dataset = catalog.load("instruction_dataset")
        excerpts = catalog.load("excerpts")
        front_end = FrontEnd.from_params(catalog.load("params:features"))
    train = dataset[dataset["split"] == "train"].sample(
        min(args.examples, (dataset["split"] == "train").sum()), random_state=0
    )
    conversations = train[messages_column(ANCHOR_TARGET)].tolist()

    # The cache is built once for every clip these examples use (its cost, reported apart).
    extractor = front_end.extractor()
    started = time.perf_counter()
    records = {}
    for excerpt_id in sorted(set(train["excerpt_id"])):
        audio = excerpts[excerpt_id]()["audio"]
        records[excerpt_id] = log_mel_record(audio, extractor)
    cache_seconds = time.perf_counter() - started
    store = FeatureStore(records)

    texts = conversation_texts(conversations)
    rows = []
    for label, seconds in (("Qwen2-Audio window (30 s)", 30), ("tiny model window (5 s)", 5)):
        processor = tiny_processor(texts, 512, front_end, seconds)
        result = measure(conversations, processor, store, excerpts, args.batch_size)
        rows.append({"window": label, **result})
        print(
            f"{label}: cached {result['cached_examples_per_s']} ex/s, on the fly {result['on_the_fly_examples_per_s']} ex/s (x{result['speedup']})"
        )
    print(
        f"building the cache for {len(records)} excerpts took {cache_seconds:.1f} s (once, shared by every epoch and run)"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "examples": len(conversations),
                "cache_build_s": round(cache_seconds, 1),
                "rows": rows,
            },
            indent=2,
        )
    )
    print("| window | cached (ex/s) | on the fly (ex/s) | speed-up |\n|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['window']} | {row['cached_examples_per_s']} | {row['on_the_fly_examples_per_s']} | x{row['speedup']} |"
        )


if __name__ == "__main__":
    main()
