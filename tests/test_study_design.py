"""The study's design: balanced raters per scenario, systems per rater, positions, no two
scenarios of one example in a row, catch trials placed apart."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.study.design import CATCH_SYSTEM, assign_rater, repeat_item, system_quotas

SYSTEMS = ("advisor", "dsp_baseline", "no_anchor", "generic_base")


def study_key(n_examples: int = 12, systems=SYSTEMS, n_catch: int = 3) -> pd.DataFrame:
    rows = [
        {"scenario_id": f"s-{e:02d}-{s}", "example_id": f"e{e:02d}", "system": s}
        for e in range(n_examples)
        for s in systems
    ]
    rows += [{"scenario_id": f"c-{e:02d}", "example_id": f"e{e:02d}", "system": CATCH_SYSTEM}
             for e in range(n_catch)]  # fmt: skip
    return pd.DataFrame(rows)


def draw(key: pd.DataFrame, n_raters: int, per_rater: int | None, seed: int = 7):
    counts: Counter = Counter()
    lists = []
    for r in range(n_raters):
        slots = assign_rater(key, counts, r, per_rater, seed)
        counts.update(s.scenario_id for s in slots if s.kind != "repeat")
        lists.append(slots)
    return lists, counts


@pytest.mark.parametrize("n_raters", [1, 4, 5, 13, 20, 30])
@pytest.mark.parametrize("per_rater", [30, 17, None])
def test_the_design_is_balanced_for_any_number_of_raters(n_raters, per_rater):
    key = study_key()
    lists, counts = draw(key, n_raters, per_rater)
    system = dict(zip(key["scenario_id"], key["system"], strict=True))
    example = dict(zip(key["scenario_id"], key["example_id"], strict=True))
    rated = key[key["system"] != CATCH_SYSTEM]["scenario_id"]
    # Every scenario is rated by about the same number of raters.
    per_scenario = [counts.get(sid, 0) for sid in rated]
    assert max(per_scenario) - min(per_scenario) <= 1, Counter(per_scenario)
    positions: dict[str, list[float]] = {s: [] for s in SYSTEMS}
    for slots in lists:
        plain = [s for s in slots if s.kind == "scenario"]
        assert len(plain) == (per_rater or len(rated))
        assert len({s.scenario_id for s in plain}) == len(plain)  # no scenario twice
        # Every rater meets every system about equally often.
        met = Counter(system[s.scenario_id] for s in plain)
        assert max(met.values()) - min(met.values()) <= 1, met
        # Two scenarios of one example never follow each other (catch trials included).
        examples = [example[s.scenario_id] for s in slots]
        assert all(a != b for a, b in zip(examples, examples[1:], strict=False))
        for place, s in enumerate(plain):
            positions[system[s.scenario_id]].append(place / max(1, len(plain) - 1))
        assert [s.position for s in slots] == list(range(1, len(slots) + 1))
    # Positions are counterbalanced: no system sits early or late on average. One rater's
    # systems each hold one place per block of 4; over 4 or more raters the blocks rotate.
    means = {s: float(np.mean(p)) for s, p in positions.items()}
    block = len(SYSTEMS) / (per_rater or len(rated))
    tolerance = 0.08 if n_raters >= len(SYSTEMS) else block
    assert max(means.values()) - min(means.values()) <= tolerance, means


def test_catch_trials_sit_apart_in_the_second_half_and_repeat_an_earlier_scenario():
    key = study_key()
    lists, counts = draw(key, 6, 24)
    for slots in lists:
        kinds = Counter(s.kind for s in slots)
        assert kinds == {"scenario": 24, "catch": 1, "repeat": 1}
        catch = next(s for s in slots if s.kind == "catch")
        assert catch.position > len(slots) // 2 - 1
        repeat = next(s for s in slots if s.kind == "repeat")
        original = next(s for s in slots if s.item == repeat.scenario_id)
        assert repeat.item == repeat_item(original.item)
        assert repeat.position - original.position >= 24 // 3
    # The catch scenarios are used about equally too.
    assert sorted(counts[f"c-{e:02d}"] for e in range(3)) == [2, 2, 2]
    plain, _ = draw(key, 2, 24, seed=7)
    without, _ = (lambda: ([assign_rater(key, Counter(), 0, 24, 7, catch_trials=False)], None))()
    assert {s.kind for s in without[0]} == {"scenario"} and plain[0][0].kind in {"scenario"}


def test_the_design_is_seeded_and_differs_between_raters():
    key = study_key()
    first = [s.item for s in assign_rater(key, Counter(), 3, 20, seed=1)]
    assert first == [s.item for s in assign_rater(key, Counter(), 3, 20, seed=1)]
    assert first != [s.item for s in assign_rater(key, Counter(), 3, 20, seed=2)]
    assert first != [s.item for s in assign_rater(key, Counter(), 4, 20, seed=1)]


def test_quotas_go_to_systems_that_have_scenarios_left():
    assert system_quotas(["a", "b", "c"], 7, 0, {"a": 10, "b": 10, "c": 10}) == {
        "a": 3,
        "b": 2,
        "c": 2,
    }
    assert system_quotas(["a", "b", "c"], 7, 1, {"a": 10, "b": 10, "c": 10}) == {
        "a": 2,
        "b": 3,
        "c": 2,
    }
    assert system_quotas(["a", "b"], 6, 0, {"a": 1, "b": 10}) == {"a": 1, "b": 5}
    with pytest.raises(ValueError, match="per_rater must be at least 1"):
        assign_rater(study_key(), Counter(), 0, 0, 1)


def test_an_example_with_too_few_neighbours_is_named():
    key = study_key(n_examples=1, n_catch=0)
    with pytest.raises(ValueError, match="cannot be kept apart"):
        assign_rater(key, Counter(), 0, None, 1)


def test_the_sample_takes_a_minimum_of_every_genre_first():
    from anchormix_kedro.study import kit

    rows = []
    for genre, n in (("Pop", 12), ("Jazz", 2), ("Rap", 1)):
        for k in range(n):
            for system in ("advisor", "dsp_baseline"):
                rows.append({"example_id": f"{genre}{k}", "system": system, "excerpt_id": f"{genre}{k}",
                             "genre": genre, "anchor": "drums", "target": "vocals",
                             "label": "too_loud", "gain_db": 3.0, "advice": "Pull it down 3 dB."})  # fmt: skip
    frame = pd.DataFrame(rows)
    key = kit.sample_scenarios(frame, 5, "s", seed=1, min_per_genre=2)
    per_genre = key.drop_duplicates("example_id")["genre"].value_counts().to_dict()
    assert per_genre["Jazz"] == 2 and per_genre["Rap"] == 1 and sum(per_genre.values()) == 5
    with pytest.raises(ValueError, match="min_examples_per_genre = 3 over 3 genres needs 6"):
        kit.sample_scenarios(frame, 5, "s", seed=1, min_per_genre=3)


def test_catch_advice_plants_the_wrong_direction_and_the_blinding_check_finds_a_giveaway():
    from anchormix_kedro.advice_language.parsing import parse_advice
    from anchormix_kedro.study import kit
    from anchormix_kedro.study.kit.blinding import distinctive_phrases, strip_convention
    from anchormix_kedro.study.kit.catch import catch_scenarios
    from study_helpers import example_rows

    key = kit.sample_scenarios(example_rows(), 6, "s", seed=1)
    catches = catch_scenarios(key, 2, seed=4)
    assert len(catches) == 2 and set(catches["system"]) == {CATCH_SYSTEM}
    for row in catches.itertuples(index=False):
        true_move = -float(row.gain_db)  # the fader move that undoes the imbalance
        assert np.sign(parse_advice(row.advice).fader_move_db) == -np.sign(true_move)
        assert row.scenario_id not in set(key["scenario_id"])
    convention = "Across genres, the vocal usually sits about 2 dB above the drums."
    assert strip_convention(f"Pull the vocal down by 3 dB. {convention}") == (
        "Pull the vocal down by 3 dB."
    )
    marked = key.assign(advice=[a + (f" {convention}" if s == "dsp_baseline" else "")
                                for a, s in zip(key["advice"], key["system"], strict=True)])  # fmt: skip

    # Here every system writes one fixed sentence, so each has phrases of its own; the
    # convention sentence adds the DSP rule's, and taking it out removes them again.
    def giveaways(frame):
        found = distinctive_phrases(frame)
        return set(found.loc[found["system"] == "dsp_baseline", "phrase"])

    assert "usually sits about" in " ".join(giveaways(marked))
    stripped = marked.assign(advice=marked["advice"].map(strip_convention))
    assert giveaways(stripped) == giveaways(key) and "usually" not in " ".join(giveaways(key))
    same = key.assign(advice="Pull the vocal fader down by about 4 dB.")
    assert distinctive_phrases(same).empty


def test_reworded_advice_keeps_the_systems_own_words_for_the_analysis():
    from anchormix_kedro.pipelines.study.nodes import sample_rating_study

    rows = []
    for k in range(4):
        for system, text in (("advisor", "Relative to the drums, the vocal is about 4 dB too "
                              "loud: pull the vocal fader down."),
                             ("dsp_baseline", "The vocal is 4 dB too loud. Across genres, the "
                              "vocal usually sits about 2 dB above the drums.")):  # fmt: skip
            rows.append({"example_id": f"e{k}", "system": system, "excerpt_id": f"x{k}",
                         "genre": "Pop", "anchor": "drums", "target": "vocals",
                         "label": "too_loud", "gain_db": 4.0, "advice": text,
                         "condition": "as_mixed"})  # fmt: skip
    params = {"n_examples": 4, "study_id": "s", "seed": 2, "systems": None,
              "catch_scenarios": 1, "min_examples_per_genre": 0}  # fmt: skip
    key = sample_rating_study(pd.DataFrame(rows), params)
    shown = key[key["system"] != CATCH_SYSTEM]
    assert not shown["advice"].str.contains("usually sits").any()
    assert shown["advice_evaluated"].isin({r["advice"] for r in rows}).all()
    assert (shown["advice"] != shown["advice_evaluated"]).any()
    assert (key["system"] == CATCH_SYSTEM).sum() == 1
