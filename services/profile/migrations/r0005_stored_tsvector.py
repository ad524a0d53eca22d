"""The directory's full text on PostgreSQL reads a stored ``tsvector``, not the text.

``search_docs.tsv`` is a generated column, ``to_tsvector('simple', text)`` computed once
when a row is written, and the GIN index ``ix_search_tsv`` indexes it instead of the
same expression. Matching gives the same rows as before; ranking by relevance no longer
parses the text of every matching row again (at 100k people a common word matched
most of the index, and that parsing was most of a search's time).

Adding a stored generated column rewrites ``search_docs`` once (under the migration's
lock; about 45 s for 440k index rows, 100k people). Replicas of the previous release
keep working on the migrated schema (their inserts do not name the column, their
queries still parse the text) but, their expression index gone, search slower until
they are replaced. SQLite keeps its FTS5 table: nothing to do there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 21:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VECTOR = "to_tsvector('simple'::regconfig, text)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE search_docs ADD COLUMN IF NOT EXISTS tsv tsvector "
        f"GENERATED ALWAYS AS ({VECTOR}) STORED"
    )
    op.execute("DROP INDEX IF EXISTS ix_search_tsv")
    op.execute("CREATE INDEX ix_search_tsv ON search_docs USING gin (tsv)")
    # The planner's statistics of the new column (autovacuum would not gather them until
    # many rows changed): a common word is then known to match most rows.
    op.execute("ANALYZE search_docs")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_search_tsv")
    op.execute("ALTER TABLE search_docs DROP COLUMN IF EXISTS tsv")
    op.execute(f"CREATE INDEX ix_search_tsv ON search_docs USING gin ({VECTOR})")
