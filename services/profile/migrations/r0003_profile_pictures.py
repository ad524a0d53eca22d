"""Profile pictures: a person's avatar and a company's logo, stored as bytes.

Expand-safe: a new table and two nullable columns that older replicas never read.

Revision ID: 0003
Revises: 0002
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
        "pictures",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=40), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "kind", "owner"),
    )
    with op.batch_alter_table("companies") as batch_op:
        batch_op.add_column(sa.Column("image", sa.String(length=64), nullable=True))

    with op.batch_alter_table("persons") as batch_op:
        batch_op.add_column(sa.Column("image", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("persons") as batch_op:
        batch_op.drop_column("image")

    with op.batch_alter_table("companies") as batch_op:
        batch_op.drop_column("image")

    op.drop_table("pictures")
