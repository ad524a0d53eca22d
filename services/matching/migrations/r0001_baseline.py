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
        "companies",
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("partner", sa.String(length=200), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "partner"),
    )
    op.create_table(
        "index_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("key", sa.String(length=401), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "introduction_audit",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("introduction", sa.String(length=40), nullable=False),
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_partner", sa.String(length=200), nullable=True),
        sa.Column("roles", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("introduction_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_introduction_audit_introduction"), ["introduction"], unique=False
        )

    op.create_table(
        "introductions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("a", sa.String(length=200), nullable=False),
        sa.Column("a_partner", sa.String(length=200), nullable=False),
        sa.Column("b", sa.String(length=200), nullable=False),
        sa.Column("b_partner", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("proposed_by", sa.String(length=200), nullable=False),
        sa.Column("broker", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("a_accepted", sa.Boolean(), nullable=False),
        sa.Column("b_accepted", sa.Boolean(), nullable=False),
        sa.Column("declined_by", sa.String(length=200), nullable=True),
        sa.Column("decline_reason", sa.String(length=40), nullable=True),
        sa.Column("decline_comment", sa.Text(), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("introductions", schema=None) as batch_op:
        batch_op.create_index("ix_intro_eco_a", ["eco", "a"], unique=False)
        batch_op.create_index("ix_intro_eco_b", ["eco", "b"], unique=False)
        batch_op.create_index("ix_intro_eco_status", ["eco", "status"], unique=False)

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
        "participants",
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("room", sa.String(length=200), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("eco", "room", "person"),
    )
    op.create_table(
        "persons",
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("partner", sa.String(length=200), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "person"),
    )
    op.create_table(
        "social_edges",
        sa.Column("eco", sa.String(length=200), nullable=False),
        sa.Column("a", sa.String(length=200), nullable=False),
        sa.Column("b", sa.String(length=200), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("eco", "a", "b"),
    )


def downgrade() -> None:
    op.drop_table("social_edges")
    op.drop_table("persons")
    op.drop_table("participants")
    with op.batch_alter_table("mesh_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mesh_outbox_published_at"))

    op.drop_table("mesh_outbox")
    op.drop_table("mesh_inbox")
    with op.batch_alter_table("introductions", schema=None) as batch_op:
        batch_op.drop_index("ix_intro_eco_status")
        batch_op.drop_index("ix_intro_eco_b")
        batch_op.drop_index("ix_intro_eco_a")

    op.drop_table("introductions")
    with op.batch_alter_table("introduction_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_introduction_audit_introduction"))

    op.drop_table("introduction_audit")
    op.drop_table("index_changes")
    op.drop_table("companies")
