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
        "connector_audit",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("operation", sa.String(length=127), nullable=False),
        sa.Column("owner_partner", sa.String(length=100), nullable=False),
        sa.Column("caller_partner", sa.String(length=100), nullable=True),
        sa.Column("caller", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("flow", sa.String(length=32), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("connector_audit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connector_audit_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_connector_audit_eco"), ["eco"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_connector_audit_operation"), ["operation"], unique=False
        )

    op.create_table(
        "connector_backends",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("base_url", sa.String(length=2000), nullable=False),
        sa.Column("auth_kind", sa.String(length=40), nullable=False),
        sa.Column("auth_public", sa.JSON(), nullable=False),
        sa.Column("secret_id", sa.String(length=32), nullable=True),
        sa.Column("credential_version", sa.Integer(), nullable=False),
        sa.Column("server_ca_pem", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("eco", "partner", "name"),
    )
    op.create_table(
        "connector_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("subscription_id", sa.String(length=32), nullable=False),
        sa.Column("webhook_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "webhook_id"),
    )
    with op.batch_alter_table("connector_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_connector_deliveries_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_connector_deliveries_status"), ["status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_connector_deliveries_subscription_id"), ["subscription_id"], unique=False
        )

    op.create_table(
        "connector_egress_allow",
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("entry", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("eco", "entry"),
    )
    op.create_table(
        "connector_flows",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner_partner", sa.String(length=100), nullable=True),
        sa.Column("owner_sub", sa.String(length=200), nullable=False),
        sa.Column("owner_scopes", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("connector_flows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connector_flows_eco"), ["eco"], unique=False)
        batch_op.create_index(batch_op.f("ix_connector_flows_status"), ["status"], unique=False)

    op.create_table(
        "connector_grants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("resource", sa.String(length=127), nullable=False),
        sa.Column("owner_partner", sa.String(length=100), nullable=False),
        sa.Column("grantee", sa.String(length=100), nullable=True),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column("response_fields", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("connector_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connector_grants_eco"), ["eco"], unique=False)

    op.create_table(
        "connector_idempotency",
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("caller_partner", sa.String(length=100), nullable=False),
        sa.Column("operation", sa.String(length=127), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("audit_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "caller_partner", "operation", "key"),
    )
    op.create_table(
        "connector_inbound",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("secret_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("eco", "partner", "name"),
    )
    op.create_table(
        "connector_inbound_seen",
        sa.Column("endpoint_id", sa.String(length=32), nullable=False),
        sa.Column("webhook_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_id", "webhook_id"),
    )
    op.create_table(
        "connector_operations",
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("id", sa.String(length=127), nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("backend_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("input_schema", sa.JSON(), nullable=False),
        sa.Column("output_schema", sa.JSON(), nullable=False),
        sa.Column("visibility", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "id"),
    )
    op.create_table(
        "connector_subscriptions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("eco", sa.String(length=100), nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("source_partner", sa.String(length=100), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_id", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("connector_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_connector_subscriptions_eco"), ["eco"], unique=False)

    op.create_table(
        "connector_vault",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
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


def downgrade() -> None:
    with op.batch_alter_table("mesh_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mesh_outbox_published_at"))

    op.drop_table("mesh_outbox")
    op.drop_table("mesh_inbox")
    op.drop_table("connector_vault")
    with op.batch_alter_table("connector_subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_subscriptions_eco"))

    op.drop_table("connector_subscriptions")
    op.drop_table("connector_operations")
    op.drop_table("connector_inbound_seen")
    op.drop_table("connector_inbound")
    op.drop_table("connector_idempotency")
    with op.batch_alter_table("connector_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_grants_eco"))

    op.drop_table("connector_grants")
    with op.batch_alter_table("connector_flows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_flows_status"))
        batch_op.drop_index(batch_op.f("ix_connector_flows_eco"))

    op.drop_table("connector_flows")
    op.drop_table("connector_egress_allow")
    with op.batch_alter_table("connector_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_deliveries_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_connector_deliveries_status"))
        batch_op.drop_index(batch_op.f("ix_connector_deliveries_next_attempt_at"))

    op.drop_table("connector_deliveries")
    op.drop_table("connector_backends")
    with op.batch_alter_table("connector_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_connector_audit_operation"))
        batch_op.drop_index(batch_op.f("ix_connector_audit_eco"))
        batch_op.drop_index(batch_op.f("ix_connector_audit_at"))

    op.drop_table("connector_audit")
