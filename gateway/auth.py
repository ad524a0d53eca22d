"""Who is calling: bearer token → verified claims, and the policy decision on them.

The decision is :func:`contracts.policy.decide`, the same function every service
applies again to the token it receives (zero trust).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contracts.claims import Claims
from contracts.errors import ErrorCode
from contracts.policy import Policy, decide
from mesh.errors import MeshError
from mesh.tokens import TokenVerifier, bearer


class Caller:
    """The token a request carried (if any) and its verified claims."""

    __slots__ = ("claims", "token")

    def __init__(self, token: str | None, claims: Claims | None) -> None:
        self.token = token
        self.claims = claims

    @property
    def partner(self) -> str | None:
        return self.claims.partner if self.claims else None

    @property
    def client_id(self) -> str | None:
        return self.claims.client_id if self.claims else None


ANONYMOUS = Caller(None, None)


async def authenticate(headers: Mapping[str, str], verifier: TokenVerifier) -> Caller:
    """Verify the bearer token, if one is sent. A token that is sent must be valid."""
    raw = headers.get("authorization")
    if raw is None:
        return ANONYMOUS
    token = bearer(raw)
    if token is None:
        raise MeshError(
            ErrorCode.UNAUTHENTICATED, "the Authorization header must be 'Bearer <token>'"
        )
    return Caller(token, await verifier.verify(token))


def authorize(policy: Policy, caller: Caller, params: dict[str, Any]) -> None:
    """Raise the policy's denial (401/403) for ``caller`` calling with ``params``."""
    denial = decide(policy, caller.claims, params)
    if denial is not None:
        raise MeshError(denial.code, denial.reason)


def require_ecosystem(caller: Caller, eco: str) -> Claims:
    """Any valid token of ecosystem ``eco`` (used by the mashup endpoint itself)."""
    if caller.claims is None:
        raise MeshError(ErrorCode.UNAUTHENTICATED, "a bearer access token is required")
    if caller.claims.eco != eco:
        raise MeshError(ErrorCode.FORBIDDEN, "the token was issued for another ecosystem")
    return caller.claims
