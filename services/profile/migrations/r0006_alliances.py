"""Alliances: per-field consent to share with allies, connections across, ``mesh_alliances``.

Each field of a person or company gets a flag "shared with allied ecosystems"
(``allied``); ``connections_across`` keeps introductions accepted across an alliance;
``mesh_alliances`` is the projection of identity's alliances (``mesh.alliances``).

Expand-safe: ``allied`` has a server default (``{}``: nothing shared), so replicas of
the previous release keep inserting profiles; the two new tables are read only by
this release. Search rows of the allied tiers are written as profiles flag fields.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("persons", "companies")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table, sa.Column("allied", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    op.create_table(
        "connections_across",
        sa.Column("eco", sa.String(128), primary_key=True),
        sa.Column("person", sa.String(128), primary_key=True),
        sa.Column("other_eco", sa.String(128), primary_key=True),
        sa.Column("other", sa.String(128), primary_key=True),
        sa.Column("other_partner", sa.String(128), nullable=False),
    )
    op.create_table(
        "mesh_alliances",
        sa.Column("alliance", sa.String(64), primary_key=True),
        sa.Column("eco_a", sa.String(64), nullable=False),
        sa.Column("eco_b", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
    )
    op.create_index("ix_mesh_alliances_eco_a", "mesh_alliances", ["eco_a"])
    op.create_index("ix_mesh_alliances_eco_b", "mesh_alliances", ["eco_b"])


def downgrade() -> None:
    op.drop_table("mesh_alliances")
    op.drop_table("connections_across")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("allied")
