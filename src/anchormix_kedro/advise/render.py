"""The text report of ``anchormix advise``: a table of the targets, then the advice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from anchormix_kedro.advise.analysis import NOT_TOGETHER
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


def render_text(result: Mapping) -> str:
    """A readable report: one table row per target, then the advice."""
    anchor, genre = result["anchor"], result["genre"]
    lines = [
        f"Song:    {result['song']} ({result['sample_rate']} Hz, {result['seconds']:.1f} s)",
        f"Anchor:  {anchor}   conventions: "
        + ("all genres" if genre == ALL_GENRES else genre)
        + f"   model: {result['model']}   balanced within ±{result['tolerance_db']:g} dB",
        "",
    ]
    header = ["stem", f"vs {anchor}", "convention", "verdict", "fader move", "windows"]
    rows = []
    for target in result["targets"]:
        if target["status"] != ACTIVE:
            rows.append([target["stem"], target["status"].replace("_", " "), "-", "-", "-", "-"])
            continue
        convention = "-"
        if target["convention_db"] is not None:
            convention = f"{target['convention_db']:+.1f} dB"
            if target["convention_genre"] != genre:
                convention += f" ({target['convention_genre']})"
        rows.append(
            [
                target["stem"],
                f"{target['relative_db']:+.1f} dB",
                convention,
                (target["verdict"] or "-").replace("_", " "),
                format_fader_move(target["fader_move_db"]),
                _format_windows(target["windows"]),
            ]
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    for target in result["targets"]:
        if target["status"] == SILENT:
            text = "silent in the whole song; no advice."
        elif target["status"] == NOT_TOGETHER:
            text = f"never plays together with {anchor}; no advice."
        else:
            text = target["advice"] or "no convention for this stem; no advice."
        lines.append(f"{target['stem']}: {text}")
    if result["warnings"]:
        lines += ["", f"{len(result['warnings'])} warning(s), shown above on stderr."]
    return "\n".join(lines) + "\n"
