"""Direct conversations: a workspace may be the one conversation of two people.

Expand-safe: the column is nullable and older replicas never write it; the unique
constraint on (eco, direct) keeps one conversation per pair (NULLs never collide).

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
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("direct", sa.String(length=520), nullable=True))
        batch.create_unique_constraint("uq_workspaces_eco_direct", ["eco", "direct"])


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_constraint("uq_workspaces_eco_direct", type_="unique")
        batch.drop_column("direct")
