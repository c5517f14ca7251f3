"""Engineers' ratings: read and check the study page's CSV files, merge raters, agreement.

A ratings file has one row per (rater, scenario) with columns ``rater``, ``scenario_id``,
the four criteria (``effectiveness``, ``musicality``, ``actionability``, ``helpfulness``:
whole numbers from 1 to 7) and optionally the rest of :data:`OPTIONAL_COLUMNS`: the study,
the rater's role, experience and consent, the written feedback on the scenario
(``strengths``, ``weaknesses``, ``suggestions``; ``comment`` on earlier pages) and the
answers about the rater's workflow, as the study page downloads it. :func:`validate_ratings`
rejects a file with every problem listed by file, row and value (wrong columns, empty or
out-of-range ratings, unknown scenario ids, a rater rating a scenario twice, ratings of
another study, ratings without consent); nothing is guessed or filled in.
:func:`merge_ratings` does so for many files and also rejects duplicates across them.

People's text is safe to open in a spreadsheet: the page (and
:func:`~anchormix_kedro.study.kit.page_csv.spreadsheet_safe`) writes a cell that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) with a leading apostrophe, and the loader takes it off again, so the text
read back is the text the rater typed (:mod:`anchormix_kedro.study.kit.page_csv`).

Inter-rater agreement is in :mod:`anchormix_kedro.study.agreement`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import IO

import pandas as pd

from anchormix_kedro.study.kit.page_csv import (
    CONSENT_GIVEN,
    FEEDBACK_COLUMNS,
    FILE_COLUMNS,
    RATER_COLUMNS,
    WORKFLOW_COLUMNS,
    restore_spreadsheet_text,
)
from anchormix_kedro.vocabulary import CRITERIA, LIKERT_MAX, LIKERT_MIN, MAX_TEXT_CHARS

REQUIRED_COLUMNS: tuple[str, ...] = ("rater", "scenario_id", *CRITERIA)
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "study_id",
    *FILE_COLUMNS,
    *RATER_COLUMNS,
    *FEEDBACK_COLUMNS,
    *WORKFLOW_COLUMNS,
)
#: Columns of a validated ratings frame.
RATINGS_COLUMNS: tuple[str, ...] = ("study_id", "rater", *FILE_COLUMNS, *RATER_COLUMNS, "scenario_id", *CRITERIA,
                                    *FEEDBACK_COLUMNS, *WORKFLOW_COLUMNS, "source", "row")  # fmt: skip
_LISTED_PROBLEMS = 12
_RATING = re.compile(r"^[+]?(\d+)(?:\.0*)?$")


class RatingsError(ValueError):
    """Ratings that cannot be used as they are; the message names the file, rows and values."""


def empty_ratings() -> pd.DataFrame:
    """A validated ratings frame with no rows."""
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in RATINGS_COLUMNS})
    for criterion in CRITERIA:
        frame[criterion] = frame[criterion].astype("Int64")
    frame["row"] = frame["row"].astype("Int64")
    return frame


def read_ratings_csv(source: str | Path | IO, name: str | None = None) -> pd.DataFrame:
    """Every cell of a ratings CSV as text (a byte-order mark is allowed), unchecked."""
    name = name or str(source)
    try:
        return pd.read_csv(source, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise RatingsError(f"ratings file {name!r} is empty: expected a header row") from None
    except UnicodeDecodeError as error:
        raise _not_utf8(name, error) from None
    except pd.errors.ParserError as error:
        raise RatingsError(f"ratings file {name!r} is not a readable CSV: {error}") from None


def _not_utf8(name: str, error: UnicodeDecodeError) -> RatingsError:
    """Spreadsheets on Windows save "CSV" in a code page (cp1252: "Zoé" is byte 0xe9)."""
    byte = error.object[error.start : error.start + 1].hex()
    return RatingsError(
        f"ratings file {name!r} is not UTF-8 text (byte 0x{byte} at position {error.start}): "
        "save it as UTF-8 (in Excel: Save As, CSV UTF-8) and run again"
    )


def _problems(source: str, problems: list[str]) -> RatingsError:
    shown = problems[:_LISTED_PROBLEMS]
    more = len(problems) - len(shown)
    lines = "\n".join(f"  - {p}" for p in shown)
    tail = f"\n  - ... and {more} more" if more > 0 else ""
    noun = "problem" if len(problems) == 1 else "problems"
    return RatingsError(f"ratings file {source!r}: {len(problems)} {noun}:\n{lines}{tail}")


def _rating(value: str) -> int | None:
    match = _RATING.match(value)
    if match is None:
        return None
    number = int(match.group(1))
    return number if LIKERT_MIN <= number <= LIKERT_MAX else None


def validate_ratings(
    frame: pd.DataFrame,
    source: str,
    known_scenarios: Collection[str] | None = None,
    study_id: str | None = None,
) -> pd.DataFrame:
    """Check one file's ratings and return them typed (columns :data:`RATINGS_COLUMNS`).

    ``source`` names the file in messages; rows are counted from 1 after the header.
    ``known_scenarios`` (the study key's ids) rejects other ids; ``study_id`` rejects rows
    whose ``study_id`` names another study. Raises :class:`RatingsError` listing every
    problem found.
    """
    columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if unknown:
            parts.append(f"unknown columns {unknown}")
        if repeated:
            parts.append(f"repeated columns {repeated}")
        raise RatingsError(
            f"ratings file {source!r}: {'; '.join(parts)}. Expected columns: "
            f"{', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
        )
    text = frame.copy()
    text.columns = columns
    text = text.astype(object).where(text.notna(), "").astype(str)
    text = restore_spreadsheet_text(text).apply(lambda c: c.str.strip())
    if text.empty:
        raise RatingsError(f"ratings file {source!r} holds a header but no ratings")

    known = set(known_scenarios) if known_scenarios is not None else None
    problems: list[str] = []
    rows = []
    for number, row in enumerate(text.to_dict("records"), start=1):
        scenario = row["scenario_id"]
        where = f"row {number}" + (f" (scenario {scenario})" if scenario else "")
        if not row["rater"]:
            problems.append(f"{where}: rater is empty")
        if not scenario:
            problems.append(f"{where}: scenario_id is empty")
        elif known is not None and scenario not in known:
            problems.append(f"{where}: unknown scenario id {scenario!r} (not in the study key)")
        row_study = row.get("study_id", "")
        if study_id is not None and row_study and row_study != study_id:
            problems.append(f"{where}: study_id {row_study!r} is not this study ({study_id!r})")
        if "consent" in row and row["consent"].lower() != CONSENT_GIVEN:
            problems.append(
                f"{where}: consent = {row['consent']!r}; only ratings whose rater consented "
                f"({CONSENT_GIVEN!r}) can be used: ask the rater, or leave the file out"
            )
        typed = {
            "study_id": row_study or study_id or "",
            "rater": row["rater"],
            "scenario_id": scenario,
            **{column: row.get(column, "") for column in OPTIONAL_COLUMNS if column != "study_id"},
            "source": source,
            "row": number,
        }
        if "consent" in row:
            typed["consent"] = row["consent"].lower()
        for column in (*FEEDBACK_COLUMNS, *WORKFLOW_COLUMNS):
            if len(row.get(column, "")) > MAX_TEXT_CHARS:
                problems.append(
                    f"{where}: {column} is {len(row[column])} characters long; at most "
                    f"{MAX_TEXT_CHARS}"
                )
        for criterion in CRITERIA:
            value = row[criterion]
            rating = _rating(value)
            if not value:
                problems.append(
                    f"{where}: {criterion} is empty; every criterion needs a rating from "
                    f"{LIKERT_MIN} to {LIKERT_MAX}"
                )
            elif rating is None:
                problems.append(
                    f"{where}: {criterion} = {value!r} is not a whole number from "
                    f"{LIKERT_MIN} to {LIKERT_MAX}"
                )
            typed[criterion] = rating
        rows.append(typed)
    seen: dict[tuple[str, str], list[int]] = {}
    for typed in rows:
        if typed["rater"] and typed["scenario_id"]:
            seen.setdefault((typed["rater"], typed["scenario_id"]), []).append(typed["row"])
    for (rater, scenario), numbers in seen.items():
        if len(numbers) > 1:
            problems.append(
                f"rows {', '.join(map(str, numbers))}: rater {rater!r} rated scenario "
                f"{scenario} {len(numbers)} times"
            )
    if problems:
        raise _problems(source, problems)
    validated = pd.DataFrame(rows, columns=list(RATINGS_COLUMNS))
    for criterion in CRITERIA:
        validated[criterion] = validated[criterion].astype("Int64")
    validated["row"] = validated["row"].astype("Int64")
    return validated


RatingsSource = pd.DataFrame | str | Path | Callable[[], pd.DataFrame]


def _frame(source: RatingsSource, name: str) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, str | Path):
        return read_ratings_csv(source, name)
    try:
        return source()  # a partition's loader, as Kedro's PartitionedDataset gives
    except Exception as error:  # noqa: BLE001  (Kedro wraps the reader's error in its own)
        cause: BaseException = error
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, UnicodeDecodeError):
            raise _not_utf8(name, cause) from None
        raise


def _rater_key(frame: pd.DataFrame) -> pd.Series:
    """Who wrote each row: the page's browser token, else (files of earlier pages) the name."""
    tokens = frame["rater_token"].fillna("").astype(str)
    return tokens.where(tokens != "", "name:" + frame["rater"].astype(str))


def _latest_files(frames: list[pd.DataFrame]) -> tuple[list[pd.DataFrame], list[str]]:
    """Each rater's latest file only, for files the current page wrote (``rater_token``):
    a later download holds everything an earlier one did. Returns the frames kept and a
    line per file superseded. Rows without a token (earlier pages) are all kept here."""
    latest: dict[str, tuple[str, str, int]] = {}
    for index, frame in enumerate(frames):
        saved = str(frame["saved_at"].fillna("").max())
        for rater in _rater_key(frame).unique():
            candidate = (saved, str(frame["source"].iloc[0]), index)
            if rater not in latest or candidate > latest[rater]:
                latest[rater] = candidate
    kept, superseded = [], []
    for index, frame in enumerate(frames):
        keys = _rater_key(frame)
        keep = keys.str.startswith("name:") | keys.map(
            {rater: latest[rater][2] == index for rater in keys.unique()}
        )
        if not keep.all():
            newer = sorted({latest[r][1] for r in keys[~keep]})
            superseded.append(
                f"{frame['source'].iloc[0]!r} ({int((~keep).sum())} rows): superseded by the "
                f"same rater's later file {', '.join(map(repr, newer))}"
            )
        if keep.any():
            kept.append(frame[keep.to_numpy()])
    return kept, superseded


def _repeats_across_files(merged: pd.DataFrame) -> list[str]:
    """Files of earlier pages (no token) in which one rater rated a scenario twice."""
    repeats = merged[merged.duplicated(["rater", "scenario_id"], keep=False)]
    return [
        f"rater {rater!r} rated scenario {scenario} in "
        + " and ".join(f"{r.source!r} (row {r.row})" for r in group.itertuples(index=False))
        + f": the last, {group['source'].iloc[-1]!r}, is used"
        for (rater, scenario), group in repeats.groupby(["rater", "scenario_id"], sort=True)
    ]


def _unique_rater_names(merged: pd.DataFrame) -> pd.DataFrame:
    """Two raters (browsers) who typed the same name stay two raters: their names get the
    start of their token."""
    keys = _rater_key(merged)
    shared = merged.groupby("rater")["rater_token"].transform(
        lambda tokens: tokens.fillna("").nunique() > 1
    )
    named = merged.copy()
    named.loc[shared, "rater"] = (
        merged.loc[shared, "rater"] + " [" + keys[shared].str.slice(0, 6) + "]"
    )
    return named


def merge_ratings(
    files: Mapping[str, RatingsSource],
    known_scenarios: Collection[str] | None = None,
    study_id: str | None = None,
    problems: list[str] | None = None,
) -> pd.DataFrame:
    """Validate every file and merge the good ones.

    ``files`` maps a file name to a frame, a path or a loader (Kedro partitions). A file
    that fails its checks is left out, and named with every problem: in ``problems`` when
    a list is given (the others are merged), else in a :class:`RatingsError`. Raters are
    told apart by the page's ``rater_token`` (files of earlier pages: by name); a rater's
    latest file (``saved_at``) supersedes their earlier ones. Files of earlier pages may
    spread a rater over several files; a scenario rated in two of them is a problem (the
    last file's rating is kept). No files give an empty frame.
    """
    frames, failures = [], []
    for name in sorted(files):
        try:
            frames.append(
                validate_ratings(_frame(files[name], name), name, known_scenarios, study_id)
            )
        except RatingsError as error:
            failures.append(str(error))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
            failures.append(f"ratings file {name!r} is not a readable CSV: {error}")
    frames, superseded = _latest_files(frames)
    merged = pd.concat(frames, ignore_index=True) if frames else empty_ratings()
    repeats = _repeats_across_files(merged)
    if problems is None and (failures or repeats):
        raise RatingsError("\n".join([*failures, *repeats]))
    if problems is not None:
        problems.extend([*failures, *superseded, *repeats])
    merged = merged.drop_duplicates(["rater", "scenario_id"], keep="last")
    return _unique_rater_names(merged.reset_index(drop=True)) if len(merged) else merged


def scenario_scores(ratings: pd.DataFrame) -> pd.DataFrame:
    """Mean rating of each scenario over its raters: ``human_<criterion>``, ``human_mean``.

    Also ``n_raters`` and ``n_comments`` (raters who wrote any feedback on it) per scenario.
    """
    columns = [
        "scenario_id",
        "n_raters",
        *(f"human_{c}" for c in CRITERIA),
        "human_mean",
        "n_comments",
    ]
    if ratings.empty:
        return pd.DataFrame(columns=columns)
    data = ratings.copy()
    for criterion in CRITERIA:
        data[criterion] = data[criterion].astype(float)
    data["mean"] = data[list(CRITERIA)].mean(axis=1)
    written = [c for c in FEEDBACK_COLUMNS if c in data.columns]
    data["has_comment"] = (
        data[written].fillna("").astype(str).apply(lambda c: c.str.strip() != "").any(axis=1)
        if written
        else False
    )
    grouped = data.groupby("scenario_id", sort=True)
    scores = grouped[[*CRITERIA, "mean"]].mean().add_prefix("human_")
    scores["n_raters"] = grouped["rater"].nunique()
    scores["n_comments"] = grouped["has_comment"].sum().astype(int)
    return scores.reset_index()[columns]
