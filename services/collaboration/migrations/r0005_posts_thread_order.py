"""A thread's posts in page order: the index covers the whole ORDER BY (created_at, id).

The old index (thread, created_at) left the tie-break on id to a sort of the
thread's posts on SQLite ("temp b-tree for right part of ORDER BY"); the new one
serves a page of a long thread from the index alone, and replaces it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_posts_thread_order", "posts", ["thread", "created_at", "id"])
    op.drop_index("ix_posts_thread", table_name="posts")


def downgrade() -> None:
    op.create_index("ix_posts_thread", "posts", ["thread", "created_at"])
    op.drop_index("ix_posts_thread_order", table_name="posts")
