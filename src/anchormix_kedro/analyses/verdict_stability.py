"""Does ``anchormix advise --model`` judge the balance, or the session's level?

For each held-out MUSDB18 song (the test split of a run's ``tracks``) the four stems are
written as WAV three times: as delivered, and with every stem ``--gains`` dB quieter or
hotter (the same balance at another session level). ``anchormix advise --model`` runs on
each, and every (anchor, target) verdict at another level is compared with the verdict as
delivered, for the model and for the measurement beside it. A model that hears the balance
keeps its verdicts; one that hears absolute level calls the quiet session "too soft".

The model is the run's latest package of ``--variant`` (default ``advisor``) unless
``--model`` names another (a package folder or an MLflow ``models:/`` URI); MUSDB18 is
``--musdb``, else the project's ``musdb_root`` (``MUSDB_PATH``)::

    anchormix analyse verdict-stability [--variant advisor] [--songs 8] [--env ENV]

It writes ``data/08_reporting/analyses/verdict-stability/verdict_stability.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from anchormix_kedro.errors import CliError
from anchormix_kedro.vocabulary import STEM_NAMES

NAME = "verdict-stability"


def advise(folder: Path, model: str, anchor: str) -> dict[str, dict]:
    """``anchormix advise FOLDER --model MODEL --anchor ANCHOR --json``: its targets."""
    from anchormix_kedro.advise import cli as advise_cli

    parser = argparse.ArgumentParser(prog="anchormix")
    advise_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["advise", str(folder), "--model", model, "--anchor", anchor,
                              "--json"])  # fmt: skip
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = args.handler(args)
    except CliError as error:
        raise CliError(f"anchormix advise failed on {folder}: {error}") from None
    if code != 0:
        raise CliError(f"anchormix advise failed on {folder} (exit {code})")
    return {t["stem"]: t for t in json.loads(out.getvalue())["targets"]}


def song_verdicts(stems: dict[str, np.ndarray], rate: int, song: str, model: str,
                  gains: list[float], anchors: list[str], scratch: Path) -> list[dict]:  # fmt: skip
    """Each (anchor, target) verdict of the model and the measurement at every gain, beside
    the verdict as delivered."""
    import soundfile

    verdicts = {}
    for gain in [0.0, *gains]:
        folder = scratch / f"{song}@{gain:+g}dB"
        folder.mkdir()
        scale = np.float32(10 ** (gain / 20))
        for stem, audio in stems.items():  # float WAV: +6 dB is not clipped
            soundfile.write(str(folder / f"{stem}.wav"), audio * scale, rate, "FLOAT")
        for anchor in anchors:
            for target, report in advise(folder, model, anchor).items():
                verdict = (report.get("model") or {}).get("verdict")
                verdicts[(gain, anchor, target)] = (verdict, report["verdict"])
    rows = []
    for (gain, anchor, target), (verdict, measured) in verdicts.items():
        if gain == 0.0:
            continue
        base_model, base_measured = verdicts[(0.0, anchor, target)]
        rows.append({"song": song, "gain_db": gain, "anchor": anchor, "target": target,
                     "model": verdict, "model_as_delivered": base_model,
                     "measurement": measured, "measurement_as_delivered": base_measured})  # fmt: skip
    return rows


def summarise(rows: list[dict]) -> dict:
    """Per gain: the pairs, the share of unchanged verdicts, the model's verdicts."""
    table = pd.DataFrame(rows)
    table["model_same"] = table["model"] == table["model_as_delivered"]
    table["measurement_same"] = table["measurement"] == table["measurement_as_delivered"]
    return {
        f"{gain:+g} dB": {
            "pairs": int(len(part)),
            "model_same_verdict": float(part["model_same"].mean()),
            "measurement_same_verdict": float(part["measurement_same"].mean()),
            "model_verdicts": part["model"].value_counts(dropna=False).to_dict(),
        }
        for gain, part in table.groupby("gain_db")
    }


def command(args) -> int:
    """``anchormix analyse verdict-stability``."""
    from anchormix_kedro.analyses.project import open_run
    from anchormix_kedro.analyses.shipped_conventions import musdb_root
    from anchormix_kedro.instruction_data.audio import AudioError
    from anchormix_kedro.instruction_data.musdb import discover_corpus

    run = open_run(args.project, args.env)
    tracks = run.load("tracks")
    model = args.model or str(run.load(f"{args.variant}.model_package"))
    corpus = discover_corpus(musdb_root(args.musdb, run.root))
    songs = sorted(set(tracks.loc[tracks["split"] == "test", "song"]))[: args.songs]
    if not songs:
        raise CliError(f"the run's tracks ({run.where('tracks')}) hold no test song")
    rows = []
    with tempfile.TemporaryDirectory(prefix="anchormix-stability-") as scratch:
        for song in songs:
            try:
                stem_set = corpus.load_stems(corpus.track(song), STEM_NAMES)
            except (KeyError, AudioError) as error:
                raise CliError(f"{song}: {error}") from None
            rows += song_verdicts(stem_set.stems, stem_set.sample_rate, song, model,
                                  args.gains, args.anchors, Path(scratch))  # fmt: skip
            sys.stderr.write(f"{song}: done\n")
    summary = summarise(rows)
    output = (args.output or run.output(NAME)) / "verdict_stability.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"model": model, "songs": songs, "by_gain": summary,
                                  "pairs": rows}, indent=1, default=str))  # fmt: skip
    for level, figures in summary.items():
        sys.stdout.write(
            f"every stem {level}: {figures['pairs']} pairs; same verdict: model "
            f"{figures['model_same_verdict']:.1%}, measurement "
            f"{figures['measurement_same_verdict']:.1%}\n"
        )
    sys.stdout.write(f"written to {output}\n")
    return 0
