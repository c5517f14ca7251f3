"""The study's first schema: studies, raters, answers and their revisions, events,
organiser tokens.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

CRITERIA = ("effectiveness", "musicality", "actionability", "helpfulness")


def _stamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("study_id", sa.String(200), nullable=False),
        sa.Column("n_scenarios", sa.Integer, nullable=False),
        _stamp("created_at"),
    )
    op.create_table(
        "raters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("study_version", sa.String(64), sa.ForeignKey("studies.version"), nullable=False),
        sa.Column("label", sa.String(40), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _stamp("invited_at"),
        _stamp("consented_at", True),
        _stamp("withdrawn_at", True),
        sa.Column("background", sa.Text),
        _stamp("background_at", True),
        sa.UniqueConstraint("study_version", "label", name="uq_rater_label"),
    )
    op.create_table(
        "answers",
        sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id"), primary_key=True),
        sa.Column("item", sa.String(64), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        *(sa.Column(c, sa.SmallInteger) for c in CRITERIA),
        sa.Column("texts", sa.Text, nullable=False),
        sa.Column("save_id", sa.String(64), nullable=False),
        _stamp("first_saved_at"),
        _stamp("saved_at"),
    )
    op.create_table(
        "answer_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id"), nullable=False),
        sa.Column("item", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("save_id", sa.String(64), nullable=False),
        _stamp("saved_at"),
        sa.UniqueConstraint("rater_id", "item", "revision", name="uq_answer_revision"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id")),
        _stamp("at"),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("item", sa.String(64)),
        sa.Column("detail", sa.Text),
    )
    op.create_index("ix_events_rater", "events", ["rater_id"])
    op.create_table(
        "organiser_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _stamp("created_at"),
    )
