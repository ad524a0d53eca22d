"""Dashboards: a visibility (private, company or ecosystem), backfilled from ``shared``

Expand-safe: the column has a server default, so the previous release's INSERTs (which
know only ``shared``) still work; this release keeps writing ``shared`` as well.

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
    with op.batch_alter_table("portal_dashboards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("visibility", sa.String(length=16), server_default="private", nullable=False)
        )
        batch_op.create_index(
            "ix_portal_dashboards_visibility", ["eco", "visibility"], unique=False
        )
    dashboards = sa.table("portal_dashboards", sa.column("shared"), sa.column("visibility"))
    op.execute(
        dashboards.update().where(dashboards.c.shared.is_(True)).values(visibility="company")
    )


def downgrade() -> None:
    with op.batch_alter_table("portal_dashboards", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_dashboards_visibility")
        batch_op.drop_column("visibility")
