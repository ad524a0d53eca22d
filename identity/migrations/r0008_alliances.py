"""Alliances between two ecosystems of the deployment and their audit trail (new tables
only: the previous release never reads them)

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "id_alliance_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alliance", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=256), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("id_alliance_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_id_alliance_audit_alliance"), ["alliance"], unique=False
        )

    op.create_table(
        "id_alliances",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("eco_a", sa.String(length=64), nullable=False),
        sa.Column("eco_b", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("offered_by", sa.String(length=64), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=256), nullable=False),
        sa.Column("active_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_by", sa.String(length=64), nullable=True),
        sa.Column("pair_key", sa.String(length=130), nullable=True),
        sa.Column("cut_before", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["eco_a"],
            ["id_ecosystems.slug"],
        ),
        sa.ForeignKeyConstraint(
            ["eco_b"],
            ["id_ecosystems.slug"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pair_key"),
    )
    with op.batch_alter_table("id_alliances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_alliances_eco_a"), ["eco_a"], unique=False)
        batch_op.create_index(batch_op.f("ix_id_alliances_eco_b"), ["eco_b"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("id_alliances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_alliances_eco_b"))
        batch_op.drop_index(batch_op.f("ix_id_alliances_eco_a"))

    op.drop_table("id_alliances")
    with op.batch_alter_table("id_alliance_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_alliance_audit_alliance"))

    op.drop_table("id_alliance_audit")
