"""anchormix analyse seed-ensemble: the averaged belief of several packages, and what it scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from anchormix_kedro.analyses import seed_ensemble as ensemble
from anchormix_kedro.commands import main
from anchormix_kedro.vocabulary import label_for_gain

SIGNED = np.arange(-12, 13)
GAINS = [-10.0, -8.0, -6.0, -4.0, 0.0, 1.0, 4.0, 6.0, 8.0, 10.0] * 3


def truth_of(gains: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "gain_db": gains,
            "label": [label_for_gain(g, 1.5) for g in gains],
            "song": [f"song{i % 5}" for i in range(len(gains))],
            "meter_db": gains,
        }
    )


def belief_at(centre: float, weight: float) -> np.ndarray:
    """``weight`` of the mass at ``centre`` dB, the rest spread evenly."""
    row = np.full(SIGNED.size, (1 - weight) / (SIGNED.size - 1))
    row[int(np.argmin(np.abs(SIGNED - centre)))] = weight
    return row


def test_the_median_of_a_belief_states_its_direction_and_middle_amount():
    probabilities = np.array([belief_at(6, 0.9), belief_at(-3, 0.9), belief_at(0, 0.9)])
    labels, amounts = ensemble.median_verdicts(probabilities, SIGNED)
    assert list(labels) == ["too_loud", "too_soft", "balanced"]
    assert amounts[0] == 6 and amounts[1] == 3 and np.isnan(amounts[2])


def test_members_wrong_on_different_examples_are_right_together():
    truth = truth_of(GAINS)
    # Each member is sure and right on its own half of the examples and mildly wrong (the
    # opposite side, a little over half its mass) on the other half.
    members = []
    for member in range(2):
        rows = []
        for index, gain in enumerate(GAINS):
            if abs(gain) <= 1.5:
                rows.append(belief_at(0, 0.95))
            elif index % 2 == member:
                rows.append(belief_at(gain, 0.95))
            else:
                rows.append(belief_at(-gain, 0.55))
        members.append(np.array(rows))
    alone = [ensemble.figures(p, SIGNED, truth)["direction_4db"] for p in members]
    mixture = ensemble.figures(np.mean(members, axis=0), SIGNED, truth)
    assert max(alone) < 0.7 and mixture["direction_4db"] == 1.0
    assert mixture["amount_error_db"] == 0.0
    low, high = ensemble.song_bootstrap(members, SIGNED, truth)
    assert 0 < low <= high


def test_a_mixture_of_one_belief_with_itself_is_that_belief():
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.ones(SIGNED.size), size=len(GAINS))
    truth = truth_of(GAINS)
    alone = ensemble.figures(probabilities, SIGNED, truth)
    twice = ensemble.figures(np.mean([probabilities, probabilities], axis=0), SIGNED, truth)
    assert twice == pytest.approx(alone, nan_ok=True)
    assert ensemble.song_bootstrap([probabilities, probabilities], SIGNED, truth) == (0.0, 0.0)


def test_one_member_is_not_an_ensemble(tmp_path, capsys):
    code = main(["analyse", "seed-ensemble", "--member", str(tmp_path),
                 "--output", str(tmp_path / "out")])  # fmt: skip
    assert code == 2
    assert "at least two --member" in capsys.readouterr().err
