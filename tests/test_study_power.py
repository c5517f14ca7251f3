"""``anchormix study power``: the study's analysis run on a few simulated studies."""

from __future__ import annotations

import pandas as pd
import pytest

from anchormix_kedro.commands import main
from anchormix_kedro.study.power import PowerSettings

SMALL = ["--examples", "4", "--per-rater", "8", "--simulations", "2", "--workers", "1"]


def test_power_writes_one_row_per_design_and_prints_the_table(project, tmp_path, capsys):
    output = tmp_path / "power.csv"
    code = main(["study", "power", "--raters", "6", "8", "--effect", "1.5", *SMALL,
                 "--output", str(output)])  # fmt: skip
    assert code == 0
    table = pd.read_csv(output)
    assert list(table["raters"]) == [6, 8] and (table["per_rater"] == 8).all()
    assert (table["examples"] == 4).all() and (table["simulations"] == 2).all()
    assert set(table["measure"]) == {"power"} and table["value"].between(0, 1).all()
    out = capsys.readouterr().out
    assert "2 simulations per row" in out and "| raters |" in out and str(output) in out


def test_check_gives_the_false_positive_rate_and_the_power_into_the_project(project, capsys):
    assert main(["study", "power", "--check", "--raters", "6", *SMALL]) == 0
    table = pd.read_csv(project / "data" / "08_reporting" / "study_power_check.csv")
    assert list(table["measure"]) == ["false_positive_rate", "power"]
    assert list(table["effect"]) == [0.0, 0.5]
    assert table["raters"].nunique() == 1  # the configured design: study.design.raters_planned


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--simulations", "0"], "--simulations must be at least 1, got 0"),
        (["--raters", "1"], "--raters must be at least 2, got 1"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
    ],
)
def test_bad_options_are_one_line(project, capsys, options, message):
    assert main(["study", "power", *options]) == 2
    error = capsys.readouterr().err
    assert error == f"anchormix: error: {message}\n"


def test_outside_a_project_it_says_where_to_run_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["study", "power", "--simulations", "1"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no Kedro project" in error


def test_settings_check_their_values():
    assert PowerSettings().simulations == 60
    with pytest.raises(ValueError, match="--per-rater"):
        PowerSettings(per_rater=(0,))
