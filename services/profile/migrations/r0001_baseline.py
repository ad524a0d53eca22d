"""Baseline: the schema as ``create_all`` made it before there were migrations.

A database made by ``create_all`` (tables, no ``alembic_version``) is stamped at this
revision when it is first migrated (:mod:`mesh.migrate`), its data kept.

Revision ID: 0001
Revises: (none)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cloud_terms",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("owner_kind", sa.String(length=10), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("surface", sa.String(length=200), nullable=False),
        sa.Column("tf", sa.Integer(), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("eco", "owner_kind", "owner", "term"),
    )
    op.create_table(
        "companies",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("partner", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("visibility", sa.JSON(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("verified_by", sa.String(length=128), nullable=True),
        sa.Column("verified_note", sa.Text(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "partner"),
    )
    op.create_table(
        "connections",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("other", sa.String(length=128), nullable=False),
        sa.Column("other_partner", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("eco", "person", "other"),
    )
    op.create_table(
        "content_audience",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("content_id", sa.String(length=128), nullable=False),
        sa.Column("partner", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("eco", "content_id", "partner"),
    )
    op.create_table(
        "content_terms",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("content_id", sa.String(length=128), nullable=False),
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("surface", sa.String(length=200), nullable=False),
        sa.Column("tf", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("eco", "content_id", "term"),
    )
    op.create_table(
        "contents",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("content_id", sa.String(length=128), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("author_partner", sa.String(length=128), nullable=False),
        sa.Column("workspace", sa.String(length=128), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("event_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("eco", "content_id"),
    )
    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.create_index("ix_contents_author", ["eco", "author"], unique=False)
        batch_op.create_index("ix_contents_partner", ["eco", "author_partner"], unique=False)

    op.create_table(
        "corpus_terms",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("df", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("eco", "term"),
    )
    op.create_table(
        "mesh_inbox",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
    )
    op.create_table(
        "mesh_outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("mesh_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mesh_outbox_published_at"), ["published_at"], unique=False
        )

    op.create_table(
        "persons",
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=False),
        sa.Column("partner", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("visibility", sa.JSON(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("verified_by", sa.String(length=128), nullable=True),
        sa.Column("verified_note", sa.Text(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "person"),
    )
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_persons_partner"), ["partner"], unique=False)

    op.create_table(
        "search_docs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("entry", sa.String(length=128), nullable=False),
        sa.Column("tier", sa.String(length=12), nullable=False),
        sa.Column("partner", sa.String(length=128), nullable=False),
        sa.Column("person", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("search_docs", schema=None) as batch_op:
        batch_op.create_index("ix_search_entry", ["eco", "kind", "entry", "tier"], unique=True)
        batch_op.create_index("ix_search_partner", ["eco", "kind", "partner"], unique=False)

    op.create_table(
        "search_facets",
        sa.Column("doc_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("facet", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("doc_id", "facet", "value"),
    )
    with op.batch_alter_table("search_facets", schema=None) as batch_op:
        batch_op.create_index("ix_facets_value", ["facet", "value"], unique=False)

    op.create_table(
        "verification_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("eco", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("target_kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("verification_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_verification_audit_eco"), ["eco"], unique=False)
    # Full text beside search_docs (the models' after_create DDL): FTS5 on SQLite, a GIN
    # expression index on PostgreSQL.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(text)")
    else:
        op.execute(
            "CREATE INDEX IF NOT EXISTS ix_search_tsv ON search_docs "
            "USING gin (to_tsvector('simple'::regconfig, text))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS search_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_search_tsv")
    with op.batch_alter_table("verification_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_verification_audit_eco"))

    op.drop_table("verification_audit")
    with op.batch_alter_table("search_facets", schema=None) as batch_op:
        batch_op.drop_index("ix_facets_value")

    op.drop_table("search_facets")
    with op.batch_alter_table("search_docs", schema=None) as batch_op:
        batch_op.drop_index("ix_search_partner")
        batch_op.drop_index("ix_search_entry")

    op.drop_table("search_docs")
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_persons_partner"))

    op.drop_table("persons")
    with op.batch_alter_table("mesh_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mesh_outbox_published_at"))

    op.drop_table("mesh_outbox")
    op.drop_table("mesh_inbox")
    op.drop_table("corpus_terms")
    with op.batch_alter_table("contents", schema=None) as batch_op:
        batch_op.drop_index("ix_contents_partner")
        batch_op.drop_index("ix_contents_author")

    op.drop_table("contents")
    op.drop_table("content_terms")
    op.drop_table("content_audience")
    op.drop_table("connections")
    op.drop_table("companies")
    op.drop_table("cloud_terms")
