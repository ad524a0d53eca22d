"""People's say in matching: opt out of being suggested, and of being learned from.

A new table; no row means the defaults (suggested, learned from), so replicas of the
previous release, which never read it, behave as before.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "preferences",
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("suggest_me", sa.Boolean(), nullable=False),
        sa.Column("learn_from_me", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "person"),
    )


def downgrade() -> None:
    op.drop_table("preferences")
