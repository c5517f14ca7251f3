"""The model library on a tiny Qwen2-Audio: features, encoding, LoRA, QLoRA, saving, resuming."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import TrainerCallback, WhisperFeatureExtractor

from anchormix_kedro.advice_language.wording import audio_uri, conversation
from anchormix_kedro.model.adapter import lora_model
from anchormix_kedro.model.data import (
    GAP_FRAMES,
    IGNORE_INDEX,
    AudioChatCollator,
    ConversationDataset,
    FeatureStore,
    encode_conversation,
)
from anchormix_kedro.model.factory import ModelSettings, build_tiny_base, load_base
from anchormix_kedro.model.features import (
    audio_token_count,
    features_for_clip,
    log_mel_record,
    raw_log_mel,
    valid_frames,
)
from anchormix_kedro.model.front_end import QWEN2_AUDIO_FRONT_END
from anchormix_kedro.model.generation import generate, load_package
from anchormix_kedro.model.package import member_adapters, read_manifest
from anchormix_kedro.model.spec import TrainingSettings
from anchormix_kedro.model.stages import run_stage
from anchormix_kedro.model.training_data import FineTuneData
from anchormix_kedro.model.verdict_decoding import (
    DecodingSettings,
    MedianDecoder,
    adapter_names,
    advice_grammar,
)
from anchormix_kedro.model.workflow import fine_tune
from conftest import TINY_ARCHITECTURE

RATE = 16000
TINY = {
    "source": "tiny",
    "front_end": QWEN2_AUDIO_FRONT_END.as_dict(),
    "tiny": {"seed": 0, **TINY_ARCHITECTURE},
}
SYSTEM = "You are a mixing engineer."


def clip(freq: float, seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def store() -> FeatureStore:
    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=RATE, chunk_length=30)
    records = {}
    for song, level in (("song_a", 0.3), ("song_b", 0.05)):
        audio = {"drums": clip(110, 1.5, 0.2), "vocals": clip(330, 1.5, level)}
        records[song] = log_mel_record(audio, extractor)
    return FeatureStore(records)


def conversations() -> list[str]:
    items = []
    for song, answer in (
        ("song_a", "The vocal is too loud: pull it down 6 dB."),
        ("song_b", "The vocal is too soft: push it up 6 dB."),
    ):
        uris = [audio_uri(song, "drums"), audio_uri(song, "vocals")]
        items.append(
            json.dumps(conversation(SYSTEM, uris, "Balance the vocal against the drums.", answer))
        )
    return items


def texts() -> list[str]:
    return [
        SYSTEM,
        "Balance the vocal against the drums.",
        "The vocal is too loud: pull it down 6 dB.",
        "The vocal is too soft: push it up 6 dB.",
    ]


def tiny_data(
    store: FeatureStore, valid: list[str] | None = None, data_id: str = "d1"
) -> FineTuneData:
    """Two conversations to fine-tune on, pre-trained on themselves."""
    return FineTuneData(
        conversations(),
        valid or [],
        store,
        data_id,
        SYSTEM,
        tokenizer_texts=texts(),
        pretrain=conversations(),
        pretrain_valid=[],
    )


@pytest.fixture(scope="module")
def tiny():
    settings = ModelSettings.from_params(TINY)
    model, processor = build_tiny_base(settings, texts())
    return settings, model, processor


@pytest.mark.parametrize("gain_db", [0.0, 6.0, -9.5])
def test_cached_features_equal_the_extractor_on_the_scaled_clip(gain_db):
    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=RATE, chunk_length=30)
    audio = clip(220, 2.3, 0.1) * np.linspace(0.2, 1.0, int(2.3 * RATE), dtype=np.float32)
    expected = extractor(
        audio * np.float32(10 ** (gain_db / 20)),
        sampling_rate=RATE,
        return_tensors="np",
        return_attention_mask=True,
    )
    cached = features_for_clip(raw_log_mel(audio, extractor), gain_db, extractor.nb_max_frames)
    assert cached.shape == expected["input_features"][0].shape
    assert np.max(np.abs(cached - expected["input_features"][0])) < 1e-4
    assert valid_frames(len(audio), extractor.hop_length) == int(
        expected["attention_mask"][0].sum()
    )


def test_encoding_expands_audio_tokens_and_masks_the_prompt(tiny, store):
    _, _, processor = tiny
    messages = json.loads(conversations()[0])
    encoded = encode_conversation(messages, processor, store)
    audio_id = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    frames = valid_frames(int(1.5 * RATE), 160)
    assert encoded["input_ids"].count(audio_id) == 2 * audio_token_count(frames)
    answer = processor.tokenizer(messages[-1]["content"] + "<|im_end|>", add_special_tokens=False)[
        "input_ids"
    ]
    labelled = [label for label in encoded["labels"] if label != IGNORE_INDEX]
    assert labelled == answer and encoded["input_ids"][-len(answer) :] == answer
    assert all(label == IGNORE_INDEX for label in encoded["labels"][: -len(answer)])
    assert encoded["input_features"].shape == (2, 128, processor.feature_extractor.nb_max_frames)
    assert encoded["feature_attention_mask"].sum(axis=1).tolist() == [min(frames, 200)] * 2


def test_two_clip_forward_and_generation(tiny, store):
    _, model, processor = tiny
    batch = AudioChatCollator(processor.tokenizer.pad_token_id)(
        [encode_conversation(json.loads(c), processor, store) for c in conversations()]
    )
    assert batch["input_features"].shape[0] == 4  # two clips per conversation
    loss = model(**batch).loss
    assert torch.isfinite(loss) and loss.item() > 0
    outputs = generate(
        model,
        processor,
        [json.loads(c) for c in conversations()],
        store,
        batch_size=2,
        max_new_tokens=5,
    )
    assert len(outputs) == 2 and all(
        isinstance(text, str) and seconds > 0 for text, seconds in outputs
    )


def test_lora_regex_leaves_the_audio_tower_untouched(tiny):
    settings, model, _ = tiny
    wrapped = lora_model(model, settings, {"r": 4, "lora_alpha": 8}, gradient_checkpointing=False)
    lora_names = [n for n, _ in wrapped.named_parameters() if "lora_" in n]
    assert lora_names and all("language_model" in n for n in lora_names)
    assert not any(p.requires_grad for n, p in wrapped.named_parameters() if "audio_tower" in n)
    wrapped.unload()  # leave the shared fixture as it was


def training_settings(tmp_path: Path, **finetune_args) -> TrainingSettings:
    args = {
        "max_steps": 4,
        "per_device_train_batch_size": 2,
        "learning_rate": 0.01,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": 2,
        "eval_strategy": "no",
        **finetune_args,
    }
    return TrainingSettings.from_params(
        {
            "seed": 1,
            "work_root": str(tmp_path / "work"),
            "lora": {"r": 4, "lora_alpha": 8, "modules_to_save": ["lm_head"]},
            "pretrain": {
                "enabled": True,
                "stage": {
                    "args": {
                        "max_steps": 2,
                        "per_device_train_batch_size": 2,
                        "eval_strategy": "no",
                        "save_strategy": "no",
                    }
                },
            },
            "finetune": {"args": args},
        }
    )


def test_training_saves_a_package_that_reloads_to_the_same_outputs(tmp_path, store):
    settings = ModelSettings.from_params(TINY)
    training = training_settings(tmp_path)
    report = fine_tune(
        settings,
        training,
        tiny_data(store, valid=conversations()),
        tmp_path / "pkg",
    )
    package = Path(report["package"])
    assert (package / "adapter" / "adapter_config.json").is_file() and (
        package / "base" / "config.json"
    ).is_file()
    assert json.loads((package / "anchormix.json").read_text())["formulation"] == "anchor_target"
    first, processor, _ = load_package(package)
    second, _, _ = load_package(package)
    batch = AudioChatCollator(processor.tokenizer.pad_token_id)(
        [encode_conversation(json.loads(c), processor, store) for c in conversations()]
    )
    batch.pop("labels")
    with torch.no_grad():
        assert torch.allclose(first(**batch).logits, second(**batch).logits, atol=1e-5)
        base, _, _ = load_package(package, with_adapter=False)
        assert not torch.allclose(first(**batch).logits, base(**batch).logits, atol=1e-3)


class StopAfter(TrainerCallback):
    """Simulates a run killed after ``step`` steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise KeyboardInterrupt("killed")


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, store, monkeypatch):
    settings = ModelSettings.from_params(TINY)
    training = training_settings(tmp_path)
    import anchormix_kedro.model.stages as training_module

    original = training_module.ResumingTrainer

    class KilledTrainer(original):
        def __init__(self, *args, **kwargs):
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), StopAfter(3)]
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(training_module, "ResumingTrainer", KilledTrainer)
    data = tiny_data(store, data_id="d2")
    with pytest.raises(KeyboardInterrupt):
        fine_tune(settings, training, data, tmp_path / "pkg")
    checkpoints = list((tmp_path / "work").glob("finetune-*/checkpoints/checkpoint-2"))
    assert len(checkpoints) == 1
    monkeypatch.setattr(training_module, "ResumingTrainer", original)
    steps_run = []

    class Recorder(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            steps_run.append(state.global_step)

    monkeypatch.setattr(training_module, "MlflowStepLogger", lambda *a, **k: Recorder())
    report = fine_tune(settings, training, data, tmp_path / "pkg")
    assert steps_run == [3, 4]  # continued after checkpoint 2, did not start over
    assert report["metrics"]["epoch"] > 0


def test_qlora_trains_and_generates_on_cpu(tmp_path, tiny, store):
    pytest.importorskip("bitsandbytes")
    settings, model, processor = tiny
    model.save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    quantised = ModelSettings.from_params(
        {**TINY, "load_in_4bit": True, "quantization": {"bnb_4bit_compute_dtype": "float32"}}
    )
    base, processor = load_base(quantised, tmp_path / "base")
    assert any(type(m).__name__ == "Linear4bit" for m in base.modules())
    wrapped = lora_model(base, quantised, {"r": 4, "lora_alpha": 8}, gradient_checkpointing=False)
    dataset = ConversationDataset(conversations(), processor, store)
    stage = training_settings(tmp_path, max_steps=2, save_strategy="no").finetune_stage
    result = run_stage(
        wrapped, processor, stage, dataset, None, tmp_path / "qlora", 1, None, "qlora/"
    )
    assert np.isfinite(result["metrics"]["train_loss"])
    outputs = generate(
        wrapped, processor, [json.loads(conversations()[0])], store, max_new_tokens=3
    )
    assert len(outputs) == 1


def test_single_clip_formulation_joins_anchor_gap_and_target(tiny, store):
    _, _, processor = tiny
    uri = audio_uri("song_a", ["drums", "vocals"], 3.0)
    messages = conversation(SYSTEM, [uri], "Balance the vocal.", "Fine.")
    encoded = encode_conversation(messages, processor, store)
    frames = valid_frames(int(1.5 * RATE), 160)
    assert encoded["input_features"].shape[0] == 1
    share = (processor.feature_extractor.nb_max_frames - GAP_FRAMES) // 2
    # Each stem gets half of the window (around the gap), so both are heard.
    assert int(encoded["feature_attention_mask"].sum()) == 2 * min(frames, share) + GAP_FRAMES


def test_the_advise_command_uses_a_trained_package(tmp_path, store, capsys):
    import soundfile

    from anchormix_kedro import commands as command_line

    settings = ModelSettings.from_params(TINY)
    report = fine_tune(
        settings,
        training_settings(tmp_path),
        tiny_data(store, data_id="d3"),
        tmp_path / "pkg",
    )
    song = tmp_path / "song"
    song.mkdir()
    for stem, (freq, amplitude) in {"drums": (110, 0.2), "vocals": (330, 0.1)}.items():
        soundfile.write(str(song / f"{stem}.wav"), clip(freq, 3.0, amplitude), RATE)

    def vocals_advice(*options: str) -> tuple[dict, str]:
        args = ["advise", str(song), "--model", report["package"], "--json", *options]
        assert command_line.main(args) == 0
        # Logging handlers an earlier Kedro session installed may also write to stdout.
        printed = capsys.readouterr().out
        start = re.search(r'^\{\s*"', printed, re.MULTILINE).start()  # the JSON, not a log
        output, _ = json.JSONDecoder().raw_decode(printed[start:])
        (vocals,) = [t for t in output["targets"] if t["stem"] == "vocals"]
        return output, vocals["model"]["advice"]

    output, advice = vocals_advice()
    assert output["model"] == report["package"]
    # Median decoding (the default) states one sentence of the grammar the model was taught.
    grammar = {text for group in advice_grammar("vocals", "drums", 12) for _, text in group}
    assert advice in grammar
    assert isinstance(vocals_advice("--decoding", "greedy")[1], str)
    # The levels are measured on the windows the model hears (the tiny test model: 2 s).
    assert output["window_seconds"] == TINY["tiny"]["audio_seconds"] == 2


def test_a_fully_trained_stage_resumes_with_its_checkpoint_weights(tmp_path, store):
    """The tiny base's pre-training trains every weight: a resumed run must continue from
    the checkpoint's weights, not from the freshly built (random) ones."""
    settings = ModelSettings.from_params(TINY)
    stage = training_settings(tmp_path, max_steps=2, save_steps=2).finetune_stage
    output = tmp_path / "pretrain.checkpoints"

    def train(model, processor, steps: int) -> dict:
        stage_now = type(stage)(**{**stage.__dict__, "args": {**stage.args, "max_steps": steps}})
        dataset = ConversationDataset(conversations(), processor, store)
        return run_stage(model, processor, stage_now, dataset, None, output, 1, None, "pretrain/")

    first, processor = build_tiny_base(settings, texts())
    train(first, processor, 2)
    trained = {k: v.detach().clone() for k, v in first.state_dict().items()}
    # A new process: the base is built again from its seed, then the run resumes.
    again, processor = build_tiny_base(settings, texts())
    fresh = {k: v.detach().clone() for k, v in again.state_dict().items()}
    changed = [k for k in trained if not torch.equal(trained[k], fresh[k])]
    assert changed  # training moved the weights away from the built ones
    result = train(again, processor, 2)  # already at its last step: only the restore happens
    assert result["trainer"].state.global_step == 2
    for key in changed:
        assert torch.equal(again.state_dict()[key], trained[key]), key


def test_a_lora_stage_resumes_with_its_checkpoint_adapter(tmp_path, store):
    settings = ModelSettings.from_params(TINY)
    stage = training_settings(tmp_path, max_steps=2, save_steps=2).finetune_stage
    output = tmp_path / "lora.checkpoints"

    def wrapped():
        base, processor = build_tiny_base(settings, texts())
        return lora_model(base, settings, {"r": 4, "lora_alpha": 8}, False), processor

    def trainable(model) -> dict:
        return {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}

    first, processor = wrapped()
    dataset = ConversationDataset(conversations(), processor, store)
    run_stage(first, processor, stage, dataset, None, output, 1, None, "train/")
    trained = trainable(first)
    again, processor = wrapped()
    assert any(not torch.equal(v, trained[k]) for k, v in trainable(again).items())
    run_stage(again, processor, stage, dataset, None, output, 1, None, "train/")
    assert all(torch.equal(v, trained[k]) for k, v in trainable(again).items())


def test_fine_tunings_with_other_seeds_share_a_base_with_its_own_seed(tmp_path, store):
    """``training.pretrain.seed`` keeps the stand-in fixed while the fine-tuning seed moves
    (the spread between runs, docs/recipes.md); unset, each seed pre-trains its own."""
    settings = ModelSettings.from_params(TINY)
    data = tiny_data(store)

    def trained(seed: int, pretrain_seed: int | None, name: str):
        base = training_settings(tmp_path)
        pretrain = {**base.pretrain, **({} if pretrain_seed is None else {"seed": pretrain_seed})}
        training = replace(base, seed=seed, pretrain=pretrain)
        package, _, _ = load_package(
            fine_tune(settings, training, data, tmp_path / name)["package"]
        )
        return package

    def bases() -> set[str]:
        return {p.name for p in (tmp_path / "work").glob("tiny-base-*") if p.suffix == ""}

    first, second = trained(1, 7, "a"), trained(2, 7, "b")
    assert len(bases()) == 1
    pairs = list(zip(first.named_parameters(), second.named_parameters(), strict=True))
    learned = [
        (a, b) for (name, a), (_, b) in pairs if "lora_" in name or "modules_to_save" in name
    ]
    frozen = [
        (a, b)
        for (name, a), (_, b) in pairs
        if "lora_" not in name and "modules_to_save" not in name
    ]
    assert frozen and all(torch.equal(a, b) for a, b in frozen)  # one base
    assert learned and not all(torch.equal(a, b) for a, b in learned)  # two fine-tunings
    trained(2, None, "c")
    assert len(bases()) == 2  # unset: the stand-in follows training.seed (2), a new base
    trained(1, None, "d")
    assert len(bases()) == 3  # seed 1's own base is not seed 7's
    with pytest.raises(ValueError, match=r"training.pretrain.seed must be a whole number"):
        _ = replace(training_settings(tmp_path), pretrain={"seed": "7"}).pretrain_seed


def test_an_ensemble_decodes_the_average_of_its_members_beliefs(tmp_path, store, monkeypatch):
    settings = ModelSettings.from_params(TINY)
    training = replace(training_settings(tmp_path), members=2)
    data = tiny_data(store)
    package = Path(fine_tune(settings, training, data, tmp_path / "pkg")["package"])
    assert [p.name for p in member_adapters(package)] == ["member-2"]
    recorded = read_manifest(package)
    assert recorded["members"] == 2 and recorded["member_seeds"] == [1, 2]
    assert len(recorded["member_metrics"]) == 2

    ensemble, processor, _ = load_package(package)
    assert adapter_names(ensemble) == ["default", "member-2"]
    conversation, pair = [json.loads(conversations()[0])], [("drums", "vocals")]
    decoding = DecodingSettings(max_amount_db=6)
    ((mixture, _),) = MedianDecoder(ensemble, processor, decoding).beliefs(
        conversation, pair, store
    )
    alone = []
    for adapter in (package / "adapter", package / "adapter" / "member-2"):
        base, _, _ = load_package(package, with_adapter=False)
        member = PeftModel.from_pretrained(base, adapter).eval()
        ((belief, _),) = MedianDecoder(member, processor, decoding).beliefs(
            conversation, pair, store
        )
        alone.append(belief.probabilities)
    assert not np.allclose(alone[0], alone[1], atol=1e-4)  # two fine-tunings, two beliefs
    np.testing.assert_allclose(mixture.probabilities, np.mean(alone, axis=0), atol=1e-5)
    assert adapter_names(ensemble)[0] == ensemble.active_adapter == "default"

    # Started again, the run reuses both members' adapters instead of training them again.
    def no_training(*args, **kwargs):
        raise AssertionError("a member was trained again")

    monkeypatch.setattr("anchormix_kedro.model.workflow.run_stage", no_training)
    fine_tune(settings, training, data, tmp_path / "again")
    assert [p.name for p in member_adapters(tmp_path / "again")] == ["member-2"]
    with pytest.raises(ValueError, match="training.members must be at least 1"):
        TrainingSettings.from_params({"members": 0})
