"""The directory in name order per viewer tier: (eco, kind, tier, name_key, entry).

A directory page reads the ``ecosystem`` tier's rows in name order and stops at the
page's end (and its capped count soon after), instead of reading every index row of
the ecosystem to pick each entry's tier and sort them all.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_search_tier_name", "search_docs", ["eco", "kind", "tier", "name_key", "entry"]
    )


def downgrade() -> None:
    op.drop_index("ix_search_tier_name", table_name="search_docs")
