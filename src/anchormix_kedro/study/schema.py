"""The study database's tables, as SQLAlchemy Core sees them; the migrations that create
them are in ``migrations/versions/`` (one schema for SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from anchormix_kedro.vocabulary import CRITERIA

metadata = sa.MetaData()

studies = sa.Table(
    "studies",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("study_id", sa.String(200), nullable=False),
    sa.Column("n_scenarios", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
raters = sa.Table(
    "raters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_version", sa.String(64), sa.ForeignKey("studies.version"), nullable=False),
    sa.Column("label", sa.String(40), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("invited_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("consented_at", sa.DateTime(timezone=True)),
    sa.Column("withdrawn_at", sa.DateTime(timezone=True)),
    sa.Column("background", sa.Text),  # JSON: BACKGROUND_FIELDS
    sa.Column("background_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("study_version", "label", name="uq_rater_label"),
)
answers = sa.Table(
    "answers",
    metadata,
    sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id"), primary_key=True),
    sa.Column("item", sa.String(64), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    *(sa.Column(c, sa.SmallInteger) for c in CRITERIA),
    sa.Column("texts", sa.Text, nullable=False),  # JSON: SCENARIO_TEXTS or WORKFLOW_TEXTS
    sa.Column("save_id", sa.String(64), nullable=False),
    sa.Column("first_saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
)
answer_revisions = sa.Table(
    "answer_revisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id"), nullable=False),
    sa.Column("item", sa.String(64), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("answer", sa.Text, nullable=False),  # JSON: ratings and texts
    sa.Column("save_id", sa.String(64), nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("rater_id", "item", "revision", name="uq_answer_revision"),
)
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id")),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("item", sa.String(64)),
    sa.Column("detail", sa.Text),  # JSON
)
assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("item", sa.String(80), nullable=False),
    sa.Column("scenario_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # scenario, catch or repeat
    sa.UniqueConstraint("rater_id", "item", name="uq_assignment_item"),
)
organiser_tokens = sa.Table(
    "organiser_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
