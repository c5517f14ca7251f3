"""Does ``anchormix advise --model`` judge the balance, or the session's level?

For each held-out MUSDB18 song (the test split of a run's ``tracks.csv``) the four stems
are written as WAV three times: as delivered, and with every stem ``--gains`` dB quieter or
hotter (the same balance at another session level). ``anchormix advise --model`` runs on
each, and every (anchor, target) verdict at another level is compared with the verdict as
delivered, for the model and for the measurement beside it. A model that hears the balance
keeps its verdicts; one that hears absolute level calls the quiet session "too soft".

    python scripts/verdict_stability.py --model data/06_models/advisor \\
        --tracks data/02_intermediate/tracks.csv --musdb ../shared/data/musdb18-7s
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile

import anchormix_kedro  # noqa: F401  (sets the offline/telemetry defaults)
from anchormix_kedro.advise import cli
from anchormix_kedro.instruction_data.audio import decode_stem_mp4
from anchormix_kedro.instruction_data.musdb import MUSDB_STREAM_IDS, STEM_MP4_SUFFIX
from anchormix_kedro.vocabulary import STEM_NAMES

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def latest_csv(path: Path) -> Path:
    """A versioned Kedro CSV is a folder of versions: the newest one."""
    if path.is_dir():
        return sorted(path.glob(f"*/{path.name}"))[-1]
    return path


def advise(folder: Path, model: str, anchor: str) -> dict[str, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = cli.main(["advise", str(folder), "--model", model, "--anchor", anchor, "--json"])
    if code != 0:
        raise SystemExit(f"anchormix advise failed on {folder} (exit {code})")
    return {t["stem"]: t for t in json.loads(out.getvalue())["targets"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a model package folder")
    parser.add_argument("--tracks", type=Path, required=True, help="a run's tracks.csv")
    parser.add_argument(
        "--musdb", type=Path, default=PROJECT_ROOT.parent / "shared/data/musdb18-7s"
    )
    parser.add_argument("--songs", type=int, default=8, help="test songs used (the first N)")
    parser.add_argument("--gains", type=float, nargs="+", default=[-12.0, 6.0])
    parser.add_argument("--anchors", nargs="+", default=["drums"])
    parser.add_argument(
        "--output", type=Path, default=PROJECT_ROOT / "data/08_reporting/verdict_stability.json"
    )
    args = parser.parse_args()

    tracks = pd.read_csv(latest_csv(args.tracks))
    songs = sorted(set(tracks.loc[tracks["split"] == "test", "song"]))[: args.songs]
    rows = []
    with tempfile.TemporaryDirectory(prefix="anchormix-stability-") as scratch:
        for song in songs:
            files = list(args.musdb.rglob(f"{song}{STEM_MP4_SUFFIX}"))
            if not files:
                raise SystemExit(f"{song}{STEM_MP4_SUFFIX} not found under {args.musdb}")
            stems, rate = decode_stem_mp4(files[0], {s: MUSDB_STREAM_IDS[s] for s in STEM_NAMES})
            verdicts = {}
            for gain in [0.0, *args.gains]:
                folder = Path(scratch) / f"{song}@{gain:+g}dB"
                folder.mkdir()
                scale = np.float32(10 ** (gain / 20))
                for stem, audio in stems.items():  # float WAV: +6 dB is not clipped
                    soundfile.write(str(folder / f"{stem}.wav"), audio * scale, rate, "FLOAT")
                for anchor in args.anchors:
                    for target, report in advise(folder, args.model, anchor).items():
                        model = (report.get("model") or {}).get("verdict")
                        verdicts[(gain, anchor, target)] = (model, report["verdict"])
            for (gain, anchor, target), (model, measured) in verdicts.items():
                if gain == 0.0:
                    continue
                base_model, base_measured = verdicts[(0.0, anchor, target)]
                rows.append(
                    {
                        "song": song,
                        "gain_db": gain,
                        "anchor": anchor,
                        "target": target,
                        "model": model,
                        "model_as_delivered": base_model,
                        "measurement": measured,
                        "measurement_as_delivered": base_measured,
                    }
                )
            print(f"{song}: done", flush=True)
    table = pd.DataFrame(rows)
    table["model_same"] = table["model"] == table["model_as_delivered"]
    table["measurement_same"] = table["measurement"] == table["measurement_as_delivered"]
    summary = {
        f"{gain:+g} dB": {
            "pairs": int(len(part)),
            "model_same_verdict": float(part["model_same"].mean()),
            "measurement_same_verdict": float(part["measurement_same"].mean()),
            "model_verdicts": part["model"].value_counts(dropna=False).to_dict(),
        }
        for gain, part in table.groupby("gain_db")
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {"model": args.model, "songs": songs, "by_gain": summary, "pairs": rows},
            indent=1,
            default=str,
        )
    )
    for level, figures in summary.items():
        print(
            f"every stem {level}: {figures['pairs']} pairs; same verdict: model "
            f"{figures['model_same_verdict']:.1%}, measurement {figures['measurement_same_verdict']:.1%}"
        )
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
