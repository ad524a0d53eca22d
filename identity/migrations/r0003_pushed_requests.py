"""Pushed authorization requests (RFC 9126), required per ecosystem or client;
client_secret_jwt's sealed secret; the login session id (``sid``) on codes and refresh
tokens, for the ID tokens issued from them; the ticket of the authorization request a
sign-in was made for (prompt=login, max_age).

Expand-safe: one new table, nullable columns and columns with server defaults, so the
previous release keeps inserting rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 18:03:45.634609
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
        "id_pushed_requests",
        sa.Column("uri_hash", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=120), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("uri_hash"),
    )
    with op.batch_alter_table("id_pushed_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_id_pushed_requests_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("id_auth_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sid", sa.String(length=64), nullable=True))

    with op.batch_alter_table("id_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "require_pushed_authorization_requests",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("secret_enc", sa.Text(), nullable=True))

    with op.batch_alter_table("id_ecosystems", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "require_pushed_authorization_requests",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
            )
        )

    with op.batch_alter_table("id_refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sid", sa.String(length=64), nullable=True))

    with op.batch_alter_table("id_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fresh_for", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("id_sessions", schema=None) as batch_op:
        batch_op.drop_column("fresh_for")

    with op.batch_alter_table("id_refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("sid")

    with op.batch_alter_table("id_ecosystems", schema=None) as batch_op:
        batch_op.drop_column("require_pushed_authorization_requests")

    with op.batch_alter_table("id_clients", schema=None) as batch_op:
        batch_op.drop_column("secret_enc")
        batch_op.drop_column("require_pushed_authorization_requests")

    with op.batch_alter_table("id_auth_codes", schema=None) as batch_op:
        batch_op.drop_column("sid")

    with op.batch_alter_table("id_pushed_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_pushed_requests_expires_at"))

    op.drop_table("id_pushed_requests")
