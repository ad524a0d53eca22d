"""Passkeys (WebAuthn): people's credentials, their opaque user handles, the ceremonies'
single-use challenges; the authentication methods (``amr``) of a login session.

Expand-safe: new tables and a nullable column, so the previous release keeps inserting
sessions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "id_passkey_challenges",
        sa.Column("challenge_hash", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("challenge_hash"),
    )
    with op.batch_alter_table("id_passkey_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_id_passkey_challenges_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "id_passkey_users",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
        sa.UniqueConstraint("handle"),
    )
    op.create_table(
        "id_passkeys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("credential_hash", sa.String(length=64), nullable=False),
        sa.Column("credential_id", sa.Text(), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("transports", sa.JSON(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backed_up", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cloned_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("credential_hash"),
    )
    with op.batch_alter_table("id_passkeys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_passkeys_person_id"), ["person_id"], unique=False)

    with op.batch_alter_table("id_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amr", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("id_sessions", schema=None) as batch_op:
        batch_op.drop_column("amr")

    with op.batch_alter_table("id_passkeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_passkeys_person_id"))

    op.drop_table("id_passkeys")
    op.drop_table("id_passkey_users")
    with op.batch_alter_table("id_passkey_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_passkey_challenges_expires_at"))

    op.drop_table("id_passkey_challenges")
