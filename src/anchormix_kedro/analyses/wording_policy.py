"""How much of a text metric one optional sentence earns: the case for the wording policy.

The references carry the genre-convention sentence on some examples, the DSP rule on every
advice, the trained variants rarely. This analysis takes a run's evaluated advice
(``evaluation_metrics``, condition ``as_mixed``) and, per system, scores against the
references:

- the advice as written;
- the very same judgements with their optional sentences taken out, as written;
- either of them on the cores (optional sentences out of both sides), the policy the
  evaluation follows (:func:`anchormix_kedro.advice_language.wording.core_advice`).

A gap between the first two columns is style, not judgement; the third is the same for
both by construction::

    MUSDB_PATH=/path/to/musdb18-7s make run
    anchormix analyse wording-policy [--env ENV]

It prints the table and writes ``data/08_reporting/analyses/wording-policy/wording_policy.md``.
"""

from __future__ import annotations

import sys

import pandas as pd

from anchormix_kedro.advice_language.wording import core_advice, optional_sentences
from anchormix_kedro.errors import CliError
from anchormix_kedro.evaluation.conditions import as_mixed_rows
from anchormix_kedro.evaluation.summaries import order_systems
from anchormix_kedro.evaluation.text_metrics import score_options

NAME = "wording-policy"
METRICS: tuple[tuple[str, str], ...] = (
    ("bertscore_f1", "BERTScore F1"),
    ("bertscore_recall", "BERTScore recall"),
    ("rouge_l", "ROUGE-L"),
    ("meteor", "METEOR"),
)
COLUMNS = ("as written", "without its optional sentences, as written", "on the cores")


def with_sentence(texts: pd.Series) -> float:
    """The share of texts that hold an optional sentence."""
    return float(texts.map(lambda t: bool(optional_sentences(t))).mean())


def measure(evaluation_metrics: pd.DataFrame, **text_options) -> pd.DataFrame:
    """Per system and metric, the mean of each column of :data:`COLUMNS` over the advice
    as mixed that states anything, and the shares of advice and references with an
    optional sentence. ``text_options`` go to :func:`~anchormix_kedro.evaluation.text_metrics.score_texts`."""
    from anchormix_kedro.evaluation.text_metrics import score_texts

    rows = as_mixed_rows(evaluation_metrics)
    rows = rows[rows["advice"].map(lambda a: isinstance(a, str) and bool(a.strip()))]
    if rows.empty:
        raise CliError("the run's evaluation_metrics hold no advice as mixed to score")
    out = []
    for system in order_systems(rows["system"]):
        mine = rows[rows["system"] == system]
        written, references = list(mine["advice"]), list(mine["reference_advice"])
        bare = [core_advice(a) for a in written]
        cores = [core_advice(r) for r in references]
        scored = [
            score_texts(written, references, **text_options),
            score_texts(bare, references, **text_options),
            score_texts(bare, cores, **text_options),
        ]
        for metric, label in METRICS:
            out.append(
                {
                    "system": system,
                    "metric": label,
                    "n": len(mine),
                    "advice_with_sentence": with_sentence(mine["advice"]),
                    "references_with_sentence": with_sentence(mine["reference_advice"]),
                    **{c: float(s[metric].mean()) for c, s in zip(COLUMNS, scored, strict=True)},
                }
            )
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame) -> str:
    first = table.iloc[0]
    lines = [
        f"As mixed; {first['references_with_sentence']:.3f} of the references hold an "
        "optional sentence (the genre convention).",
        "",
        "| system (advice with the sentence) | metric | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for row in table.to_dict("records"):
        cells = " | ".join(f"{row[c]:.3f}" for c in COLUMNS)
        lines.append(
            f"| {row['system']} ({row['advice_with_sentence']:.3f}, {row['n']} ex.) | "
            f"{row['metric']} | {cells} |"
        )
    return "\n".join(lines) + "\n"


def command(args) -> int:
    """``anchormix analyse wording-policy``."""
    from anchormix_kedro.analyses.project import open_run

    run = open_run(args.project, args.env)
    metrics = run.load("evaluation_metrics")
    options = dict((run.params.get("automated_eval") or {}).get("text_metrics") or {})
    table = measure(metrics, **score_options(options))
    text = markdown(table)
    path = (args.output or run.output(NAME)) / "wording_policy.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    sys.stdout.write(text)
    sys.stderr.write(f"written to {path}\n")
    return 0
