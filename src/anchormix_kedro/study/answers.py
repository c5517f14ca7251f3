"""The study database read as tables: for the organiser (progress, the tidy export) and
for the analysis (the ratings in the form the page's CSV files have).

Raters who withdrew are left out of every table of answers, and so are raters who never
consented; their rows stay in the database.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from anchormix_kedro.study.kit.page_csv import CONSENT_GIVEN, spreadsheet_safe
from anchormix_kedro.study.ratings import RATINGS_COLUMNS, empty_ratings
from anchormix_kedro.study.schema import answers, assignments, events, raters, studies
from anchormix_kedro.study.storage import (
    BACKGROUND_FIELDS,
    SCENARIO_TEXTS,
    WORKFLOW_ITEM,
    WORKFLOW_TEXTS,
    StudyStore,
)
from anchormix_kedro.vocabulary import CRITERIA

LONG_COLUMNS: tuple[str, ...] = ("study_version", "study_id", "rater", "scenario_id",
                                 "criterion", "rating", "revision", "saved_at")  # fmt: skip
COMMENT_COLUMNS: tuple[str, ...] = ("study_version", "rater", "item", "field", "text", "saved_at")
RATER_TABLE_COLUMNS: tuple[str, ...] = ("study_version", "rater", "invited_at", "consented_at",
                                        "withdrawn_at", *BACKGROUND_FIELDS)  # fmt: skip
EVENT_COLUMNS: tuple[str, ...] = ("study_version", "rater", "at", "kind", "item", "detail")
PROGRESS_COLUMNS: tuple[str, ...] = ("rater", "state", "rated", "partly", "of", "first_saved",
                                     "last_saved", "minutes")  # fmt: skip


def _json(value) -> dict:
    """A JSON column's value (missing: empty), as pandas hands it over (None or NaN)."""
    return json.loads(value) if isinstance(value, str) and value else {}


def query_frame(store: StudyStore, query) -> pd.DataFrame:
    """The rows of a query as a frame."""
    with store.engine.connect() as conn:
        result = conn.execute(query)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _answers(store: StudyStore, version: str | None, active_only: bool) -> pd.DataFrame:
    query = (
        sa.select(
            answers,
            raters.c.label.label("rater"),
            raters.c.study_version,
            raters.c.background,
            studies.c.study_id,
        )  # fmt: skip
        .join(raters, raters.c.id == answers.c.rater_id)
        .join(studies, studies.c.version == raters.c.study_version)
        .order_by(raters.c.label, answers.c.item)
    )
    if version is not None:
        query = query.where(raters.c.study_version == version)
    if active_only:
        query = query.where(raters.c.withdrawn_at.is_(None), raters.c.consented_at.isnot(None))
    return query_frame(store, query)


def ratings_long(store: StudyStore, version: str | None = None) -> pd.DataFrame:
    """One row per rater x scenario x criterion rated (tidy form)."""
    data = _answers(store, version, active_only=True)
    data = data[data["item"] != WORKFLOW_ITEM] if not data.empty else data
    if data.empty:
        return pd.DataFrame(columns=list(LONG_COLUMNS))
    long = data.melt(
        id_vars=["study_version", "study_id", "rater", "item", "revision", "saved_at"],
        value_vars=list(CRITERIA), var_name="criterion", value_name="rating",
    ).dropna(subset=["rating"])  # fmt: skip
    long = long.rename(columns={"item": "scenario_id"})
    long["rating"] = long["rating"].astype(int)
    return long.sort_values(["rater", "scenario_id", "criterion"])[list(LONG_COLUMNS)]


def comments(store: StudyStore, version: str | None = None) -> pd.DataFrame:
    """Every non-empty text: written feedback per scenario and the workflow answers."""
    data = _answers(store, version, active_only=True)
    rows = [
        {
            "study_version": row.study_version,
            "rater": row.rater,
            "item": row.item,
            "field": name,
            "text": text,
            "saved_at": row.saved_at,
        }  # fmt: skip
        for row in data.itertuples(index=False)
        for name, text in json.loads(row.texts).items()
        if text.strip()
    ]
    return pd.DataFrame(rows, columns=list(COMMENT_COLUMNS))


def rater_table(store: StudyStore, version: str | None = None) -> pd.DataFrame:
    """Every invited rater: when invited, consented or withdrawn, and their background."""
    query = sa.select(raters).order_by(raters.c.label)
    if version is not None:
        query = query.where(raters.c.study_version == version)
    data = query_frame(store, query)
    rows = []
    for row in data.itertuples(index=False):
        background = _json(row.background)
        rows.append({"study_version": row.study_version, "rater": row.label,
                     "invited_at": row.invited_at, "consented_at": row.consented_at,
                     "withdrawn_at": row.withdrawn_at,
                     **{f: background.get(f, "") for f in BACKGROUND_FIELDS}})  # fmt: skip
    return pd.DataFrame(rows, columns=list(RATER_TABLE_COLUMNS))


def event_table(store: StudyStore, version: str | None = None) -> pd.DataFrame:
    query = (
        sa.select(events, raters.c.label.label("rater"), raters.c.study_version)
        .join(raters, raters.c.id == events.c.rater_id)
        .order_by(events.c.id)
    )
    if version is not None:
        query = query.where(raters.c.study_version == version)
    data = query_frame(store, query)
    if data.empty:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    return data[list(EVENT_COLUMNS)]


def ratings_for_analysis(store: StudyStore | None, version: str | None = None) -> pd.DataFrame:
    """Fully rated scenarios in the columns of :data:`RATINGS_COLUMNS` (and
    ``study_version``), as if each rater had sent the page's CSV file (``store`` None:
    no database yet, no rows)."""
    data = _answers(store, version, active_only=True) if store is not None else pd.DataFrame()
    if data.empty:
        return empty_ratings().assign(study_version=pd.Series(dtype=str))
    workflow = {
        (row.study_version, row.rater): json.loads(row.texts)
        for row in data[data["item"] == WORKFLOW_ITEM].itertuples(index=False)
    }
    scenarios = data[data["item"] != WORKFLOW_ITEM].dropna(subset=list(CRITERIA))
    rows = []
    for row in scenarios.itertuples(index=False):
        background = _json(row.background)
        texts = json.loads(row.texts)
        written = workflow.get((row.study_version, row.rater), {})
        rows.append({
            "study_id": row.study_id, "rater": row.rater, "rater_token": "",
            "saved_at": str(row.saved_at), "rater_role": background.get("role", ""),
            "rater_experience": background.get("experience_years", ""),
            "consent": CONSENT_GIVEN, "scenario_id": row.item,
            **{c: int(getattr(row, c)) for c in CRITERIA},
            **{t: texts.get(t, "") for t in SCENARIO_TEXTS}, "comment": "",
            **{t: written.get(t, "") for t in WORKFLOW_TEXTS},
            "source": "study database", "row": None, "study_version": row.study_version,
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=[*RATINGS_COLUMNS, "study_version"])
    for criterion in CRITERIA:
        frame[criterion] = frame[criterion].astype("Int64")
    frame["row"] = frame["row"].astype("Int64")
    return frame


def progress(store: StudyStore, version: str, n_scenarios: int) -> pd.DataFrame:
    """Per rater: state, items fully and partly rated (of ``n_scenarios``, or of their own
    list when the design gave them one), first and last save, minutes."""
    people = query_frame(store, sa.select(raters).where(raters.c.study_version == version)
                    .order_by(raters.c.label))  # fmt: skip
    data = _answers(store, version, active_only=False)
    listed = query_frame(store, sa.select(assignments.c.rater_id, sa.func.count().label("n"))
                    .group_by(assignments.c.rater_id))  # fmt: skip
    list_length = dict(zip(listed["rater_id"], listed["n"], strict=True)) if len(listed) else {}
    rows = []
    for person in people.itertuples(index=False):
        mine = data[(data["rater"] == person.label) & (data["item"] != WORKFLOW_ITEM)] if len(
            data) else data  # fmt: skip
        rated = int(mine[list(CRITERIA)].notna().all(axis=1).sum()) if len(mine) else 0
        state = ("withdrawn" if pd.notna(person.withdrawn_at) else "rating" if len(mine)
                 else "background" if pd.notna(person.background_at) else "consented"
                 if pd.notna(person.consented_at) else "invited")  # fmt: skip
        first = mine["first_saved_at"].min() if len(mine) else None
        last = mine["saved_at"].max() if len(mine) else None
        minutes = (last - first).total_seconds() / 60 if first is not None else 0.0
        rows.append({"rater": person.label, "state": state, "rated": rated,
                     "partly": len(mine) - rated,
                     "of": int(list_length.get(person.id, n_scenarios)), "first_saved": first,
                     "last_saved": last, "minutes": round(minutes, 1)})  # fmt: skip
    return pd.DataFrame(rows, columns=list(PROGRESS_COLUMNS))


DESIGN_COLUMNS: tuple[str, ...] = ("study_version", "rater", "position", "item", "scenario_id",
                                   "system", "kind")  # fmt: skip


def design_table(store: StudyStore, version: str, key: pd.DataFrame) -> pd.DataFrame:
    """Who saw what, in which place: one row per rater x place, with the system from the
    key (``catch`` for catch trials; a repeat names the system of the scenario it repeats)."""
    query = (
        sa.select(assignments, raters.c.label.label("rater"), raters.c.study_version)
        .join(raters, raters.c.id == assignments.c.rater_id)
        .where(raters.c.study_version == version)
        .order_by(raters.c.label, assignments.c.position)
    )
    data = query_frame(store, query)
    if data.empty:
        return pd.DataFrame(columns=list(DESIGN_COLUMNS))
    system = dict(zip(key["scenario_id"].astype(str), key["system"].astype(str), strict=True))
    data["system"] = data["scenario_id"].map(system)
    return data[list(DESIGN_COLUMNS)]


def export_tables(store: StudyStore, study, output: Path) -> list[Path]:
    """Write the tidy ratings of ``study`` (a built study) to ``output`` and beside it the
    comments, raters, events and design (``<stem>_comments.csv``, ``_raters``, ``_events``,
    ``_design``), text quoted and safe in a spreadsheet (a cell that would run as a formula
    starts with an apostrophe). Refuses to overwrite any of them."""
    output = Path(output)
    version = study.version
    tables = {
        output: ratings_long(store, version),
        output.with_name(f"{output.stem}_comments.csv"): comments(store, version),
        output.with_name(f"{output.stem}_raters.csv"): rater_table(store, version),
        output.with_name(f"{output.stem}_events.csv"): event_table(store, version),
        output.with_name(f"{output.stem}_design.csv"): design_table(store, version, study.key),
    }
    existing = [str(path) for path in tables if path.exists()]
    if existing:
        raise FileExistsError(
            f"{', '.join(existing)} exist already: choose another --output (nothing was written)"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    for path, table in tables.items():
        # People's text opens in a spreadsheet as text, never as a formula (page_csv).
        spreadsheet_safe(table).to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)
    return list(tables)
