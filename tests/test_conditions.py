"""Evaluation conditions: clips of another level or another song's anchor, played the same
way to every system, and the DSP baseline measuring what the models hear."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.advice_language.wording import (
    ClipPart,
    audio_uri,
    clip_parts,
    conversation,
    formulation_clips,
)
from anchormix_kedro.evaluation.conditions import (
    ConditionSettings,
    as_mixed_rows,
    condition_examples,
)
from anchormix_kedro.instruction_data.audio import integrated_loudness
from anchormix_kedro.model.data import GAP_FRAMES, FeatureStore, clip_features
from anchormix_kedro.pipelines.inference.nodes import dsp_baseline_advice
from anchormix_kedro.vocabulary import FORMULATIONS, messages_column

RATE = 16000
SYSTEM = "You are a mixing engineer."


def test_clip_uris_carry_gains_and_another_songs_anchor():
    uri = audio_uri("song_a", ["drums", "vocals"], 3.0, -6.0, "song_b")
    assert clip_parts(uri) == [ClipPart("song_b", "drums", -6.0), ClipPart("song_a", "vocals", 3.0)]
    assert clip_parts(audio_uri("song_a", "bass", -2.5)) == [ClipPart("song_a", "bass", -2.5)]
    with pytest.raises(ValueError, match="not an excerpt audio URI"):
        clip_parts("file:///tmp/x.wav")
    with pytest.raises(ValueError, match="several stems"):
        audio_uri("song_a", "bass", lead_gain_db=2.0)


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_formulation_clips_in_a_condition(formulation):
    parts = [
        part
        for uri in formulation_clips(formulation, "a", "drums", "vocals", 4.0, -6.0, "b")
        for part in clip_parts(uri)
    ]
    target = parts[-1]
    assert target == ClipPart("a", "vocals", -2.0)  # perturbation plus the common gain
    anchors = [p for p in parts if p.stem == "drums"]
    assert anchors == ([] if formulation == "target_only" else [ClipPart("b", "drums", -6.0)])


def examples_frame(songs=("s1", "s2", "s3"), gains=(-6.0, 0.0, 6.0)) -> pd.DataFrame:
    rows = []
    for song in songs:
        for gain in gains:
            example_id = f"{song}|drums>vocals|{gain:+.1f}"
            row = {
                "example_id": example_id,
                "excerpt_id": song,
                "song": song,
                "genre": "Pop",
                "anchor": "drums",
                "target": "vocals",
                "gain_db": gain,
                "label": "balanced" if gain == 0 else ("too_loud" if gain > 0 else "too_soft"),
            }
            for formulation in FORMULATIONS:
                clips = formulation_clips(formulation, song, "drums", "vocals", gain)
                row[messages_column(formulation)] = json.dumps(
                    conversation(SYSTEM, clips, "Balance the vocal.", "Fine.")
                )
            rows.append(row)
    return pd.DataFrame(rows)


def settings(**conditions) -> ConditionSettings:
    return ConditionSettings.from_params(
        conditions or {"as_mixed": {}, "gain_staged": {}, "anchor_swapped": {}}, seed=3
    )


def clip_uris(messages_json: str) -> list[str]:
    return [
        item["audio_url"]
        for message in json.loads(messages_json)
        if isinstance(message["content"], list)
        for item in message["content"]
        if item["type"] == "audio"
    ]


def test_conditions_replay_the_same_examples_with_other_clips_and_the_same_truth():
    examples = examples_frame()
    played = condition_examples(examples, settings())
    assert list(dict.fromkeys(played["condition"])) == ["as_mixed", "gain_staged", "anchor_swapped"]
    by_condition = {c: rows.set_index("example_id") for c, rows in played.groupby("condition")}
    for rows in by_condition.values():  # the same examples and labels in every condition
        assert sorted(rows.index) == sorted(examples["example_id"])
        assert rows.loc[examples["example_id"], "label"].tolist() == examples["label"].tolist()
    as_mixed = by_condition["as_mixed"]
    assert (as_mixed["stage_db"] == 0).all()
    assert (as_mixed["messages_anchor_target"].to_numpy() == examples.set_index("example_id").loc[
        as_mixed.index, "messages_anchor_target"].to_numpy()).all()  # fmt: skip

    staged = by_condition["gain_staged"]
    assert staged["stage_db"].between(-12.0, 6.0).all() and staged["stage_db"].nunique() > 3
    for _, row in staged.iterrows():
        anchor, target = (clip_parts(u)[0] for u in clip_uris(row["messages_anchor_target"]))
        assert anchor == ClipPart(row["excerpt_id"], "drums", row["stage_db"])
        assert target.gain_db == pytest.approx(row["gain_db"] + row["stage_db"])
        single = clip_parts(clip_uris(row["messages_single_clip"])[0])
        assert [p.gain_db for p in single] == pytest.approx([row["stage_db"], target.gain_db])

    swapped = by_condition["anchor_swapped"]
    assert (swapped["anchor_excerpt_id"] != swapped["excerpt_id"]).all()
    for _, row in swapped.iterrows():
        anchor, target = (clip_parts(u)[0] for u in clip_uris(row["messages_anchor_target"]))
        assert anchor == ClipPart(row["anchor_excerpt_id"], "drums", 0.0)
        assert target == ClipPart(row["excerpt_id"], "vocals", row["gain_db"])
        assert clip_uris(row["messages_target_only"]) == clip_uris(
            examples.set_index("example_id").loc[row.name, "messages_target_only"]
        )  # the target alone is unchanged
    # Seeded: the same draw every time, for every system.
    pd.testing.assert_frame_equal(played, condition_examples(examples, settings()))
    assert as_mixed_rows(played)["condition"].eq("as_mixed").all()


def test_condition_subsets_are_seeded_and_nested():
    examples = examples_frame(songs=[f"s{i}" for i in range(6)])
    small = condition_examples(examples, settings(as_mixed={}, gain_staged={"max_examples": 4}))
    large = condition_examples(examples, settings(as_mixed={}, gain_staged={"max_examples": 10}))
    small_ids = set(small.loc[small["condition"] == "gain_staged", "example_id"])
    large_ids = set(large.loc[large["condition"] == "gain_staged", "example_id"])
    assert len(small_ids) == 4 and len(large_ids) == 10 and small_ids < large_ids
    assert (small["condition"] == "as_mixed").sum() == len(examples)


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        ({"gain_staged": {}}, "must include as_mixed"),
        ({"as_mixed": {}, "louder": {}}, r"unknown conditions \['louder'\]"),
        ({"as_mixed": {}, "gain_staged": {"min_db": 6, "max_db": -6}}, "min_db .* above max_db"),
        ({"as_mixed": {"max_examples": 0}}, "as_mixed.max_examples must be at least 1"),
        ({"as_mixed": {"examples": 3}}, r"unknown keys \['examples'\]"),
    ],
)
def test_condition_settings_name_what_is_wrong(conditions, message):
    with pytest.raises(ValueError, match=message):
        ConditionSettings.from_params(conditions)


def test_anchor_swap_needs_another_song():
    with pytest.raises(ValueError, match="anchor_swapped needs test songs other than 's1'"):
        condition_examples(examples_frame(songs=("s1",)), settings())


def test_a_single_clip_gives_each_stem_half_the_window():
    n_frames, frames = 500, 500  # 5 s excerpts in a 5 s window
    store = FeatureStore(
        {
            "a": {
                "meta": {"valid_frames": {"drums": frames, "vocals": frames}},
                "audio": {
                    "drums": np.full((128, frames + 2), -1.0, np.float32),
                    "vocals": np.full((128, frames + 2), -3.0, np.float32),
                },
            }
        }
    )
    features, valid = clip_features(store, audio_uri("a", ["drums", "vocals"], 2.0), n_frames)
    share = (n_frames - GAP_FRAMES) // 2
    assert valid == 2 * share + GAP_FRAMES
    # Both stems are heard, the target 2 dB up (log10 power +0.2, scaled by 1/4).
    anchor_value, target_value = features[0, 0], features[0, share + GAP_FRAMES]
    assert target_value - anchor_value == pytest.approx((-3.0 + 0.2 - (-1.0)) / 4, abs=1e-6)


def noise_excerpt(levels: dict[str, float], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    audio = {
        stem: (rng.standard_normal(RATE * 3) * 10 ** (level / 20)).astype(np.float32)
        for stem, level in levels.items()
    }
    return {"meta": {"sample_rate": RATE}, "audio": audio}


def test_dsp_baseline_hears_each_condition():
    examples = examples_frame(songs=("s1", "s2"), gains=(6.0,))
    excerpts = {
        "s1": noise_excerpt({"drums": -20.0, "vocals": -20.0}, 1),
        "s2": noise_excerpt({"drums": -40.0, "vocals": -20.0}, 2),  # a much quieter anchor
    }
    loaded = {key: (lambda record=record: record) for key, record in excerpts.items()}
    conventions = pd.DataFrame(
        [
            {
                "genre": "all",
                "anchor": "drums",
                "target": "vocals",
                "n_songs": 10,
                "median_db": 0.0,
                "q25_db": -1.0,
                "q75_db": 1.0,
                "std_db": 1.0,
            }
        ]  # fmt: skip
    )
    played = condition_examples(examples, settings())
    advice = dsp_baseline_advice(
        played, loaded, conventions, {"balanced_tolerance_db": 1.5, "convention_min_songs": 3}
    ).merge(played[["example_id", "condition", "song"]], on=["example_id", "condition"])
    words = advice.set_index(["condition", "song"])["advice"]
    # A common gain changes nothing the rule measures: the same words.
    assert words[("gain_staged", "s1")] == words[("as_mixed", "s1")]
    assert words[("gain_staged", "s2")] == words[("as_mixed", "s2")]
    # s1's vocal (6 dB up over an equal anchor) measured against s2's quiet drums: it is
    # now about 26 dB too loud, and the advice says so.
    relative = integrated_loudness(
        excerpts["s1"]["audio"]["vocals"] * 10 ** (6 / 20), RATE
    ) - integrated_loudness(excerpts["s2"]["audio"]["drums"], RATE)
    assert relative == pytest.approx(26.0, abs=1.0)
    assert "26 dB" in words[("anchor_swapped", "s1")] or "25 dB" in words[("anchor_swapped", "s1")]
    assert set(advice["condition"]) == {"as_mixed", "gain_staged", "anchor_swapped"}


@pytest.mark.parametrize("measure", ["loudness", "mel_power"])
def test_the_anchor_sets_the_level_so_a_staged_session_sounds_the_same(measure):
    from anchormix_kedro.model.data import anchor_levelling_db
    from anchormix_kedro.model.front_end import AnchorLevel

    rng = np.random.default_rng(4)
    frames, n_frames = 480, 500
    drums = rng.normal(-1.5, 0.5, (128, frames + 2)).astype(np.float32)
    vocals = rng.normal(-2.5, 0.5, (128, frames + 2)).astype(np.float32)
    store = FeatureStore(
        {
            "a": {
                "meta": {"valid_frames": {"drums": frames, "vocals": frames, "silence": frames}},
                "audio": {
                    "drums": drums,
                    "vocals": vocals,
                    "silence": np.full((128, frames + 2), -20.0, np.float32),
                },
            }
        }
    )

    at_minus_15 = AnchorLevel(-15.0, measure)

    def heard(stage_db: float, level: AnchorLevel | None, formulation: str = "anchor_target"):
        uris = formulation_clips(formulation, "a", "drums", "vocals", 4.0, stage_db)
        gain = anchor_levelling_db(store, uris, n_frames, level)
        return [clip_features(store, uri, n_frames, gain)[0] for uri in uris], gain

    for formulation in FORMULATIONS:
        (as_mixed, _), (staged, _) = (
            heard(0.0, at_minus_15, formulation),
            heard(-12.0, at_minus_15, formulation),
        )
        for mixed_clip, staged_clip in zip(as_mixed, staged, strict=True):
            np.testing.assert_allclose(staged_clip, mixed_clip, atol=1e-5)
    # Without levelling the staged session is 12 dB lower (log10 power -1.2, scaled by 1/4).
    (mixed, _), (staged, _) = heard(0.0, None), heard(-12.0, None)
    assert float((mixed[1] - staged[1])[:, :frames].mean()) == pytest.approx(0.3, abs=1e-3)
    # The anchor plays at the level asked for; the target keeps its 4 dB over it.
    _, gain = heard(-12.0, at_minus_15)
    assert at_minus_15.of_clip(drums, frames) - 12.0 + gain == pytest.approx(-15.0, abs=1e-4)
    # A silent anchor is not amplified.
    silent = [audio_uri("a", "silence"), audio_uri("a", "vocals")]
    assert anchor_levelling_db(store, silent, n_frames, at_minus_15) == 0.0


def test_a_package_records_its_anchor_level_and_older_ones_play_as_recorded():
    from anchormix_kedro.model.front_end import AnchorLevel, FrontEnd
    from anchormix_kedro.model.package import package_front_end

    shape = {"n_mels": 128, "sampling_rate": 16000, "max_clip_seconds": 30}
    levelled = FrontEnd.from_params(
        {**shape, "anchor_level_db": -23, "anchor_level_measure": "loudness"}
    )
    assert package_front_end({"front_end": levelled.as_dict()}).anchor_level == AnchorLevel(
        -23.0, "loudness", 16000
    )
    # Levelled before the measure was recorded: by mean mel power.
    mel_levelled = {"front_end": {**shape, "anchor_level_db": -15}}
    assert package_front_end(mel_levelled).anchor_level == AnchorLevel(-15.0, "mel_power", 16000)
    older = {"front_end": shape}
    assert package_front_end(older).anchor_level is None
    with pytest.raises(ValueError, match="anchor_level_measure 'lufs'"):
        FrontEnd.from_params({**shape, "anchor_level_db": -23, "anchor_level_measure": "lufs"})
