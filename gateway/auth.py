"""Who is calling (the caller built by :func:`gateway.dpop.authenticate`: a Bearer or
DPoP-bound token → verified claims) and the policy decision on them.

The decision is :func:`contracts.policy.decide`, the same function every service
applies again to the token it receives (zero trust).
"""

from __future__ import annotations

from typing import Any

from contracts.claims import Claims
from contracts.errors import ErrorCode
from contracts.policy import Policy, decide
from mesh.errors import MeshError


class Caller:
    """The token a request carried (if any), its verified claims and, for a DPoP-bound
    token, the proof checked at the edge (forwarded to services, see gateway.dpop)."""

    __slots__ = ("claims", "proof", "token")

    def __init__(self, token: str | None, claims: Claims | None, proof: str | None = None) -> None:
        self.token = token
        self.claims = claims
        self.proof = proof

    @property
    def partner(self) -> str | None:
        return self.claims.partner if self.claims else None

    @property
    def client_id(self) -> str | None:
        return self.claims.client_id if self.claims else None


ANONYMOUS = Caller(None, None)


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
