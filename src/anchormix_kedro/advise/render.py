"""The text report of ``anchormix advise``: which file went where, a table of the targets
(the measurement, and the model beside it with ``--model``), then the advice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from anchormix_kedro.advise.analysis import IDENTICAL_TO_ANCHOR, NOT_TOGETHER
from anchormix_kedro.advise.printable import printable
from anchormix_kedro.advise.verdict import GRADE_WORDS, format_range, ordinal
from anchormix_kedro.instruction_data.conventions import ALL_GENRES
from anchormix_kedro.instruction_data.excerpts import ACTIVE, SILENT


def format_fader_move(move_db: float | None) -> str:
    """E.g. ``-3.5 dB``, ``+2.0 dB``, ``0 dB`` (no move)."""
    if move_db is None:
        return "-"
    rounded = round(move_db, 1)
    return "0 dB" if rounded == 0 else f"{rounded:+.1f} dB"


def _format_windows(windows: Sequence[tuple[float, float]]) -> str:
    return ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in windows) or "-"


def _format_percentile(percentile: float | None) -> str:
    if percentile is None:
        return "-"
    if percentile <= 0:
        return "below all"
    if percentile >= 100:
        return "above all"
    return ordinal(max(1, min(99, round(percentile))))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _header(result: Mapping) -> list[str]:
    genre = result["genre"]
    shown = "all genres" if genre == ALL_GENRES else f"{genre} ({result['genre_source']})"
    usual, outer = result["usual_percentiles"], result["outer_percentiles"]
    range_genres = sorted(
        {t["range_genre"] for t in result["targets"] if t.get("range_genre") is not None}
    )
    whose = "every genre" if range_genres in ([], [ALL_GENRES]) else ", ".join(range_genres)
    lines = [
        f"Song:    {printable(result['song'])} ({result['sample_rate']} Hz, {result['seconds']:.1f} s)",
        f"Anchor:  {result['anchor']}   genre: {shown}",
        f"Ranges:  professional mixes of {whose}; usual range {usual[0]:g}th-{usual[1]:g}th "
        f"percentile, too loud or too soft beyond the {outer[0]:g}th-{outer[1]:g}th",
    ]
    if result.get("model"):
        lines.append(f"Model:   {printable(result['model'])} (its advice beside the measurement)")
    lines.append(f"Stems:   {_stem_sources(result.get('stem_files', {}))}")
    if result.get("not_stems"):
        lines.append(
            f"         not used (a whole mix): {printable(', '.join(result['not_stems']))}"
        )
    return [*lines, ""]


def _stem_sources(stem_files: Mapping[str, Sequence[str]]) -> str:
    """``drums <- Kick.wav, Snare.wav; ...``, or the streams of one ``.stem.mp4``; file
    names escaped for the terminal."""
    stem_files = {stem: [printable(f) for f in files] for stem, files in stem_files.items()}
    streams = [files[0].rpartition(" stream ") for files in stem_files.values() if len(files) == 1]
    containers = {container for container, _, _ in streams}
    if len(streams) == len(stem_files) and len(containers) == 1 and all(s[1] for s in streams):
        numbers = ", ".join(number for _, _, number in streams)
        return f"{', '.join(stem_files)} from streams {numbers} of {containers.pop()}"
    return "; ".join(f"{stem} <- {', '.join(files)}" for stem, files in stem_files.items())


def _row(target: Mapping, with_model: bool) -> list[str]:
    if target["status"] != ACTIVE:
        return [target["stem"], target["status"].replace("_", " ")] + ["-"] * (
            6 if with_model else 5
        )
    usual = target.get("usual_range_db")
    cells = [
        target["stem"],
        f"{target['relative_db']:+.1f} dB",
        _format_percentile(target.get("percentile")),
        format_range(*usual) if usual else "-",
        GRADE_WORDS.get(target.get("grade") or "", "-"),
    ]
    model = target.get("model")
    if with_model:
        verdict = (model or {}).get("verdict")
        agrees = (model or {}).get("agrees_with_measurement", True)
        return cells + [
            (verdict or "-").replace("_", " "),
            format_fader_move((model or {}).get("fader_move_db")),
            "yes" if agrees else "NO",
        ]
    return cells + [format_fader_move(target["fader_move_db"]), _format_windows(target["windows"])]


def render_text(result: Mapping) -> str:
    """A readable report: the stems' files, one table row per target, then the advice."""
    anchor = result["anchor"]
    with_model = bool(result.get("model"))
    header = ["stem", f"vs {anchor}", "percentile", "usual range", "measurement"]
    header += ["model says", "model move", "agree"] if with_model else ["fader move", "windows"]
    lines = _header(result)
    lines += _table(header, [_row(t, with_model) for t in result["targets"]])
    lines.append("")
    for target in result["targets"]:
        if target["status"] == SILENT:
            lines.append(f"{target['stem']}: silent in the whole song; no advice.")
            continue
        if target["status"] == NOT_TOGETHER:
            lines.append(f"{target['stem']}: never plays together with {anchor}; no advice.")
            continue
        if target["status"] == IDENTICAL_TO_ANCHOR:
            lines.append(
                f"{target['stem']}: the same audio as {anchor}; no advice (check the export)."
            )
            continue
        measured = target["advice"] or "no professional levels for this stem; no advice."
        model = target.get("model")
        if not with_model or model is None:
            lines.append(f"{target['stem']}: {measured}")
            continue
        lines.append(f"{target['stem']}:")
        lines.append(f"  model:       {model.get('advice') or '(no advice)'}")
        lines.append(f"  measurement: {measured}")
        if not model.get("agrees_with_measurement", True):
            lines.append(f"  DISAGREE:    {model['disagreement']}")
    if result["warnings"]:
        count = len(result["warnings"])
        lines += ["", f"{count} warning{'' if count == 1 else 's'}, shown above on stderr."]
    return "\n".join(lines) + "\n"
