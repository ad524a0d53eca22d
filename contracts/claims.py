"""Claims of partnermesh access tokens (RFC 9068 plus ecosystem claims), roles and scopes."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Registered and partnermesh-specific claim names.
ECO = "eco"
PARTNER = "partner"
ROLES = "roles"
SCOPE = "scope"
CLIENT_ID = "client_id"
ACT = "act"
CNF = "cnf"
FED = "fed"

ACCESS_TOKEN_TYP = "at+jwt"
DEFAULT_AUDIENCE = "partnermesh"


class Role(StrEnum):
    MEMBER = "member"
    PARTNER_ADMIN = "partner_admin"
    BROKER = "broker"
    OPERATOR = "operator"


class Scope(StrEnum):
    """Every scope the ecosystem API knows. A route names exactly one."""

    PROFILE_READ = "profile:read"
    PROFILE_WRITE = "profile:write"
    DIRECTORY_READ = "directory:read"
    FORUM_READ = "forum:read"
    FORUM_WRITE = "forum:write"
    WORKSPACE_READ = "workspace:read"
    WORKSPACE_WRITE = "workspace:write"
    MATCHING_READ = "matching:read"
    INTRO_WRITE = "intro:write"
    CONNECTOR_READ = "connector:read"
    CONNECTOR_INVOKE = "connector:invoke"
    CONNECTOR_ADMIN = "connector:admin"
    BROKER_CURATE = "broker:curate"
    ADMIN = "admin"
    MESH_PING = "mesh:ping"


ALL_SCOPES: frozenset[str] = frozenset(s.value for s in Scope)


class Actor(BaseModel):
    """RFC 8693 ``act`` claim: who acts on the subject's behalf (may nest)."""

    model_config = ConfigDict(extra="allow")
    sub: str
    client_id: str | None = None
    act: Actor | None = None


class Federation(BaseModel):
    """``fed`` claim: where a token came from when it crossed an alliance."""

    model_config = ConfigDict(extra="allow")
    iss: str
    eco: str
    partner: str | None = None


class Confirmation(BaseModel):
    """``cnf`` claim (RFC 7800): the key a sender-constrained token is bound to.

    ``jkt`` is the RFC 7638 SHA-256 thumbprint of the client's DPoP key (RFC 9449 §6.1).
    """

    model_config = ConfigDict(extra="allow")
    jkt: str | None = None


class Claims(BaseModel):
    """The verified claims of an access token, as every process sees them."""

    model_config = ConfigDict(extra="allow", frozen=True)

    iss: str
    sub: str
    aud: str | list[str]
    exp: int
    iat: int
    jti: str
    client_id: str
    scope: str = ""
    eco: str
    partner: str | None = None
    roles: list[Role] = Field(default_factory=list)
    act: Actor | None = None
    fed: Federation | None = None
    cnf: Confirmation | None = None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def has_scope(self, scope: Scope | str) -> bool:
        return str(scope) in self.scope.split()

    def has_role(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)

    def to_jwt_payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
