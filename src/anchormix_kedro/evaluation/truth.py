"""Score parsed advice against the truth of its example (the label and the applied gain)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from anchormix_kedro.advice_language.parsing import DIRECTIONS, ParsedAdvice, parse_advice
from anchormix_kedro.vocabulary import BALANCED


@dataclass(frozen=True)
class TruthMetrics:
    """How one piece of advice compares with the truth; ``None`` wherever it cannot be told.

    - ``parsed``: the advice stated a direction.
    - ``direction_correct``: the stated direction equals the label.
    - ``balanced_outcome``: "balanced" detection, balanced being the positive class:
      ``"tp"``, ``"fp"``, ``"fn"`` or ``"tn"``.
    - ``fader_move_error_db``: ``|stated move - true move|`` where the true move undoes the
      gain (``-gain_db``) and "balanced" states a move of 0 dB; a move in the wrong
      direction adds up (4 dB down against a true 3 dB up is 7 dB off).
    - ``amount_error_db``: ``|amount - |gain_db||`` when the direction is correct and not
      balanced: how well the size of the imbalance was judged.
    - ``self_consistent``: one direction, at most one amount, a fader move that agrees
      (:attr:`ParsedAdvice.self_consistent`); unparsed advice is not.
    - ``wrong_stem``: the advice speaks of a stem that is neither the target nor the anchor;
      unparsed advice counts as wrong; ``None`` when the target is not given.
    """

    predicted_direction: str | None
    predicted_amount_db: float | None
    parsed: bool
    direction_correct: bool | None
    balanced_outcome: str | None
    fader_move_error_db: float | None
    amount_error_db: float | None
    self_consistent: bool = False
    wrong_stem: bool | None = None


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def truth_metrics(
    parsed: ParsedAdvice,
    true_label: str,
    true_gain_db: float | None,
    target: str | None = None,
    anchor: str | None = None,
) -> TruthMetrics:
    """Compare parsed advice with the example's label and gain (the offset applied in dB),
    and, when ``target`` is given, with the stems it is about."""
    if true_label not in DIRECTIONS:
        raise ValueError(f"unknown label {true_label!r}; expected one of {', '.join(DIRECTIONS)}")
    direction = parsed.direction
    wrong_stem = None if target is None else parsed.names_wrong_stem(target, anchor)
    if direction is None:
        return TruthMetrics(
            None, parsed.amount_db, False, None, None, None, None, False, wrong_stem
        )

    predicted_balanced, truly_balanced = direction == BALANCED, true_label == BALANCED
    outcome = {
        (True, True): "tp",
        (True, False): "fp",
        (False, True): "fn",
        (False, False): "tn",
    }[(predicted_balanced, truly_balanced)]

    move_error = amount_error = None
    if not _missing(true_gain_db):
        gain = float(true_gain_db)
        stated_move = parsed.fader_move_db
        if stated_move is not None:
            move_error = abs(stated_move - (-gain))
        if direction == true_label and not truly_balanced and parsed.amount_db is not None:
            amount_error = abs(parsed.amount_db - abs(gain))
    return TruthMetrics(
        direction,
        parsed.amount_db,
        True,
        direction == true_label,
        outcome,
        move_error,
        amount_error,
        parsed.self_consistent,
        wrong_stem,
    )


def truth_metrics_frame(
    texts: list[str | None],
    true_labels: list[str],
    true_gains_db: list[float | None],
    targets: list[str] | None = None,
    anchors: list[str | None] | None = None,
) -> pd.DataFrame:
    """:func:`truth_metrics` of every text, one row each (columns of :class:`TruthMetrics`)."""
    targets = list(targets) if targets is not None else [None] * len(texts)
    anchors = list(anchors) if anchors is not None else [None] * len(texts)
    if not len(texts) == len(true_labels) == len(true_gains_db) == len(targets) == len(anchors):
        raise ValueError(
            f"texts ({len(texts)}), labels ({len(true_labels)}), gains "
            f"({len(true_gains_db)}), targets and anchors differ in length"
        )
    rows = [
        asdict(truth_metrics(parse_advice(text), label, gain, target, anchor))
        for text, label, gain, target, anchor in zip(
            texts, true_labels, true_gains_db, targets, anchors, strict=True
        )
    ]
    frame = pd.DataFrame(rows, columns=list(TruthMetrics.__dataclass_fields__))
    for column in ("direction_correct", "parsed", "self_consistent", "wrong_stem"):
        frame[column] = frame[column].astype("boolean")
    for column in ("predicted_amount_db", "fader_move_error_db", "amount_error_db"):
        frame[column] = frame[column].astype("Float64")
    return frame
