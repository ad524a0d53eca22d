"""Second factor: authenticator apps (TOTP), recovery codes, the policy per ecosystem and
partner, and the authentication methods (amr) of codes and refresh tokens (sessions': 0006)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "id_totp_factors",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_table(
        "id_recovery_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("id_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_id_recovery_codes_person_id"), ["person_id"], unique=False
        )
    # expand only: a server default and nullable columns serve the previous release
    with op.batch_alter_table("id_ecosystems", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "second_factor", sa.String(length=16), server_default="optional", nullable=False
            )
        )
    with op.batch_alter_table("id_partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("second_factor", sa.String(length=16), nullable=True))
    for table in ("id_auth_codes", "id_refresh_tokens"):  # id_sessions.amr: 0006
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("amr", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("id_refresh_tokens", "id_auth_codes"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("amr")
    with op.batch_alter_table("id_partners", schema=None) as batch_op:
        batch_op.drop_column("second_factor")
    with op.batch_alter_table("id_ecosystems", schema=None) as batch_op:
        batch_op.drop_column("second_factor")
    with op.batch_alter_table("id_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_recovery_codes_person_id"))
    op.drop_table("id_recovery_codes")
    op.drop_table("id_totp_factors")
