"""Alliances: the projection of identity's alliances, and workspace members of both sides.

``mesh_alliances`` (mesh.alliances) keeps the latest state of every alliance; a
workspace member gains ``eco``, their own ecosystem, for workspaces an introduction
across an alliance opened. Expand-safe: the column is nullable (None: the workspace's
ecosystem, which every row written before this revision is), so an older replica's
INSERTs still work.

Revision ID: 0006
Revises: 0005
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
        "mesh_alliances",
        sa.Column("alliance", sa.String(length=64), nullable=False),
        sa.Column("eco_a", sa.String(length=64), nullable=False),
        sa.Column("eco_b", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("alliance"),
    )
    op.create_index("ix_mesh_alliances_eco_a", "mesh_alliances", ["eco_a"])
    op.create_index("ix_mesh_alliances_eco_b", "mesh_alliances", ["eco_b"])
    with op.batch_alter_table("workspace_members") as batch:
        batch.add_column(sa.Column("eco", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspace_members") as batch:
        batch.drop_column("eco")
    op.drop_index("ix_mesh_alliances_eco_b", table_name="mesh_alliances")
    op.drop_index("ix_mesh_alliances_eco_a", table_name="mesh_alliances")
    op.drop_table("mesh_alliances")
