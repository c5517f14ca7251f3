"""Each rater's list of items, drawn by the study's design when they are invited.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("rater_id", sa.Integer, sa.ForeignKey("raters.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("item", sa.String(80), nullable=False),
        sa.Column("scenario_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.UniqueConstraint("rater_id", "item", name="uq_assignment_item"),
    )
