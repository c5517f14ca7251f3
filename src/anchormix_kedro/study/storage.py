"""The study's database: raters, their answers with every revision, events, organisers.

One schema, through SQLAlchemy Core and Alembic migrations (``migrations/``), so a SQLite
file (the embedded default, WAL mode) and a PostgreSQL server by URL run the same code.

- A **rater** is invited with a random token; only its SHA-256 is stored, so the
  database alone cannot recreate a link. The link is the rater's identity on any device.
- An **answer** is one item of one rater: a scenario (four ratings and written feedback)
  or the rater's workflow answers (``WORKFLOW_ITEM``). Each save names the revision it
  was based on; a save based on an older revision is refused as a conflict and answered
  with the stored one, so a second tab or device never silently overwrites newer work. A
  save repeated with the same ``save_id`` (a retry whose reply was lost) is acknowledged
  again, not applied twice. Every revision is also appended to ``answer_revisions``.
- **Events** (consent, withdrawal, background, conflicts, playback) are appended, never
  changed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from anchormix_kedro.study.schema import (
    answer_revisions,
    answers,
    assignments,
    events,
    organiser_tokens,
    raters,
    studies,
)
from anchormix_kedro.vocabulary import CRITERIA, LIKERT_MAX, LIKERT_MIN, MAX_TEXT_CHARS

#: The item holding a rater's answers about their workflow (not a scenario id).
WORKFLOW_ITEM = "workflow"
SCENARIO_TEXTS: tuple[str, ...] = ("strengths", "weaknesses", "suggestions")
WORKFLOW_TEXTS: tuple[str, ...] = ("workflow_fit", "workflow_change")
BACKGROUND_FIELDS: tuple[str, ...] = ("role", "experience_years", "listening_setup", "genres")
TOKEN_BYTES = 24


class AnswerError(ValueError):
    """An answer that cannot be stored as it is; the message names the field and value."""


def now() -> datetime:
    return datetime.now(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """An unguessable token for a link (192 random bits, URL-safe)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling is off: the "begin" listener starts each
    # transaction with BEGIN IMMEDIATE, so concurrent savers queue instead of failing.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "synchronous=FULL",  # an acknowledged save is on disk, not only in the OS cache
        "busy_timeout=15000",
        "foreign_keys=ON",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for a SQLite file or a PostgreSQL server (``postgresql+psycopg://...``).

    A SQLite file's folder is created; SQLite runs in WAL mode with full syncs.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Connections are kept (none opened per request): a new one waits for SQLite's locks.
        engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=32, max_overflow=8)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        # WAL is a property of the file, set once (outside any transaction); asking on every
        # connection takes a lock.
        raw = engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA journal_mode=WAL")
        finally:
            raw.close()
        return engine
    return sa.create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to the newest schema (Alembic's ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@dataclass(frozen=True)
class Rater:
    id: int
    study_version: str
    label: str
    consented: bool
    withdrawn: bool
    background: dict | None


@dataclass(frozen=True)
class Answer:
    item: str
    revision: int
    ratings: dict[str, int | None]
    texts: dict[str, str]
    saved_at: datetime | None = None

    def as_json(self) -> dict:
        return {"item": self.item, "revision": self.revision, "ratings": self.ratings,
                "texts": self.texts}  # fmt: skip


@dataclass(frozen=True)
class SaveResult:
    """``status``: ``saved``, ``replayed`` (the same save again) or ``conflict``."""

    status: str
    answer: Answer = field(repr=False)


def _empty_answer(item: str) -> Answer:
    texts = WORKFLOW_TEXTS if item == WORKFLOW_ITEM else SCENARIO_TEXTS
    return Answer(item, 0, {c: None for c in CRITERIA} if item != WORKFLOW_ITEM else {},
                  {t: "" for t in texts})  # fmt: skip


def _answer(row) -> Answer:
    ratings = {} if row.item == WORKFLOW_ITEM else {c: getattr(row, c) for c in CRITERIA}
    return Answer(row.item, row.revision, ratings, json.loads(row.texts), row.saved_at)


def check_answer(item: str, ratings: Mapping, texts: Mapping) -> tuple[dict, dict]:
    """``(ratings, texts)`` as stored, or :class:`AnswerError` naming what is wrong."""
    allowed_texts = WORKFLOW_TEXTS if item == WORKFLOW_ITEM else SCENARIO_TEXTS
    if item == WORKFLOW_ITEM and ratings:
        raise AnswerError("the workflow answers hold no ratings")
    unknown = sorted(set(ratings) - set(CRITERIA)) + sorted(set(texts) - set(allowed_texts))
    if unknown:
        raise AnswerError(f"unknown fields {unknown}")
    checked: dict[str, int | None] = {}
    if item != WORKFLOW_ITEM:
        for criterion in CRITERIA:
            value = ratings.get(criterion)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not LIKERT_MIN <= value <= LIKERT_MAX
            ):
                raise AnswerError(
                    f"{criterion} = {value!r} is not a whole number from {LIKERT_MIN} to "
                    f"{LIKERT_MAX}"
                )
            checked[criterion] = value
    written: dict[str, str] = {}
    for name in allowed_texts:
        value = texts.get(name, "")
        if not isinstance(value, str):
            raise AnswerError(f"{name} must be text")
        if len(value) > MAX_TEXT_CHARS:
            raise AnswerError(f"{name} is {len(value)} characters long; at most {MAX_TEXT_CHARS}")
        written[name] = value
    return checked, written


class StudyStore:
    """Reads and writes one database (any number of studies, each by its version)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        # SQLite has one writer at a time; its busy handler makes a waiting writer sleep in
        # growing steps (up to 100 ms), so under load a few saves waited for seconds. In one
        # process, writers queue on a lock instead and each goes as soon as the last is done.
        self._writer = threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()

    @contextmanager
    def _write(self):
        """A write transaction (one at a time on SQLite)."""
        with self._writer, self.engine.begin() as conn:
            yield conn

    @classmethod
    def open(cls, url: str, upgrade: bool = True) -> StudyStore:
        engine = make_engine(url)
        if upgrade:
            upgrade_schema(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- studies and raters

    def register_study(self, version: str, study_id: str, n_scenarios: int) -> None:
        """Record a built study (once; later calls change nothing)."""
        with self._write() as conn:
            found = conn.execute(sa.select(studies.c.version).where(studies.c.version == version))
            if found.first() is None:
                conn.execute(studies.insert().values(version=version, study_id=study_id,
                             n_scenarios=int(n_scenarios), created_at=now()))  # fmt: skip

    def invite(self, version: str, n: int, design=None) -> list[tuple[str, str]]:
        """``n`` new raters of study ``version``: ``[(label, token), ...]``; only the
        tokens' hashes are stored, so these are the only copies of the tokens.

        ``design(rater_index, counts)`` draws each rater's list (``Slot`` s with
        ``position``, ``item``, ``scenario_id``, ``kind``), ``counts`` being how often each
        scenario was assigned before; None: every rater rates every scenario.
        """
        if n < 1:
            raise ValueError(f"--n must be at least 1, got {n}")
        invited = []
        with self._write() as conn:
            count = conn.execute(
                sa.select(sa.func.count()).select_from(raters)
                .where(raters.c.study_version == version)
            ).scalar_one()  # fmt: skip
            counts = self._assigned_counts(conn, version)
            for number in range(count + 1, count + n + 1):
                label, token = f"rater-{number:03d}", new_token()
                rater_id = conn.execute(raters.insert().values(
                    study_version=version, label=label, token_hash=token_hash(token),
                    invited_at=now())).inserted_primary_key[0]  # fmt: skip
                for slot in design(number - 1, counts) if design is not None else ():
                    conn.execute(assignments.insert().values(
                        rater_id=rater_id, position=slot.position, item=slot.item,
                        scenario_id=slot.scenario_id, kind=slot.kind))  # fmt: skip
                    if slot.kind != "repeat":
                        counts[slot.scenario_id] = counts.get(slot.scenario_id, 0) + 1
                invited.append((label, token))
        return invited

    @staticmethod
    def _assigned_counts(conn, version: str) -> dict[str, int]:
        rows = conn.execute(
            sa.select(assignments.c.scenario_id, sa.func.count())
            .join(raters, raters.c.id == assignments.c.rater_id)
            .where(raters.c.study_version == version, assignments.c.kind != "repeat")
            .group_by(assignments.c.scenario_id)
        )  # fmt: skip
        return {scenario: int(n) for scenario, n in rows}

    def assignment_of(self, rater_id: int) -> list:
        """The rater's list in order (rows with ``position``, ``item``, ``scenario_id``,
        ``kind``); empty for a rater who rates every scenario."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(assignments).where(
                assignments.c.rater_id == rater_id).order_by(assignments.c.position)))  # fmt: skip

    def versions_with_raters(self) -> list[str]:
        """The studies raters were invited to, the most recently invited to last."""
        latest = sa.func.max(raters.c.invited_at)
        query = sa.select(raters.c.study_version).group_by(raters.c.study_version).order_by(latest)
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def rater_by_token(self, token: str) -> Rater | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(raters).where(raters.c.token_hash == token_hash(token))
            ).first()
        if row is None:
            return None
        return Rater(row.id, row.study_version, row.label, row.consented_at is not None,
                     row.withdrawn_at is not None,
                     json.loads(row.background) if row.background else None)  # fmt: skip

    def new_organiser_token(self) -> str:
        token = new_token()
        with self._write() as conn:
            conn.execute(organiser_tokens.insert().values(token_hash=token_hash(token),
                         created_at=now()))  # fmt: skip
        return token

    def is_organiser(self, token: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(organiser_tokens.c.token_hash).where(
                organiser_tokens.c.token_hash == token_hash(token))).first()  # fmt: skip
        return found is not None

    def _set_rater(self, rater_id: int, kind: str, detail: dict | None = None, **values) -> None:
        with self._write() as conn:
            conn.execute(raters.update().where(raters.c.id == rater_id).values(**values))
            conn.execute(events.insert().values(rater_id=rater_id, at=now(), kind=kind,
                         detail=json.dumps(detail) if detail else None))  # fmt: skip

    def consent(self, rater_id: int) -> None:
        self._set_rater(rater_id, "consent", consented_at=now(), withdrawn_at=None)

    def withdraw(self, rater_id: int) -> None:
        """The rater leaves the study: kept, marked withdrawn, left out of every export
        of ratings and of the analysis."""
        self._set_rater(rater_id, "withdraw", withdrawn_at=now())

    def set_background(self, rater_id: int, background: Mapping[str, str]) -> None:
        answers_ = {k: str(background.get(k, ""))[:MAX_TEXT_CHARS] for k in BACKGROUND_FIELDS}
        self._set_rater(rater_id, "background", answers_, background=json.dumps(answers_),
                        background_at=now())  # fmt: skip

    def log_event(self, rater_id: int | None, kind: str, item: str | None = None,
                  detail: Mapping | None = None) -> None:  # fmt: skip
        with self._write() as conn:
            conn.execute(events.insert().values(rater_id=rater_id, at=now(), kind=kind[:40],
                         item=item, detail=json.dumps(dict(detail)) if detail else None))  # fmt: skip

    def has_event(self, rater_id: int, kind: str) -> bool:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(events.c.id).where(
                events.c.rater_id == rater_id, events.c.kind == kind).limit(1)).first()  # fmt: skip
        return found is not None

    def log_events(self, rater_id: int, rows: list[tuple[str, str | None, Mapping]]) -> None:
        """Several ``(kind, item, detail)`` events of one rater, in one transaction."""
        stamp = now()
        with self._write() as conn:
            for kind, item, detail in rows:
                conn.execute(events.insert().values(rater_id=rater_id, at=stamp, kind=kind[:40],
                             item=item, detail=json.dumps(dict(detail))))  # fmt: skip

    # ------------------------------------------------------------------------- answers

    def answers_of(self, rater_id: int) -> dict[str, Answer]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(answers).where(answers.c.rater_id == rater_id))
            return {row.item: _answer(row) for row in rows}

    def save_answer(
        self,
        rater_id: int,
        item: str,
        base_revision: int,
        ratings: Mapping,
        texts: Mapping,
        save_id: str,
    ) -> SaveResult:
        """Store a rater's answer on ``item`` if nobody saved it since ``base_revision``.

        Raises :class:`AnswerError` for a value that cannot be stored.
        """
        checked, written = check_answer(item, ratings, texts)
        if not save_id or len(save_id) > 64:
            raise AnswerError("save_id must be 1 to 64 characters")
        key = (answers.c.rater_id == rater_id) & (answers.c.item == item)
        try:
            return self._save(rater_id, item, base_revision, checked, written, save_id, key)
        except sa.exc.IntegrityError:
            # Two first saves of one item at once (a server without SQLite's write lock):
            # the one that lost sees the other's answer, as any late save does.
            return self._save(rater_id, item, base_revision, checked, written, save_id, key)

    def _save(self, rater_id, item, base_revision, checked, written, save_id, key) -> SaveResult:
        stamp = now()
        values = {**checked, "texts": json.dumps(written, ensure_ascii=False),
                  "save_id": save_id, "saved_at": stamp}  # fmt: skip
        with self._write() as conn:
            row = conn.execute(sa.select(answers).where(key).with_for_update()).first()
            if row is not None and row.save_id == save_id:
                return SaveResult("replayed", _answer(row))
            stored = row.revision if row is not None else 0
            if base_revision != stored:
                conn.execute(events.insert().values(rater_id=rater_id, at=stamp, kind="conflict",
                             item=item, detail=json.dumps({"base": base_revision,
                                                           "stored": stored})))  # fmt: skip
                return SaveResult("conflict", _answer(row) if row else _empty_answer(item))
            revision = stored + 1
            if row is None:
                conn.execute(answers.insert().values(rater_id=rater_id, item=item,
                             revision=revision, first_saved_at=stamp, **values))  # fmt: skip
            else:
                conn.execute(answers.update().where(key).values(revision=revision, **values))
            conn.execute(answer_revisions.insert().values(
                rater_id=rater_id, item=item, revision=revision, save_id=save_id, saved_at=stamp,
                answer=json.dumps({"ratings": checked, "texts": written}, ensure_ascii=False)))  # fmt: skip
        return SaveResult("saved", Answer(item, revision, checked, written, stamp))
