"""Median decoding: the advice grammar, its exact scoring, and the median of the belief."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor

from anchormix_kedro.advice_language.parsing import parse_advice
from anchormix_kedro.advice_language.wording import audio_uri, conversation
from anchormix_kedro.model.data import AudioChatCollator, FeatureStore, encode_conversation
from anchormix_kedro.model.factory import ModelSettings, build_tiny_base
from anchormix_kedro.model.features import log_mel_record
from anchormix_kedro.model.front_end import QWEN2_AUDIO_FRONT_END
from anchormix_kedro.model.generation import decode_advice, generate
from anchormix_kedro.model.verdict_decoding import (
    Belief,
    DecodingSettings,
    MedianDecoder,
    Outcome,
    PackedGrammar,
    advice_grammar,
    belief_from_scores,
    grammar_log_probs,
)
from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT
from conftest import TINY_ARCHITECTURE

RATE = 16000
SYSTEM = "You are a mixing engineer."


def test_every_sentence_of_the_grammar_parses_back_to_its_outcome():
    for anchor in ("drums", None):
        groups = advice_grammar("vocals", anchor, 12)
        sentences = [sentence for group in groups for sentence in group]
        assert len(groups) == (4 if anchor else 2) + 2 * (5 if anchor else 2)
        assert len(sentences) == len({text for _, text in sentences})
        for outcome, text in sentences:
            parsed = parse_advice(text)
            assert parsed.direction == outcome.label, text
            if outcome.label == BALANCED:
                assert parsed.amount_db is None and not parsed.fader_move_db
            else:
                assert abs(parsed.fader_move_db) == outcome.amount_db, text


def belief(probabilities: dict[int, float]) -> Belief:
    """A belief over signed dB (0: balanced), every outcome phrased by its own number."""
    outcomes = tuple(
        Outcome(BALANCED, None)
        if signed == 0
        else Outcome(TOO_LOUD if signed > 0 else TOO_SOFT, abs(signed))
        for signed in sorted(probabilities)
    )
    values = np.array([probabilities[k] for k in sorted(probabilities)])
    return Belief(outcomes, values / values.sum(), {o: str(o.signed_db) for o in outcomes})


def test_the_median_is_balanced_when_neither_direction_holds_half():
    assert belief({-6: 0.45, 0: 0.1, 6: 0.45}).median() == Outcome(BALANCED, None)
    assert belief({-6: 0.3, 0: 0.4, 3: 0.3}).median() == Outcome(BALANCED, None)


def test_the_median_states_the_middle_amount_of_the_winning_direction():
    # Too loud holds 0.7; of it 0.2 at 3 dB, 0.2 at 5 dB, 0.3 at 9 dB: the median is 5 dB,
    # where the mode (9 dB) and the signed median (5 dB too) would part in other cases.
    chosen = belief({-4: 0.2, 0: 0.1, 3: 0.2, 5: 0.2, 9: 0.3}).median()
    assert chosen == Outcome(TOO_LOUD, 5)
    # Most of the direction at small amounts: a small amount, not the single likeliest 12.
    assert belief({-12: 0.3, -3: 0.26, -2: 0.26, 0: 0.18}).median() == Outcome(TOO_SOFT, 3)


def test_phrasings_of_one_outcome_add_up_in_probability():
    loud, soft = Outcome(TOO_LOUD, 4), Outcome(TOO_SOFT, 4)
    grammar = [(loud, "a"), (loud, "b"), (soft, "c")]
    # Each sentence is equally likely: too loud, said two ways, holds two thirds.
    result = belief_from_scores(grammar, np.log([0.2, 0.2, 0.2]))
    assert result.direction_probability(TOO_LOUD) == pytest.approx(2 / 3)
    assert result.median() == loud
    # Its phrasing is the likelier of the two.
    assert belief_from_scores(grammar, np.log([0.1, 0.3, 0.2])).best_phrasing[loud] == "b"


def test_bad_decoding_settings_are_named():
    with pytest.raises(ValueError, match="unknown decoding method 'beam'"):
        DecodingSettings(method="beam")
    with pytest.raises(ValueError, match="max_amount_db must be at least 1"):
        DecodingSettings(max_amount_db=0)
    with pytest.raises(ValueError, match="unknown decoding setting.*temperature"):
        DecodingSettings.from_params({"method": "median", "temperature": 0.7})
    assert DecodingSettings.from_params(None) == DecodingSettings()


@pytest.fixture(scope="module")
def tiny():
    """A tiny Qwen2-Audio whose tokenizer learned the grammar's own words (so amounts may be
    single tokens like " 12" or share a first token with another amount)."""
    texts = [SYSTEM, "Balance the vocal against the drums."] + [
        text
        for anchor in ("drums", None)
        for group in advice_grammar("vocals", anchor, 12)
        for _, text in group
    ]
    settings = ModelSettings.from_params(
        {
            "source": "tiny",
            "front_end": QWEN2_AUDIO_FRONT_END.as_dict(),
            "tiny": {"seed": 0, **TINY_ARCHITECTURE},
        }
    )
    model, processor = build_tiny_base(settings, texts)
    model.eval()
    extractor = WhisperFeatureExtractor(feature_size=128, sampling_rate=RATE, chunk_length=30)
    t = np.arange(int(1.5 * RATE)) / RATE
    audio = {
        "drums": (0.2 * np.sin(2 * np.pi * 110 * t)).astype(np.float32),
        "vocals": (0.05 * np.sin(2 * np.pi * 330 * t)).astype(np.float32),
    }
    store = FeatureStore({"song": log_mel_record(audio, extractor)})
    uris = [audio_uri("song", "drums"), audio_uri("song", "vocals")]
    messages = conversation(SYSTEM, uris, "Balance the vocal against the drums.", "")
    return model, processor, store, messages


def prompt_of(processor, store, messages) -> dict:
    item = encode_conversation(messages, processor, store, False)
    item.pop("labels")
    return AudioChatCollator(processor.tokenizer.pad_token_id, padding_side="left")([item])


def test_each_sentence_is_scored_by_its_stem_and_the_tokens_that_name_its_amount(tiny):
    _, processor, _, _ = tiny
    groups = advice_grammar("vocals", "drums", 12)
    packed = PackedGrammar.build(groups, processor.tokenizer)
    tokenizer = processor.tokenizer
    scored = scored_sequences(packed)
    for (outcome, text), ids in zip(packed.sentences, scored, strict=True):
        full = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert full[: len(ids)] == ids, text
        if outcome.label == BALANCED:
            assert ids == full
    # Within a phrasing, every amount is scored by a different token sequence: the
    # branch runs past the number, so "1" is never taken for the start of "10".
    by_phrasing: dict[int, set[tuple[int, ...]]] = {}
    for ids, stem in zip(scored, packed.stem_of_sentence.tolist(), strict=True):
        by_phrasing.setdefault(stem, set()).add(tuple(ids))
    assert [len(found) for found in by_phrasing.values()] == [len(group) for group in groups]


def scored_sequences(packed: PackedGrammar) -> list[list[int]]:
    """The tokens each sentence's score covers: its stem, then its branch."""
    ids = packed.token_ids.tolist()
    stems: dict[int, list[int]] = {}
    for token, stem in zip(ids, packed.stem_of_token.tolist(), strict=True):
        if stem >= 0:
            stems.setdefault(stem, []).append(token)
    branches: dict[int, list[int]] = {}
    for token, sentence in zip(ids, packed.sentence_of.tolist(), strict=True):
        if sentence >= 0:
            branches.setdefault(sentence, []).append(token)
    return [
        stems[stem] + branches.get(sentence, [])
        for sentence, stem in enumerate(packed.stem_of_sentence.tolist())
    ]


def test_packed_scores_equal_scoring_each_sentence_on_its_own(tiny):
    model, processor, store, messages = tiny
    inputs = prompt_of(processor, store, messages)
    for anchor in ("drums", None):
        packed = PackedGrammar.build(advice_grammar("vocals", anchor, 12), processor.tokenizer)
        scores = grammar_log_probs(model, inputs, packed)
        prompt_length = inputs["input_ids"].shape[1]
        sequences = scored_sequences(packed)
        for index in range(0, len(sequences), 7):  # a spread of phrasings and amounts
            ids = torch.tensor([sequences[index]])
            full = dict(inputs)
            full["input_ids"] = torch.cat([inputs["input_ids"], ids], dim=1)
            full["attention_mask"] = torch.ones_like(full["input_ids"])
            with torch.no_grad():
                logits = model(**full).logits[0, prompt_length - 1 : -1]
            expected = torch.log_softmax(logits.float(), -1).gather(-1, ids[0, :, None]).sum()
            assert scores[index] == pytest.approx(expected.item(), abs=1e-4)


def test_median_advice_is_a_sentence_of_the_grammar_stating_the_median(tiny):
    model, processor, store, messages = tiny
    decoder = MedianDecoder(model, processor, DecodingSettings())
    inputs = prompt_of(processor, store, messages)
    result = decoder.belief(inputs, "vocals", "drums")
    assert result.probabilities.sum() == pytest.approx(1.0)
    ((text, seconds),) = decode_advice(
        model, processor, [messages], [("drums", "vocals")], store, DecodingSettings()
    )
    median = result.median()
    assert text == result.best_phrasing[median] and seconds > 0
    parsed = parse_advice(text)
    assert parsed.direction == median.label
    assert parsed.amount_db == median.amount_db
    # The target-only grammar names no anchor.
    ((alone, _),) = decode_advice(
        model, processor, [messages], [(None, "vocals")], store, DecodingSettings()
    )
    assert "drums" not in alone


def test_decode_advice_names_a_count_mismatch(tiny):
    model, processor, store, messages = tiny
    with pytest.raises(ValueError, match="2 conversations but 1 stem pairs"):
        decode_advice(
            model, processor, [messages, messages], [("drums", "vocals")], store, DecodingSettings()
        )


def test_greedy_decoding_is_generate(tiny):
    model, processor, store, messages = tiny
    ((text, _),) = decode_advice(
        model,
        processor,
        [messages],
        [("drums", "vocals")],
        store,
        DecodingSettings(method="greedy"),
        max_new_tokens=4,
    )
    assert text == generate(model, processor, [messages], store, 1, 4)[0][0]


def test_a_half_precision_model_scores_the_grammar_as_the_full_one(tiny):
    """The tree mask takes the model's own dtype (bfloat16 on GPUs, as the 7B model runs)."""
    import copy

    model, processor, store, messages = tiny
    half = copy.deepcopy(model).to(torch.bfloat16)
    inputs = prompt_of(processor, store, messages)
    packed = PackedGrammar.build(advice_grammar("vocals", "drums", 12), processor.tokenizer)
    full_scores = grammar_log_probs(model, inputs, packed)
    half_scores = grammar_log_probs(
        half, inputs | {"input_features": inputs["input_features"].to(torch.bfloat16)}, packed
    )
    assert np.corrcoef(full_scores, half_scores)[0, 1] > 0.99
    assert np.max(np.abs(full_scores - half_scores)) < 0.5
