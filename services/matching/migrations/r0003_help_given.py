"""Help given (posts in threads) kept in the database, so the prior survives a restart.

A new table, empty at first: help given before this revision was kept in memory
only and is not recovered (a replay of the event history, ``rebuild --replay``,
re-derives it).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "help_given",
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("content", sa.String(length=200), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "content"),
    )
    op.create_index("ix_help_eco_person", "help_given", ["eco", "person"])


def downgrade() -> None:
    op.drop_index("ix_help_eco_person", table_name="help_given")
    op.drop_table("help_given")
