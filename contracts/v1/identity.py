"""Events published by the identity provider (audit trail)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from contracts.envelope import EventBase

if TYPE_CHECKING:
    from contracts.policy import Operation


class AuditData(BaseModel):
    action: str = Field(
        description="login.succeeded, login.failed, token.issued, refresh.reuse_detected, "
        "token.revoked, admin.<entity>.<verb>, key.rotated"
    )
    actor: str | None = Field(default=None, description="sub or client_id that acted")
    target: str | None = None
    outcome: Literal["success", "failure"] = "success"
    details: dict[str, Any] = Field(default_factory=dict)


class AuditEvent(EventBase):
    """An audit record of the identity provider. Under load several arrive as one
    CloudEvents JSON batch (``application/cloudevents-batch+json``, a JSON array)."""

    SOURCE: ClassVar[str] = "/identity"
    BATCHABLE: ClassVar[bool] = True
    type: Literal["pm.v1.identity.audit"] = "pm.v1.identity.audit"
    source: str = SOURCE
    data: AuditData


class PartnerData(BaseModel):
    partner: str
    name: str
    verified: bool = False


class PartnerRegistered(EventBase):
    SOURCE: ClassVar[str] = "/identity"
    type: Literal["pm.v1.identity.partner_registered"] = "pm.v1.identity.partner_registered"
    source: str = SOURCE
    data: PartnerData


class PersonData(BaseModel):
    person: str = Field(description="the person's subject identifier")
    partner: str
    name: str
    username: str | None = Field(
        default=None,
        description="the person's login name, unique in the ecosystem (the OIDC "
        "preferred_username): their @handle in mentions",
    )
    email: str | None = None
    roles: list[str] = Field(default_factory=list)


class PersonRegistered(EventBase):
    SOURCE: ClassVar[str] = "/identity"
    type: Literal["pm.v1.identity.person_registered"] = "pm.v1.identity.person_registered"
    source: str = SOURCE
    data: PersonData


class RevokedToken(BaseModel):
    jti: str = Field(min_length=1, max_length=128, description="the access token's jti")
    exp: int = Field(description="when the token expires anyway (Unix seconds)")


class RevokedSubject(BaseModel):
    """Every access token of one subject, or of the whole ecosystem, issued before a time:
    also those identity keeps no record of (client credentials, token exchange).

    With ``origin``: only the ecosystem's tokens exchanged from ``origin`` (their
    ``fed.eco``), as when an alliance with ``origin`` is suspended or ended."""

    sub: str | None = Field(
        default=None, max_length=256, description="the tokens' sub; none: every token"
    )
    origin: str | None = Field(
        default=None,
        max_length=64,
        description="only tokens exchanged from this ecosystem (fed.eco); none: any token",
    )
    before: int = Field(description="tokens issued (iat) before this are refused (Unix seconds)")
    until: int = Field(description="when no token issued before `before` is alive any more")

    @model_validator(mode="after")
    def _one_kind(self) -> RevokedSubject:
        if self.origin is not None and self.sub is not None:
            raise ValueError("a cut-off names a sub or an origin, not both")
        return self


RevocationReason = Literal[
    "revoked",
    "refresh_reuse",
    "code_reuse",
    "person_disabled",
    "ecosystem_disabled",
    "alliance_suspended",
    "alliance_ended",
]


class TokenRevokedData(BaseModel):
    tokens: list[RevokedToken] = Field(default_factory=list)
    subjects: list[RevokedSubject] = Field(default_factory=list)
    reason: RevocationReason = "revoked"

    @model_validator(mode="after")
    def _revokes_something(self) -> TokenRevokedData:
        if not self.tokens and not self.subjects:
            raise ValueError("a revocation names tokens, subjects or both")
        return self


class TokenRevoked(EventBase):
    """Access tokens of the ecosystem's issuer that resource servers must refuse from now on.

    The gateway and every service replay these at start-up (``mesh.revocation``)."""

    SOURCE: ClassVar[str] = "/identity"
    type: Literal["pm.v1.identity.token_revoked"] = "pm.v1.identity.token_revoked"
    source: str = SOURCE
    data: TokenRevokedData


EVENTS: tuple[type[EventBase], ...] = (
    AuditEvent,
    PartnerRegistered,
    PersonRegistered,
    TokenRevoked,
)
OPERATIONS: tuple[Operation, ...] = ()
