"""Persons and companies remember when they were created ("member since").

Expand-safe: replicas still running the previous release insert rows without the
column, and the server default fills it for them. Rows from before get their
``updated_at``, the earliest time the database knows of them.

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

TABLES = ("persons", "companies")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET created_at = updated_at"))  # noqa: S608
        # SQLite cannot add a NOT NULL column with a non-constant default: set both now,
        # on the filled column (a table rebuild there, one ALTER on PostgreSQL).
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "created_at",
                existing_type=sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.now(),
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("created_at")
