"""The portal's own tables: server-side sessions (tokens stay here), pending logins, dashboards."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from mesh.migrate import History

metadata = MetaData()

# A signed-in browser. ``id`` is the SHA-256 of the cookie value, so a leaked database
# does not hand out live cookies; the tokens are encrypted with the portal's secret key.
sessions = Table(
    "portal_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("csrf", String(64), nullable=False),
    Column("eco", String(128), nullable=False),
    Column("sub", String(255), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("partner", String(128), nullable=True),
    Column("roles", JSON, nullable=False, default=list),
    Column("tokens", Text, nullable=False),
    Column("access_expires_at", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen", Float, nullable=False),
    # identity's login session (the ID token's sid): a back-channel logout ends it
    Column("idp_sid", String(64), nullable=True, index=True),
)

# jti values of back-channel logout tokens already accepted (a replay is refused).
logout_jtis = Table(
    "portal_logout_jtis",
    metadata,
    Column("jti", String(128), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

# An authorization request in flight: state → PKCE verifier, nonce and where to go back.
logins = Table(
    "portal_logins",
    metadata,
    Column("state", String(64), primary_key=True),
    Column("verifier", String(128), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("return_to", String(500), nullable=False, default="/"),
    Column("created_at", Float, nullable=False),
)

dashboards = Table(
    "portal_dashboards",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("eco", String(128), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("owner_name", String(255), nullable=False, default=""),
    Column("partner", String(128), nullable=True),
    Column("title", String(200), nullable=False),
    # ``shared``: the previous release's "shared with my company" (written on, read as company)
    Column("shared", Boolean, nullable=False, default=False),
    # who sees it besides its owner: private, company (the owner's partner) or ecosystem
    Column("visibility", String(16), nullable=False, server_default="private"),
    # every widget: {id, kind, title, sources, w, h}; their order is the grid's
    Column("widgets", JSON, nullable=False, default=list),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_portal_dashboards_owner", "eco", "owner"),
    Index("ix_portal_dashboards_partner", "eco", "partner", "shared"),
    Index("ix_portal_dashboards_visibility", "eco", "visibility"),
)

# The schema's history: its revisions are in migrations/ beside this module (mesh.migrate).
history = History("portal", metadata, Path(__file__).with_name("migrations"))
