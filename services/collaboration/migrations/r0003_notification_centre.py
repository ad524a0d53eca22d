"""Notification centre: what happened (action), and the kinds people turn off.

Expand-safe: ``action`` is NOT NULL with a server default ("mentioned", what every
existing row is), so the previous release's INSERTs still work; the mutes table is new.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 18:02:50.477337
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
        "notification_mutes",
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("person", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("eco", "person", "kind"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("action", sa.String(length=16), server_default="mentioned", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("action")

    op.drop_table("notification_mutes")
