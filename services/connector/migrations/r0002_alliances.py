"""Alliances: the connector's projection of them, grants and calls across them.

``mesh_alliances`` (:mod:`mesh.alliances`) holds the latest state of every alliance, fed
by the ``connector-alliances`` consumer. ``connector_grants.grantee_eco`` names the
grantee's ecosystem of a grant across an alliance and ``connector_audit.caller_eco`` the
caller's ecosystem of a call across (both null for what stays in one ecosystem, as every
existing row does): adding nullable columns keeps the previous release working.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 23:08:59.539777
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
        "mesh_alliances",
        sa.Column("alliance", sa.String(length=64), nullable=False),
        sa.Column("eco_a", sa.String(length=64), nullable=False),
        sa.Column("eco_b", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("alliance"),
    )
    with op.batch_alter_table("mesh_alliances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mesh_alliances_eco_a"), ["eco_a"], unique=False)
        batch_op.create_index(batch_op.f("ix_mesh_alliances_eco_b"), ["eco_b"], unique=False)

    with op.batch_alter_table("connector_audit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller_eco", sa.String(length=100), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_connector_audit_caller_eco"), ["caller_eco"], unique=False
        )

    with op.batch_alter_table("connector_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grantee_eco", sa.String(length=100), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_connector_grants_grantee_eco"), ["grantee_eco"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("connector_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_grants_grantee_eco"))
        batch_op.drop_column("grantee_eco")

    with op.batch_alter_table("connector_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_audit_caller_eco"))
        batch_op.drop_column("caller_eco")

    with op.batch_alter_table("mesh_alliances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mesh_alliances_eco_b"))
        batch_op.drop_index(batch_op.f("ix_mesh_alliances_eco_a"))

    op.drop_table("mesh_alliances")
