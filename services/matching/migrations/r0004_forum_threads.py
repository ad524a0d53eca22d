"""Forum behaviour as evidence: threads started (needs voiced) and what each reply helped with.

``forum_threads`` is new and empty at first; ``help_given`` gains the thread a reply
was in and, for public threads, the reply's text. Rows written before this revision
keep no thread (their help still counts as activity; a replay of the event history,
``rebuild --replay``, re-derives the rest). Expand-safe: both new columns are nullable
or have a server default, so an older replica's INSERTs still work.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forum_threads",
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("thread", sa.String(length=200), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "thread"),
    )
    op.create_index("ix_thread_eco_author", "forum_threads", ["eco", "author"])
    with op.batch_alter_table("help_given") as batch:
        batch.add_column(sa.Column("thread", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("text", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("help_given") as batch:
        batch.drop_column("text")
        batch.drop_column("thread")
    op.drop_index("ix_thread_eco_author", table_name="forum_threads")
    op.drop_table("forum_threads")
