"""Alliances: the projection of identity's alliances, and introductions across them.

``mesh_alliances`` (mesh.alliances) keeps the latest state of every alliance; the
introductions gain ``b_eco`` (b's ecosystem when it is an allied one), ``curators`` and
``awaiting`` (whose broker must still approve a curated one). Expand-safe: the new
columns are nullable or have a server default, so an older replica's INSERTs still work.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
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
    with op.batch_alter_table("introductions") as batch:
        batch.add_column(sa.Column("b_eco", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("curators", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("awaiting", sa.String(length=401), server_default="", nullable=False)
        )
    op.create_index("ix_intro_b_eco_b", "introductions", ["b_eco", "b"])


def downgrade() -> None:
    op.drop_index("ix_intro_b_eco_b", table_name="introductions")
    with op.batch_alter_table("introductions") as batch:
        batch.drop_column("awaiting")
        batch.drop_column("curators")
        batch.drop_column("b_eco")
    op.drop_index("ix_mesh_alliances_eco_b", table_name="mesh_alliances")
    op.drop_index("ix_mesh_alliances_eco_a", table_name="mesh_alliances")
    op.drop_table("mesh_alliances")
