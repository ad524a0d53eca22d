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
        "id_auth_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=120), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=10), nullable=True),
        sa.Column("auth_time", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=True),
        sa.Column("dpop_jkt", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_table(
        "id_clients",
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=True),
        sa.Column("auth_method", sa.String(length=32), nullable=False),
        sa.Column("secret_hash", sa.String(length=128), nullable=True),
        sa.Column("jwks", sa.JSON(), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("post_logout_redirect_uris", sa.JSON(), nullable=False),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("first_party", sa.Boolean(), nullable=False),
        sa.Column("id_token_alg", sa.String(length=16), nullable=False),
        sa.Column("access_ttl", sa.Integer(), nullable=True),
        sa.Column(
            "dpop_bound_access_tokens", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("eco", "client_id"),
    )
    op.create_table(
        "id_consents",
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=120), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("eco", "person_id", "client_id"),
    )
    op.create_table(
        "id_ecosystems",
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("membership_policy", sa.String(length=16), nullable=False),
        sa.Column("admission_rule", sa.JSON(), nullable=False),
        sa.Column("default_partner", sa.String(length=64), nullable=True),
        sa.Column("access_ttl", sa.Integer(), nullable=False),
        sa.Column("access_token_alg", sa.String(length=16), nullable=True),
        sa.Column("refresh_ttl", sa.Integer(), nullable=False),
        sa.Column("exchange_rules", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("slug"),
    )
    op.create_table(
        "id_invitations",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_table(
        "id_login_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "id_refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=120), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("auth_time", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated", sa.Boolean(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("access_jti", sa.String(length=64), nullable=True),
        sa.Column("access_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("jkt", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("id_refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_id_refresh_tokens_family_id"), ["family_id"], unique=False
        )

    op.create_table(
        "id_revoked_jtis",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_table(
        "id_sessions",
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("auth_time", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sid_hash"),
    )
    op.create_table(
        "id_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_enc", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retire_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
    )
    with op.batch_alter_table("id_signing_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_signing_keys_eco"), ["eco"], unique=False)

    op.create_table(
        "id_upstreams",
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("client_id", sa.String(length=120), nullable=False),
        sa.Column("client_secret_enc", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=300), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("eco", "alias"),
    )
    op.create_table(
        "id_used_assertions",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
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
        "id_partners",
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["eco"],
            ["id_ecosystems.slug"],
        ),
        sa.PrimaryKeyConstraint("eco", "slug"),
    )
    op.create_table(
        "id_people",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("eco", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=120), nullable=False),
        sa.Column("partner", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("upstream", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["eco", "partner"],
            ["id_partners.eco", "id_partners.slug"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("id_people", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_id_people_eco"), ["eco"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("id_people", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_people_eco"))

    op.drop_table("id_people")
    op.drop_table("id_partners")
    with op.batch_alter_table("mesh_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mesh_outbox_published_at"))

    op.drop_table("mesh_outbox")
    op.drop_table("id_used_assertions")
    op.drop_table("id_upstreams")
    with op.batch_alter_table("id_signing_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_signing_keys_eco"))

    op.drop_table("id_signing_keys")
    op.drop_table("id_sessions")
    op.drop_table("id_revoked_jtis")
    with op.batch_alter_table("id_refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_id_refresh_tokens_family_id"))

    op.drop_table("id_refresh_tokens")
    op.drop_table("id_login_throttle")
    op.drop_table("id_invitations")
    op.drop_table("id_ecosystems")
    op.drop_table("id_consents")
    op.drop_table("id_clients")
    op.drop_table("id_auth_codes")
