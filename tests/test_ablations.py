"""The ablations: a no-anchor model that hears the session's level, the text-only floor,
variants that override the dataset's and prompt's settings, and the grid's environment."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.advice_language.wording import (
    conversation,
    example_rng,
    formulation_clips,
    instruction_text,
)
from anchormix_kedro.instruction_data.prompts import PromptSettings, variant_conversations
from anchormix_kedro.model.data import (
    FeatureStore,
    anchor_levelling_db,
    clip_features,
    encode_conversation,
    silenced,
)
from anchormix_kedro.model.front_end import QWEN2_AUDIO_FRONT_END
from anchormix_kedro.model.spec import variant_anchor, variant_spec
from anchormix_kedro.model.training_data import variant_rows
from anchormix_kedro.pipelines.inference.nodes import select_test_examples
from anchormix_kedro.vocabulary import FORMULATIONS, messages_column, system_order

FRAMES, N_FRAMES = 480, 500
MODEL = {"source": "pretrained", "name_or_path": "x", "front_end": {
    **QWEN2_AUDIO_FRONT_END.as_dict(), "anchor_level_db": -15.0}}  # fmt: skip


@pytest.fixture(scope="module")
def store() -> FeatureStore:
    rng = np.random.default_rng(4)
    audio = {
        stem: rng.normal(mean, 0.5, (128, FRAMES + 2)).astype(np.float32)
        for stem, mean in (("drums", -1.5), ("vocals", -2.5), ("bass", -2.0))
    }
    valid = dict.fromkeys(audio, FRAMES)
    return FeatureStore({"a": {"meta": {"valid_frames": valid}, "audio": audio}})


def heard(store, spec, stage_db: float) -> list[np.ndarray]:
    """What a variant hears of example "a" (the vocal 4 dB up) in a session at ``stage_db``."""
    uris = formulation_clips(spec.formulation, "a", "drums", "vocals", 4.0, stage_db)
    gain = anchor_levelling_db(store, uris, N_FRAMES, spec.listening_level)
    return [clip_features(store, uri, N_FRAMES, gain)[0] for uri in uris]


def test_the_no_anchor_variant_hears_the_session_level_and_the_advisor_does_not(store):
    no_anchor = variant_spec(MODEL, {}, {"formulation": "target_only"}, "no_anchor")
    advisor = variant_spec(MODEL, {}, {"formulation": "anchor_target"}, "advisor")
    assert no_anchor.listening_level is None and advisor.listening_level is not None
    # The stand-in for pretraining keeps the base's levelling: every variant shares one base.
    assert no_anchor.anchor_level == advisor.anchor_level
    # As mixed and 12 dB lower: the advisor hears the same clips, the no-anchor model hears
    # its target 12 dB lower (log10 power -1.2, scaled by 1/4 in Whisper's features).
    for mixed, staged in zip(heard(store, advisor, 0.0), heard(store, advisor, -12.0), strict=True):
        np.testing.assert_allclose(staged, mixed, atol=1e-5)
    (mixed,), (staged,) = heard(store, no_anchor, 0.0), heard(store, no_anchor, -12.0)
    assert float((mixed - staged)[:, :FRAMES].mean()) == pytest.approx(0.3, abs=1e-3)


def test_silent_clips_are_not_levelled_and_sound_like_digital_silence(store):
    clips = formulation_clips("anchor_target", "a", "drums", "vocals", 4.0)
    messages = silenced(conversation("sys", clips, "Balance the vocal.", "Fine."))
    uris = [i["audio_url"] for i in messages[1]["content"] if i.get("type") == "audio"]
    assert len(uris) == 2
    level = variant_spec(MODEL, {}, {}, "advisor").listening_level
    assert anchor_levelling_db(store, uris, N_FRAMES, level) == 0.0
    floor = (-10.0 + 4.0) / 4.0  # Whisper's log10 floor, scaled: what zeros become
    for uri in uris:
        features, valid = clip_features(store, uri, N_FRAMES)
        assert valid == FRAMES and np.allclose(features, floor)
    # The words are kept; the original conversation is not changed.
    assert messages[1]["content"][-1]["text"] == "Balance the vocal."
    assert "gain_db=-200" not in json.dumps(conversation("sys", clips, "x", "y"))
    single = silenced(
        conversation("sys", formulation_clips("single_clip", "a", "drums", "vocals"), "q", "a")
    )
    (uri,) = [i["audio_url"] for i in single[1]["content"] if i.get("type") == "audio"]
    assert np.allclose(clip_features(store, uri, N_FRAMES)[0], floor)


class _Processor:
    """Enough of a processor for encode_conversation: a character tokenizer."""

    audio_token = "<|AUDIO|>"

    class tokenizer:  # noqa: N801
        eos_token = "$"

        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [ord(c) for c in text]}

    class feature_extractor:  # noqa: N801
        nb_max_frames = N_FRAMES

    tokenizer = tokenizer()

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        parts = []
        for message in messages:
            content = message["content"]
            if isinstance(content, list):
                content = "".join(
                    self.audio_token if i.get("type") == "audio" else i["text"] for i in content
                )
            parts.append(content)
        return "|".join(parts)


def test_a_silenced_conversation_encodes_the_same_words_over_silent_features(store):
    clips = formulation_clips("anchor_target", "a", "drums", "vocals", 4.0)
    messages = conversation("sys", clips, "Balance the vocal.", "Fine.")
    level = variant_spec(MODEL, {}, {}, "advisor").listening_level
    heard_clips = encode_conversation(messages, _Processor(), store, False, level)
    silent = encode_conversation(silenced(messages), _Processor(), store, False, level)
    assert silent["input_ids"] == heard_clips["input_ids"]
    assert np.allclose(silent["input_features"], (-10.0 + 4.0) / 4.0)
    assert not np.allclose(heard_clips["input_features"], silent["input_features"])


def dataset(anchors=("drums", "vocals"), gains=(-6.0, 0.0, 6.0), songs=("s1", "s2")):
    rows = []
    for song in songs:
        for anchor in anchors:
            for target in ("bass", "vocals"):
                if anchor == target:
                    continue
                for gain in gains:
                    row = {
                        "example_id": f"{song}|{anchor}>{target}|{gain:+.1f}",
                        "excerpt_id": song,
                        "song": song,
                        "split": "test",
                        "genre": "Pop/Rock",
                        "anchor": anchor,
                        "target": target,
                        "anchor_lufs": {"drums": -14.0, "vocals": -18.0}[anchor],
                        "target_lufs": {"bass": -20.0, "vocals": -18.0}[target],
                        "gain_db": gain,
                        "stage_db": 0.0,
                        "label": "balanced" if gain == 0 else ("too_loud" if gain > 0 else "too_soft"),
                    }  # fmt: skip
                    rng = example_rng(13, row["example_id"], "instruction")
                    for formulation in FORMULATIONS:
                        text = instruction_text(formulation, anchor, target, rng, "Pop/Rock")
                        clips = formulation_clips(formulation, song, anchor, target, gain)
                        row[messages_column(formulation)] = json.dumps(
                            conversation("sys", clips, text, "answer")
                        )
                    rows.append(row)
    return pd.DataFrame(rows)


def instructions(conversations: list[str]) -> list[str]:
    return [json.loads(m)[1]["content"][-1]["text"] for m in conversations]


def test_a_variant_is_asked_without_the_genre_with_one_phrasing_or_with_meter_readings():
    rows = dataset(anchors=("drums",))
    column = messages_column("anchor_target")
    as_built = variant_conversations(rows, "anchor_target", PromptSettings())
    assert as_built == rows[column].tolist()
    assert all(t.startswith("The song is Pop/Rock. ") for t in instructions(as_built))

    no_genre = instructions(
        variant_conversations(rows, "anchor_target", PromptSettings(genre=False))
    )
    assert [f"The song is Pop/Rock. {t}" for t in no_genre] == instructions(as_built)

    fixed = instructions(
        variant_conversations(rows, "anchor_target", PromptSettings(instructions="fixed"))
    )
    assert all(t.startswith("The song is Pop/Rock. ") for t in fixed)  # the genre stays
    one_target = rows["target"] == "vocals"
    assert len({t for t, v in zip(fixed, one_target, strict=True) if v}) == 1
    assert len({t for t, v in zip(instructions(as_built), one_target, strict=True) if v}) > 1

    metered = instructions(variant_conversations(rows, "anchor_target", PromptSettings(meter=True)))
    by_id = dict(zip(rows["example_id"], metered, strict=True))
    assert by_id["s1|drums>vocals|+6.0"].endswith(
        "BS.1770 meter: the drums -14.0 LUFS, the vocal -12.0 LUFS."
    )
    # The clips and the answer are kept.
    first = json.loads(variant_conversations(rows, "anchor_target", PromptSettings(meter=True))[0])
    original = json.loads(rows[column].iloc[0])
    assert first[1]["content"][:-1] == original[1]["content"][:-1] and first[2] == original[2]
    target_only = instructions(
        variant_conversations(rows, "target_only", PromptSettings(meter=True))
    )
    assert target_only[0].endswith("BS.1770 meter: the bass -26.0 LUFS.")


def test_the_meter_reads_the_session_as_played_in_each_condition():
    rows = dataset(anchors=("drums",), songs=("s1", "s2"))
    rows.loc[rows["excerpt_id"] == "s2", "anchor_lufs"] = -30.0
    played = rows[rows["example_id"] == "s1|drums>vocals|+6.0"].assign(
        stage_db=-10.0, anchor_excerpt_id="s2"
    )
    levels = {("s1", "drums"): -14.0, ("s2", "drums"): -30.0}
    (text,) = instructions(
        variant_conversations(played, "anchor_target", PromptSettings(meter=True), levels)
    )
    assert text.endswith("BS.1770 meter: the drums -40.0 LUFS, the vocal -22.0 LUFS.")
    with pytest.raises(ValueError, match="no loudness for the drums of excerpt 's2'"):
        variant_conversations(played, "anchor_target", PromptSettings(meter=True), {})


@pytest.mark.parametrize(
    "prompt, message",
    [
        ({"genre": "no"}, "genre must be true, false or null"),
        ({"instructions": "one"}, "instructions 'one' is not one of varied, fixed"),
        ({"meters": True}, r"unknown keys \['meters'\]"),
    ],
)
def test_a_bad_prompt_setting_is_named(prompt, message):
    with pytest.raises(ValueError, match=message):
        variant_spec(MODEL, {}, {"prompt": prompt}, "odd")


def test_a_variant_learns_from_its_own_anchors_examples():
    rows = dataset()
    spec = variant_spec(MODEL, {"anchor": "drums"}, {"anchor": "vocals"}, "anchor_vocals")
    assert spec.anchor == "vocals" and set(variant_rows(rows, spec)["anchor"]) == {"vocals"}
    assert variant_anchor({"anchor": "drums"}, {}) == "drums"
    assert variant_anchor({}, {}) is None
    everything = variant_spec(MODEL, {}, {}, "advisor")
    assert len(variant_rows(rows, everything)) == len(rows)
    bass = variant_spec(MODEL, {}, {"anchor": "bass"}, "anchor_bass")
    with pytest.raises(ValueError, match="add bass to pairs.anchors"):
        variant_rows(rows, bass)
    with pytest.raises(ValueError, match="training.anchor 'kazoo' is not a stem"):
        variant_spec(MODEL, {}, {"anchor": "kazoo"}, "odd")
    with pytest.raises(ValueError, match=r"unknown training settings \['anchors'\]"):
        variant_spec(MODEL, {}, {"anchors": ["bass"]}, "odd")


def test_test_examples_pair_across_anchors_and_one_anchor_samples_as_before():
    rows = dataset(gains=tuple(float(g) for g in range(-12, 13)), songs=("s1", "s2", "s3"))
    chosen = select_test_examples(rows, {"seed": 5, "max_test_examples": 20})
    keys = ["excerpt_id", "target", "gain_db"]
    per_key = chosen.groupby(keys)["anchor"].apply(frozenset)
    # Every drawn (excerpt, target, offset) comes with each anchor that has it.
    expected = rows.groupby(keys)["anchor"].apply(frozenset)
    assert (per_key == expected.loc[per_key.index]).all()
    assert 15 <= len(per_key) <= 25
    one = rows[rows["anchor"] == "drums"]
    share = 20 / len(one)
    before = one.groupby("label", group_keys=False).apply(
        lambda group: group.sample(max(1, round(share * len(group))), random_state=5)
    )
    after = select_test_examples(one, {"seed": 5, "max_test_examples": 20})
    assert sorted(after["example_id"]) == sorted(before["example_id"])


def test_text_only_needs_a_variants_package():
    assert system_order({"variants": {"advisor": {}}, "baselines": ["text_only"]}) == [
        "advisor",
        "text_only",
    ]
    with pytest.raises(ValueError, match="text_only needs at least one variant's package"):
        system_order({"variants": {}, "baselines": ["text_only"]})


def test_every_system_has_its_own_namespace_and_the_grid_its_environment():
    from anchormix_kedro.pipeline_registry import declared_systems
    from anchormix_kedro.pipelines.inference.pipeline import create_pipeline

    variants, baselines = declared_systems()
    assert variants == ["advisor", "no_anchor", "single_clip"]
    assert baselines == ["generic_base", "text_only", "dsp_baseline"]
    inference = create_pipeline(variants=variants, baselines=baselines)
    namespaces = {node.name.split(".")[0] for node in inference.nodes if "." in node.name}
    assert namespaces == {*variants, *baselines}
    text_only = inference.only_nodes_with_namespaces(["text_only"])
    assert "advisor.model_package" in text_only.inputs()
    assert text_only.outputs() == {"text_only_advice"}

    grid, grid_baselines = declared_systems("ablations")
    assert grid[:3] == variants  # the default's variants, then one per factor
    assert {"anchor_vocals", "anchor_bass", "no_genre", "metered_advisor"} <= set(grid)
    assert "generic_base" not in grid_baselines and "text_only" in grid_baselines


def test_kedro_run_with_an_environment_builds_that_environments_systems():
    import click

    from anchormix_kedro.pipeline_registry import declared_systems, run_environment

    assert run_environment() is None
    command = click.Context(click.Command("run"))
    command.params = {"env": "ablations"}
    with command:  # as `kedro run --env=ablations` runs: the registry sees the grid
        assert run_environment() == "ablations"
        assert "metered_advisor" in declared_systems()[0]
    assert "metered_advisor" not in declared_systems()[0]


def test_the_advice_grammar_scores_the_words_that_state_the_direction():
    """Target-only advice states its direction after the amount ("about 4 dB too loud"):
    median decoding must score those words, or both directions weigh the same."""
    from anchormix_kedro.model.verdict_decoding import PackedGrammar, advice_grammar

    for anchor in (None, "drums"):
        grammar = PackedGrammar.build(advice_grammar("bass", anchor, 12), _Processor.tokenizer)
        ids, stems = grammar.token_ids.tolist(), grammar.stem_of_token.tolist()
        branch_of = grammar.sentence_of.tolist()
        scored = {}
        for sentence, (outcome, text) in enumerate(grammar.sentences):
            stem = int(grammar.stem_of_sentence[sentence])
            tokens = [t for t, s in zip(ids, stems, strict=True) if s == stem]
            tokens += [t for t, s in zip(ids, branch_of, strict=True) if s == sentence]
            words = "".join(map(chr, tokens))
            assert text.startswith(words)
            scored.setdefault(words, set()).add(outcome.label)
        # No scored text is shared by two verdicts: each sentence's scored words name its own.
        assert all(len(labels) == 1 for labels in scored.values())
