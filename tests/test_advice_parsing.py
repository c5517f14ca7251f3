"""Parsing advice back into direction and dB amount; truth metrics, missing values included."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from anchormix_kedro.advice_language.parsing import ParsedAdvice, parse_advice
from anchormix_kedro.advice_language.wording import (
    ADVICE_TEMPLATES,
    STEM_WORDS,
    TARGET_ONLY_ADVICE_TEMPLATES,
    advice_text,
    convention_sentence,
)
from anchormix_kedro.evaluation.truth import (
    truth_metrics,
    truth_metrics_frame,
)
from anchormix_kedro.vocabulary import BALANCED, TOO_LOUD, TOO_SOFT

STEMS = list(STEM_WORDS)


class PickTemplate:
    """Stands in for the random generator: always picks template ``index``."""

    def __init__(self, index: int):
        self.index = index

    def choice(self, options):
        return options[self.index]


def all_template_texts():
    """(text, label, amount) for every template, stem pair, label and amount 1..12."""
    conventions = [
        None,
        lambda a, t: convention_sentence("Rap", a, t, 3.2, pooled=False),
        lambda a, t: convention_sentence("Heavy Metal", a, t, -5.0, pooled=False),
        lambda a, t: convention_sentence("Pop", a, t, 0.2, pooled=True),
    ]
    for pools, anchors in ((ADVICE_TEMPLATES, STEMS), (TARGET_ONLY_ADVICE_TEMPLATES, [None])):
        for label, templates in pools.items():
            for index in range(len(templates)):
                for anchor in anchors:
                    for target in STEMS:
                        if anchor == target:
                            continue
                        for amount in range(1, 13):
                            gain = -amount if label == TOO_SOFT else amount
                            for convention in conventions:
                                sentence = (
                                    convention(anchor or "drums", target) if convention else None
                                )
                                text = advice_text(
                                    label, target, anchor, gain, PickTemplate(index), sentence
                                )
                                yield text, label, amount


def test_every_template_phrasing_round_trips_exactly():
    texts = list(all_template_texts())
    expected_count = (
        sum(
            len(templates)
            * (len(STEMS) * (len(STEMS) - 1) if pools is ADVICE_TEMPLATES else len(STEMS))
            for pools in (ADVICE_TEMPLATES, TARGET_ONLY_ADVICE_TEMPLATES)
            for templates in pools.values()
        )
        * 12
        * 4
    )
    assert len(texts) == expected_count
    failures = []
    for text, label, amount in texts:
        expected = ParsedAdvice(label, None if label == BALANCED else float(amount))
        if parse_advice(text) != expected:
            failures.append((text, parse_advice(text), expected))
    assert not failures, f"{len(failures)} of {len(texts)} differ, e.g. {failures[:3]}"


@pytest.mark.parametrize(
    "text, direction, amount",
    [
        ("turn the vocals down 3dB", TOO_LOUD, 3.0),
        ("the bass is a bit quiet, raise it by 2.5 dB", TOO_SOFT, 2.5),
        ("sits well", BALANCED, None),
        ("reduce by around four decibels", TOO_LOUD, 4.0),
        ("Boost the vocal by twelve dB.", TOO_SOFT, 12.0),
        ("Drop the guitars by six dB", TOO_LOUD, 6.0),
        ("Vocal down 3 dB.", TOO_LOUD, 3.0),
        ("Bass: 2 dB up", TOO_SOFT, 2.0),
        ("-3 dB on the vocal", TOO_LOUD, 3.0),
        ("vocal: +2 dB", TOO_SOFT, 2.0),
        ("The vocal is about 3-4 dB too hot", TOO_LOUD, 3.5),
        ("it's buried, push it up around 3 or 4 dB", TOO_SOFT, 3.5),
        ("I can't hear the vocal at all; boost it 5 dB", TOO_SOFT, 5.0),
        ("The drums are too loud; bring the vocal up 2 dB.", TOO_SOFT, 2.0),
        ("The vocal is too loud by 4 dB, pull it down 3 dB.", TOO_LOUD, 3.0),
        ("Take the drums down about 2 dB, they're drowning out the vocal.", TOO_LOUD, 2.0),
        ("The vocal is 4 dB lower than it should be", TOO_SOFT, 4.0),
        ("The bass is a little loud.", TOO_LOUD, None),
        ("The vocal is neither too loud nor too soft.", BALANCED, None),
        ("The bass is fine, no change needed", BALANCED, None),
        ("Leave it alone, it's perfect.", BALANCED, None),
        ("Balanced, clearly audible without overpowering the drums.", BALANCED, None),
        ("The vocal is not too loud.", None, None),
        ("Great song!", None, None),
        ("", None, None),
        (None, None, None),
        (float("nan"), None, None),
    ],
)
def test_free_text_advice(text, direction, amount):
    assert parse_advice(text) == ParsedAdvice(direction, amount)


def test_fader_move_sign_follows_direction():
    assert ParsedAdvice(TOO_LOUD, 4.0).fader_move_db == -4.0
    assert ParsedAdvice(TOO_SOFT, 2.5).fader_move_db == 2.5
    assert ParsedAdvice(BALANCED, None).fader_move_db == 0.0
    assert ParsedAdvice(TOO_LOUD, None).fader_move_db is None
    assert ParsedAdvice(None, 3.0).fader_move_db is None


def test_truth_metrics_correct_direction_and_amount_error():
    metrics = truth_metrics(ParsedAdvice(TOO_LOUD, 4.0), TOO_LOUD, 5.0)
    assert metrics.parsed and metrics.direction_correct
    assert metrics.balanced_outcome == "tn"
    assert metrics.fader_move_error_db == pytest.approx(1.0)  # moves -4 where -5 was needed
    assert metrics.amount_error_db == pytest.approx(1.0)


def test_truth_metrics_wrong_direction_adds_up_and_has_no_amount_error():
    metrics = truth_metrics(ParsedAdvice(TOO_LOUD, 4.0), TOO_SOFT, -3.0)
    assert metrics.direction_correct is False
    assert metrics.fader_move_error_db == pytest.approx(7.0)  # -4 dB against +3 dB
    assert metrics.amount_error_db is None


def test_truth_metrics_balanced_detection_outcomes():
    assert truth_metrics(ParsedAdvice(BALANCED, None), BALANCED, 1.0).balanced_outcome == "tp"
    assert truth_metrics(ParsedAdvice(BALANCED, None), TOO_SOFT, -6.0).balanced_outcome == "fp"
    assert truth_metrics(ParsedAdvice(TOO_SOFT, 2.0), BALANCED, -1.0).balanced_outcome == "fn"
    leave_it = truth_metrics(ParsedAdvice(BALANCED, None), BALANCED, 1.0)
    assert leave_it.fader_move_error_db == pytest.approx(1.0)  # "leave it" is a 0 dB move
    assert leave_it.amount_error_db is None
    missed = truth_metrics(ParsedAdvice(BALANCED, None), TOO_SOFT, -6.0)
    assert missed.fader_move_error_db == pytest.approx(6.0)


def test_truth_metrics_leave_missing_values_missing():
    unparsed = truth_metrics(ParsedAdvice(None, None), TOO_LOUD, 4.0)
    assert not unparsed.parsed
    assert unparsed.direction_correct is None and unparsed.balanced_outcome is None
    assert unparsed.fader_move_error_db is None and unparsed.amount_error_db is None

    no_amount = truth_metrics(ParsedAdvice(TOO_LOUD, None), TOO_LOUD, 4.0)
    assert no_amount.direction_correct is True
    assert no_amount.fader_move_error_db is None and no_amount.amount_error_db is None

    for unknown_gain in (None, math.nan):
        no_gain = truth_metrics(ParsedAdvice(TOO_LOUD, 3.0), TOO_LOUD, unknown_gain)
        assert no_gain.direction_correct is True
        assert no_gain.fader_move_error_db is None and no_gain.amount_error_db is None


def test_truth_metrics_rejects_unknown_labels():
    with pytest.raises(ValueError, match="unknown label"):
        truth_metrics(ParsedAdvice(TOO_LOUD, 1.0), "louder", 1.0)


def test_truth_metrics_frame():
    frame = truth_metrics_frame(
        [
            "Pull the vocal fader down by about 4 dB.",  # correct, 1 dB off
            "The bass sits well.",  # balanced, truly balanced
            "Great song!",  # unparsed
            "Raise the vocal 2 dB.",  # wrong: it was too loud by 3
        ],
        [TOO_LOUD, BALANCED, TOO_SOFT, TOO_LOUD],
        [5.0, 0.0, -4.0, 3.0],
    )
    assert isinstance(frame, pd.DataFrame) and len(frame) == 4
    assert frame["direction_correct"].isna().tolist() == [False, False, True, False]
    assert pd.isna(frame.loc[2, "fader_move_error_db"])
    assert frame["direction_correct"].dropna().tolist() == [True, True, False]
    assert frame["fader_move_error_db"].dropna().tolist() == pytest.approx([1.0, 0.0, 5.0])
    assert frame["balanced_outcome"].tolist().count("tp") == 1


def test_nothing_parsed_leaves_nothing_to_score():
    frame = truth_metrics_frame(["?", "Nice!"], [TOO_LOUD, BALANCED], [3.0, 0.0])
    assert not frame["parsed"].any() and frame["direction_correct"].isna().all()
    assert frame["fader_move_error_db"].isna().all()


# --------------------------------------------------------------------------- consistency, stems

#: Hand-labelled advice: (text, target, anchor, self-consistent, names a wrong stem).
LABELLED_CONSISTENCY = [
    # Seen from a fine-tuned model: two amounts in one piece of advice.
    (
        "The bass is buried about 7 dB below the drums. Push the bass fader up around 8 dB.",
        "bass",
        "drums",
        False,
        False,
    ),
    # Seen from a fine-tuned model: the vocal named for the other instruments.
    ("The vocal is buried under the drums: raise it by 5 dB.", "other", "drums", True, True),
    ("The vocal is too loud, push it up 3 dB.", "vocals", "drums", False, False),
    ("It's balanced, but pull it down 3 dB.", "vocals", "drums", False, False),
    ("Pull the guitars down 4 dB against the drums.", "other", "drums", True, False),
    ("The bass drum is too loud; bring the bass up 2 dB.", "bass", "drums", False, False),
    ("Bring the vocal down about 3-4 dB.", "vocals", "drums", True, False),
    ("The bass sits well; leave it where it is.", "bass", "drums", True, False),
    ("The bass sits well, but the vocal needs 2 dB more.", "bass", "drums", False, True),
    ("Great song!", "bass", "drums", False, True),
    (None, "vocals", "drums", False, True),
]


@pytest.mark.parametrize("text, target, anchor, consistent, wrong_stem", LABELLED_CONSISTENCY)
def test_hand_labelled_consistency_and_stems(text, target, anchor, consistent, wrong_stem):
    parsed = parse_advice(text)
    assert parsed.self_consistent is consistent
    assert parsed.names_wrong_stem(target, anchor) is wrong_stem
    metrics = truth_metrics(parsed, BALANCED, 0.0, target, anchor)
    assert metrics.self_consistent is consistent and metrics.wrong_stem is wrong_stem


def test_every_template_phrasing_is_consistent_and_about_its_stems():
    failures = [
        text for text, label, _ in all_template_texts() if not parse_advice(text).self_consistent
    ]
    assert not failures, failures[:3]
    for anchor in STEMS:
        for target in STEMS:
            if target == anchor:
                continue
            for label in ADVICE_TEMPLATES:
                for index in range(len(ADVICE_TEMPLATES[label])):
                    text = advice_text(label, target, anchor, 4.0, PickTemplate(index))
                    assert not parse_advice(text).names_wrong_stem(target, anchor), text


def test_frame_marks_inconsistent_advice_and_wrong_stems():
    frame = truth_metrics_frame(
        ["Pull the vocal down 4 dB.", "The vocal is buried: raise it 3 dB or 5 dB.", None],
        [TOO_LOUD, TOO_SOFT, BALANCED],
        [4.0, -3.0, 0.0],
        targets=["vocals", "bass", "other"],
        anchors=["drums", "drums", "drums"],
    )
    assert list(frame["self_consistent"]) == [True, False, False]
    assert list(frame["wrong_stem"]) == [False, True, True]
    no_targets = truth_metrics_frame(["Pull it down 4 dB."], [TOO_LOUD], [4.0])
    assert no_targets["wrong_stem"].isna().all()
