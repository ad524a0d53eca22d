"""Tables of the connector service (its own database)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mesh.alliances import alliance_table
from mesh.migrate import History

TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


metadata = Base.metadata


class VaultSecret(Base):
    """An encrypted secret; ``ciphertext`` names the key that sealed it."""

    __tablename__ = "connector_vault"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TS)


class Backend(Base):
    __tablename__ = "connector_backends"
    __table_args__ = (UniqueConstraint("eco", "partner", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eco: Mapped[str] = mapped_column(String(100))
    partner: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(63))
    base_url: Mapped[str] = mapped_column(String(2000))
    auth_kind: Mapped[str] = mapped_column(String(40))
    auth_public: Mapped[dict[str, Any]] = mapped_column(JSON)
    secret_id: Mapped[str | None] = mapped_column(String(32))
    credential_version: Mapped[int] = mapped_column(Integer, default=1)
    server_ca_pem: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(TS)


class OperationRow(Base):
    __tablename__ = "connector_operations"
    eco: Mapped[str] = mapped_column(String(100), primary_key=True)
    id: Mapped[str] = mapped_column(String(127), primary_key=True)
    partner: Mapped[str] = mapped_column(String(100))
    backend_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(63))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    input_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    output_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    visibility: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    timeout_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(TS)


class Grant(Base):
    """Who may use an operation (kind ``operation``) or subscribe to an event type (``event``)."""

    __tablename__ = "connector_grants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eco: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    resource: Mapped[str] = mapped_column(String(127))
    owner_partner: Mapped[str] = mapped_column(String(100))
    grantee: Mapped[str | None] = mapped_column(String(100))
    # the grantee's ecosystem for a grant across an alliance (None: the grant's own)
    grantee_eco: Mapped[str | None] = mapped_column(String(100), index=True)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    response_fields: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)


class AuditRow(Base):
    __tablename__ = "connector_audit"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eco: Mapped[str] = mapped_column(String(100), index=True)
    operation: Mapped[str] = mapped_column(String(127), index=True)
    owner_partner: Mapped[str] = mapped_column(String(100))
    caller_partner: Mapped[str | None] = mapped_column(String(100))
    # the caller's ecosystem for a call across an alliance (None: the operation's own)
    caller_eco: Mapped[str | None] = mapped_column(String(100), index=True)
    caller: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(40))
    status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer)
    flow: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(TS, index=True)


class IdempotencyRecord(Base):
    __tablename__ = "connector_idempotency"
    eco: Mapped[str] = mapped_column(String(100), primary_key=True)
    caller_partner: Mapped[str] = mapped_column(String(100), primary_key=True)
    operation: Mapped[str] = mapped_column(String(127), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)
    output: Mapped[Any] = mapped_column(JSON, nullable=True)
    audit_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(TS)


class Allowed(Base):
    __tablename__ = "connector_egress_allow"
    eco: Mapped[str] = mapped_column(String(100), primary_key=True)
    entry: Mapped[str] = mapped_column(String(100), primary_key=True)


class InboundEndpoint(Base):
    __tablename__ = "connector_inbound"
    __table_args__ = (UniqueConstraint("eco", "partner", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eco: Mapped[str] = mapped_column(String(100))
    partner: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(63))
    secret_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(TS)


class InboundSeen(Base):
    """Webhook ids already accepted per endpoint (de-duplication)."""

    __tablename__ = "connector_inbound_seen"
    endpoint_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(TS)


class Subscription(Base):
    __tablename__ = "connector_subscriptions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eco: Mapped[str] = mapped_column(String(100), index=True)
    partner: Mapped[str] = mapped_column(String(100))
    source_partner: Mapped[str] = mapped_column(String(100))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    url: Mapped[str] = mapped_column(String(2000))
    secret_id: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(TS)


class Delivery(Base):
    __tablename__ = "connector_deliveries"
    __table_args__ = (UniqueConstraint("subscription_id", "webhook_id"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eco: Mapped[str] = mapped_column(String(100))
    subscription_id: Mapped[str] = mapped_column(String(32), index=True)
    webhook_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TS, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS)


class Flow(Base):
    """A durable flow: its definition, the owner it runs as, and its state after every step."""

    __tablename__ = "connector_flows"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eco: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    owner_partner: Mapped[str | None] = mapped_column(String(100))
    owner_sub: Mapped[str] = mapped_column(String(200))
    owner_scopes: Mapped[str] = mapped_column(Text)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


# The alliances between ecosystems (mesh.alliances), fed by the connector-alliances consumer.
alliances = alliance_table(metadata)

# The schema's history: its revisions are in migrations/ beside this module (mesh.migrate).
history = History(
    "connector", metadata, Path(__file__).with_name("migrations"), outbox=True, inbox=True
)
