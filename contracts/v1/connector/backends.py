"""Connector contracts: back-ends, operations, the catalogue, grants, invocation, audit."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.envelope import EventBase
from contracts.timestamps import Timestamp

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
OPERATION_ID = r"^[a-z0-9][a-z0-9-]{0,62}\.[a-z0-9][a-z0-9-]{0,62}$"
EVENT_TYPE = r"^[a-z0-9][a-z0-9_.-]{0,99}$"

# --- back-ends and their credentials ---------------------------------------------------------


class AuthNone(BaseModel):
    kind: Literal["none"] = "none"


class AuthApiKey(BaseModel):
    kind: Literal["api_key"] = "api_key"
    header: str = Field(default="X-Api-Key", pattern=r"^[A-Za-z0-9-]{1,64}$")
    api_key: str = Field(min_length=1, max_length=4096, description="write-only")


class AuthOAuth2(BaseModel):
    kind: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str = Field(max_length=2000)
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(min_length=1, max_length=4096, description="write-only")
    scope: str = Field(default="", max_length=1000)


class AuthMtls(BaseModel):
    kind: Literal["mtls"] = "mtls"
    client_cert_pem: str = Field(min_length=1, max_length=20000)
    client_key_pem: str = Field(min_length=1, max_length=20000, description="write-only")


AuthConfig = AuthNone | AuthApiKey | AuthOAuth2 | AuthMtls


class BackendFields(BaseModel):
    base_url: str = Field(max_length=2000, description="http(s) URL the operations' paths join")
    auth: AuthConfig = Field(default_factory=AuthNone, discriminator="kind")
    server_ca_pem: str | None = Field(
        default=None, max_length=20000, description="trust anchor for an https back-end"
    )
    description: str = Field(default="", max_length=2000)


class RegisterBackendRequest(BackendFields):
    eco: str
    partner: str
    name: str = Field(pattern=SLUG)


class ListBackendsRequest(BaseModel):
    eco: str
    partner: str


class RotateCredentialsRequest(BaseModel):
    eco: str
    partner: str
    backend: str
    auth: AuthConfig = Field(discriminator="kind")


class UpdateBackendRequest(BaseModel):
    """Move a back-end (its address changed) or describe it anew; operations stay bound."""

    eco: str
    partner: str
    backend: str
    base_url: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=2000)


class BackendReply(BaseModel):
    """A back-end as its owners see it: never its secrets."""

    partner: str
    name: str
    base_url: str
    auth_kind: str
    credential_version: int
    has_server_ca: bool
    description: str
    created_at: Timestamp


class BackendList(BaseModel):
    items: list[BackendReply]


# --- operations and the catalogue ------------------------------------------------------------


class DeclareOperationRequest(BaseModel):
    eco: str
    partner: str
    backend: str
    name: str = Field(pattern=SLUG)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    path: str = Field(
        max_length=500, pattern=r"^/", description="path template, e.g. /orders/{order_id}"
    )
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    output_schema: dict[str, Any] = Field(default_factory=dict)
    visibility: Literal["private", "ecosystem"] = Field(
        default="private", description="ecosystem: listed for all; private: owner and grantees"
    )
    description: str = Field(default="", max_length=2000)
    timeout_s: float | None = Field(default=None, gt=0, le=120)


class OperationReply(BaseModel):
    id: str = Field(description="<partner>.<name>")
    partner: str
    backend: str | None = Field(description="the back-end's name, shown to its owners only")
    name: str
    method: str
    path: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    visibility: str
    description: str
    granted: bool = Field(description="whether the caller may invoke it")
    ecosystem: str | None = Field(
        default=None,
        description="the owner's ecosystem when it is an allied one (an operation granted "
        "across an alliance); null: the ecosystem asked",
    )
    ecosystem_name: str | None = Field(
        default=None, description="the allied ecosystem's display name (its brand)"
    )


class CatalogueRequest(BaseModel):
    eco: str
    q: str = Field(
        default="",
        max_length=200,
        description="words that must all appear in the operation's id, name or description"
        " (case-insensitive, literally); empty: every operation the caller may see",
    )


class CatalogueReply(BaseModel):
    items: list[OperationReply]


class GetOperationRequest(BaseModel):
    eco: str
    operation: str


# --- grants ----------------------------------------------------------------------------------


class GrantFields(BaseModel):
    grantee: str | None = Field(
        default=None, description="partner granted; null grants the whole ecosystem"
    )
    grantee_eco: str | None = Field(
        default=None,
        pattern=SLUG,
        description="the grantee's ecosystem when it is an allied one (a grant across an "
        "alliance, to one named partner, allowed when the alliance is active and its terms "
        "let the owning partner grant across); null or the operation's ecosystem: its own",
    )
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    response_fields: list[str] | None = Field(
        default=None, description="dotted paths kept in responses; null keeps all"
    )


class CreateGrantRequest(GrantFields):
    eco: str
    operation: str


class ListGrantsRequest(BaseModel):
    eco: str
    operation: str


class RevokeGrantRequest(BaseModel):
    eco: str
    operation: str
    grant: str


class GrantReply(GrantFields):
    id: str
    operation: str
    created_at: Timestamp
    revoked_at: Timestamp | None = None
    active: bool = Field(
        default=True,
        description="whether the grant applies now: false when revoked, or when it crosses "
        "an alliance that is not active (or whose terms no longer let the owner grant); "
        "kept, and active again when the alliance resumes",
    )


class GrantList(BaseModel):
    items: list[GrantReply]


# --- invocation and audit --------------------------------------------------------------------


class InvokeRequest(BaseModel):
    eco: str
    operation: str
    input: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(
        default=None, max_length=200, description="Idempotency-Key: a repeat replays the result"
    )


class InvokeReply(BaseModel):
    operation: str
    status: int = Field(description="the back-end's HTTP status")
    output: Any
    attempts: int
    replayed: bool = False
    audit_id: str


class AuditRequest(BaseModel):
    eco: str
    operation: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class AuditRecord(BaseModel):
    """One invocation. A call across an alliance is shown in both ecosystems' audit: the
    operation's (``owner_eco``) and the caller's (``caller_eco``)."""

    id: str
    operation: str
    owner_eco: str | None = Field(default=None, description="the operation's ecosystem")
    owner_partner: str
    caller_eco: str | None = Field(
        default=None, description="the caller's ecosystem (an allied one for a call across)"
    )
    caller_partner: str | None
    caller: str
    outcome: str
    status: int | None
    latency_ms: float
    attempts: int
    flow: str | None
    at: Timestamp


class AuditList(BaseModel):
    items: list[AuditRecord]


# --- egress allow-list (SSRF) ----------------------------------------------------------------


class AllowlistRequest(BaseModel):
    eco: str


class SetAllowlistRequest(BaseModel):
    eco: str
    entries: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="CIDRs or addresses of internal networks back-ends may live in, or one "
        "port of an address (127.0.0.1:9201, [::1]:9201)",
    )


class AllowlistReply(BaseModel):
    entries: list[str]


class GrantChangedData(BaseModel):
    grant: str
    operation: str
    grantee: str | None
    revoked: bool
    grantee_eco: str | None = Field(
        default=None, description="the grantee's ecosystem for a grant across an alliance"
    )


class GrantChanged(EventBase):
    SOURCE: ClassVar[str] = "/services/connector"
    type: Literal["pm.v1.connector.grant_changed"] = "pm.v1.connector.grant_changed"
    source: str = SOURCE
    data: GrantChangedData
