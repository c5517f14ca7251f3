"""The CSV the rating page downloads: its columns beyond the ratings, and people's text
written so that a spreadsheet shows it instead of running it.

A spreadsheet runs a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return as a formula (OWASP's "CSV injection"). The page writes such a cell with a leading
apostrophe (:func:`neutralise_cell`; the same rule in ``resources/page.js``), and
:mod:`anchormix_kedro.study.ratings` takes it off again (:func:`restore_cell`), so the
text read back is exactly the text typed. Text that already looks escaped gets one more
apostrophe, which keeps the round trip exact; cells of earlier pages, never escaped, read
back unchanged unless they start with an apostrophe before one of those characters.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

#: About the rater (the same on each of their rows).
RATER_COLUMNS: tuple[str, ...] = ("rater_role", "rater_experience", "consent")
#: Written feedback on one scenario (``comment`` is the single field of earlier pages).
FEEDBACK_COLUMNS: tuple[str, ...] = ("strengths", "weaknesses", "suggestions", "comment")
#: Which browser wrote the file and when: a rater's later file supersedes their earlier one.
FILE_COLUMNS: tuple[str, ...] = ("rater_token", "saved_at")
#: The rater's answers about their workflow (the same on each of their rows).
WORKFLOW_COLUMNS: tuple[str, ...] = ("workflow_fit", "workflow_change")
#: The consent column's value when the rater agreed.
CONSENT_GIVEN = "yes"
#: First characters that make a spreadsheet run a cell as a formula.
FORMULA_STARTS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")
_ESCAPE = "'"


def _escaped(text: str) -> bool:
    """Whether ``text`` starts with the escape followed by a formula start or the escape."""
    return len(text) > 1 and text[0] == _ESCAPE and text[1] in (*FORMULA_STARTS, _ESCAPE)


def neutralise_cell(text: str) -> str:
    """``text`` safe to open in a spreadsheet: an apostrophe before a formula start."""
    return _ESCAPE + text if text.startswith(FORMULA_STARTS) or _escaped(text) else text


def restore_cell(text: str) -> str:
    """The text as typed, from a cell written by :func:`neutralise_cell` (or the page)."""
    return text[1:] if _escaped(text) else text


def _map_text(frame: pd.DataFrame, change: Callable[[str], str]) -> pd.DataFrame:
    changed = frame.copy()
    for column in changed.columns:
        if pd.api.types.is_object_dtype(changed[column]) or pd.api.types.is_string_dtype(
            changed[column]
        ):
            changed[column] = changed[column].map(lambda v: change(v) if isinstance(v, str) else v)
    return changed


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells are neutralised (:func:`neutralise_cell`), for writing a CSV.

    Write it with every field quoted (``quoting=csv.QUOTE_ALL``), as the page does: pandas
    leaves a field with a lone carriage return unquoted, which splits the row.
    """
    return _map_text(frame, neutralise_cell)


def restore_spreadsheet_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`spreadsheet_safe` (:func:`restore_cell` on every text cell)."""
    return _map_text(frame, restore_cell)
