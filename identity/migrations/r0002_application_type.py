"""Clients say whether they are web or native apps (OpenID Connect application_type).

A native app's loopback redirect may name any port (RFC 8252 §7.3). Expand-safe:
every existing client, and any the previous release registers, is a web client by the
server default, so nothing changes for them.

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
    with op.batch_alter_table("id_clients") as batch:
        batch.add_column(
            sa.Column("application_type", sa.String(length=8), nullable=False, server_default="web")
        )


def downgrade() -> None:
    with op.batch_alter_table("id_clients") as batch:
        batch.drop_column("application_type")
