"""anchormix analyse belief-separation: what any decision rule on a model's belief can reach."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.analyses import belief_separation as separation
from anchormix_kedro.vocabulary import label_for_gain

SIGNED = np.array([-8, -4, 0, 4, 8])


def belief_for(gain_db: float, sure: bool) -> np.ndarray:
    """Mass on the true side's nearest amount when ``sure``; otherwise split evenly."""
    if not sure or abs(gain_db) <= 1.5:
        return np.array([0.2, 0.2, 0.2, 0.2, 0.2])
    row = np.full(5, 0.02)
    row[int(np.argmin(np.abs(SIGNED - gain_db)))] = 0.92
    return row


def truth_of(gains: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"gain_db": gains, "label": [label_for_gain(g, 1.5) for g in gains]})


GAINS = [0.0, 1.0, -1.0, 4.0, -4.0, 8.0, -8.0, 10.0, -10.0]


def test_a_belief_that_is_sure_only_of_real_imbalances_separates_them_perfectly():
    probabilities = np.array([belief_for(g, sure=True) for g in GAINS])
    truth = truth_of(GAINS)
    assert separation.separation_auc(probabilities, SIGNED, truth) == 1.0
    table = separation.tradeoff(
        probabilities, SIGNED, truth, *separation.thresholded_verdicts(probabilities, SIGNED, 0.5)
    )
    at_half = table[table["threshold"] == 0.5].iloc[0]
    assert at_half["balanced_f1"] == 1.0 and at_half["direction_4db"] == 1.0
    # Never saying "balanced" (threshold 0) misses every balanced example.
    never = table[table["threshold"] == 0.0].iloc[0]
    assert never["balanced_f1"] == 0.0 and never["says_balanced"] == 0.0
    # The amount is the median of the likelier side: 4 dB for 4 dB, 8 dB for 8 and 10 dB.
    labels, amounts = separation.thresholded_verdicts(probabilities, SIGNED, 0.5)
    assert list(amounts[3:]) == [4.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert list(labels[:3]) == ["balanced"] * 3


def test_a_belief_unsure_of_real_imbalances_cannot_have_both():
    # Unsure of two of the 4 dB examples: as uncertain as a balanced one.
    gains = GAINS + [4.0, -4.0]
    probabilities = np.array([belief_for(g, sure=i < len(GAINS)) for i, g in enumerate(gains)])
    truth = truth_of(gains)
    assert separation.separation_auc(probabilities, SIGNED, truth) == pytest.approx(
        1 - 0.5 * (3 * 2) / (3 * 8)
    )
    table = separation.tradeoff(
        probabilities, SIGNED, truth, *separation.thresholded_verdicts(probabilities, SIGNED, 0.5)
    )
    at_half = table[table["threshold"] == 0.5].iloc[0]
    assert at_half["balanced_f1"] == 1.0 - 2 / (2 * 3 + 2) and at_half["direction_4db"] < 1.0


def test_the_hearing_noise_is_the_meter_noise_the_belief_carries():
    rng = np.random.default_rng(8)
    signed = np.arange(-12, 13)
    gains = rng.integers(-12, 13, 3000).astype(float)
    meter = gains + rng.normal(0, 3, gains.size)  # songs sit 3 dB (SD) from the convention
    truth = truth_of(list(gains)).assign(meter_db=meter)

    def one_hot_at(centres: np.ndarray) -> np.ndarray:
        probabilities = np.zeros((centres.size, signed.size))
        probabilities[
            np.arange(centres.size), np.clip(np.rint(centres), -12, 12).astype(int) + 12
        ] = 1
        return probabilities

    exact = separation.hearing_noise(one_hot_at(meter), signed, truth)
    assert exact["meter_spearman"] > 0.9
    assert exact["hearing_noise_db"] <= 0.6  # rounding to whole dB and clipping only
    noisy = separation.hearing_noise(
        one_hot_at(meter + rng.normal(0, 2.5, gains.size)), signed, truth
    )
    assert noisy["belief_spearman"] < exact["belief_spearman"]
    assert 2.0 <= noisy["hearing_noise_db"] <= 3.2


def test_the_report_is_a_table_and_the_trade_off_plot(tmp_path):
    probabilities = np.array([belief_for(g, sure=True) for g in GAINS])
    truth = truth_of(GAINS).assign(meter_db=GAINS)
    labels, amounts = separation.thresholded_verdicts(probabilities, SIGNED, 0.5)
    stem = tmp_path / "analyses" / "advisor_valid"
    found = separation.write_report(probabilities, SIGNED, truth, labels, amounts, "test", stem)
    assert found["auc"] == 1.0
    table = pd.read_csv(f"{stem}.csv")
    assert (
        len(table) == len(separation.THRESHOLDS) + 1 and (table["auc_balanced_vs_4db"] == 1).all()
    )
    png = (tmp_path / "analyses" / "advisor_valid.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
