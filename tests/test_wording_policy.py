"""anchormix analyse wording-policy: what one optional sentence earns on a text metric."""

from __future__ import annotations

import pandas as pd
import pytest

from anchormix_kedro.analyses import wording_policy as policy
from anchormix_kedro.analyses.project import open_run
from anchormix_kedro.commands import main

SENTENCE = "In Pop mixes, the bass usually sits about 2 dB below the drums."
JUDGEMENT = "Relative to the drums, the bass is about {} dB too loud: pull the bass fader down."


def _metrics() -> pd.DataFrame:
    """Two systems with the references' very judgements: `rule` always adds the sentence,
    `model` never; two thirds of the references carry it."""
    rows = []
    for i in range(6):
        core = JUDGEMENT.format(i + 2)
        reference = f"{core} {SENTENCE}" if i % 3 else core
        for system, advice in (("model", core), ("rule", f"{core} {SENTENCE}")):
            rows.append({"example_id": f"e{i}", "condition": "as_mixed", "system": system,
                         "advice": advice, "reference_advice": reference})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_sentence_earns_style_points_that_the_cores_take_away():
    table = policy.measure(_metrics(), use_wordnet=False, bertscore_model=None)
    rouge = table[table["metric"] == "ROUGE-L"].set_index("system")
    written, bare, cores = policy.COLUMNS
    assert rouge.loc["rule", written] > rouge.loc["model", written]  # style, not judgement
    assert rouge.loc["rule", bare] == pytest.approx(rouge.loc["model", written])
    assert rouge.loc["rule", cores] == rouge.loc["model", cores] == pytest.approx(1.0)
    assert rouge.loc["rule", "advice_with_sentence"] == 1.0
    assert rouge.loc["model", "references_with_sentence"] == pytest.approx(4 / 6)
    assert "| rule (1.000, 6 ex.) | ROUGE-L |" in policy.markdown(table)


def test_the_command_reads_the_runs_metrics_and_names_what_is_missing(project, capsys):
    assert main(["analyse", "wording-policy"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "kedro run --pipeline=automated_eval" in error
    open_run(project).catalog.save("evaluation_metrics", _metrics())
    params = project / "conf" / "base" / "parameters" / "automated_eval.yml"
    params.write_text(params.read_text().replace("use_wordnet: null", "use_wordnet: false"))
    capsys.readouterr()
    assert main(["analyse", "wording-policy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("As mixed; 0.667 of the references")
    written = project / "data" / "08_reporting" / "analyses" / "wording-policy"
    assert (written / "wording_policy.md").read_text() == out
