"""Who may call an operation: policy as data, declared beside every operation.

The gateway enforces a policy before it routes a call; the owning service
enforces the same policy again on the token it receives (zero trust). Both use
:func:`decide`, so the rule is written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from contracts.claims import Claims, Role, Scope
from contracts.errors import ErrorCode

ANY_ROLE: frozenset[Role] = frozenset(Role)


@dataclass(frozen=True)
class Policy:
    """The access rule of one operation.

    ``scope``: the scope the token must carry (``None`` only with ``public``).
    ``roles``: the token must carry at least one of these roles.
    ``eco_param``: request field that must equal ``token.eco`` (``None``: not bound).
    ``partner_param``: request field that must equal ``token.partner`` unless the
    token has one of ``partner_bypass`` roles.
    """

    scope: Scope | None
    roles: frozenset[Role] = ANY_ROLE
    eco_param: str | None = "eco"
    partner_param: str | None = None
    partner_bypass: frozenset[Role] = frozenset({Role.OPERATOR})
    public: bool = False

    def describe(self) -> dict[str, Any]:
        """The policy as the ``x-partnermesh-policy`` OpenAPI extension."""
        return {
            "public": self.public,
            "scope": self.scope.value if self.scope else None,
            "roles": sorted(r.value for r in self.roles),
            "ecosystem_bound_to": self.eco_param,
            "partner_bound_to": self.partner_param,
            "partner_binding_bypassed_by": sorted(r.value for r in self.partner_bypass)
            if self.partner_param
            else [],
        }


@dataclass(frozen=True)
class Denial:
    code: ErrorCode
    reason: str


def decide(policy: Policy, claims: Claims | None, params: dict[str, Any]) -> Denial | None:
    """Return why ``claims`` may not call an operation with ``params``, or ``None``."""
    if policy.public:
        return None
    if claims is None:
        return Denial(ErrorCode.UNAUTHENTICATED, "a bearer access token is required")
    if policy.scope is not None and not claims.has_scope(policy.scope):
        return Denial(ErrorCode.FORBIDDEN, f"the token lacks scope {policy.scope.value}")
    if policy.roles.isdisjoint(claims.roles):  # has none of the roles
        wanted = ", ".join(sorted(r.value for r in policy.roles))
        return Denial(ErrorCode.FORBIDDEN, f"this operation needs one of the roles: {wanted}")
    if policy.eco_param and params.get(policy.eco_param) != claims.eco:
        return Denial(ErrorCode.FORBIDDEN, "the token was issued for another ecosystem")
    if (
        policy.partner_param
        and params.get(policy.partner_param) != claims.partner
        and policy.partner_bypass.isdisjoint(claims.roles)
    ):
        return Denial(ErrorCode.FORBIDDEN, "the token acts for another partner")
    return None


@dataclass(frozen=True)
class Operation:
    """One request/reply operation: its NATS subject, HTTP route, models and policy."""

    name: str
    subject: str
    method: str
    path: str
    request: type[BaseModel]
    reply: type[BaseModel]
    policy: Policy
    summary: str
    status: int = 200
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def service(self) -> str:
        # pm.v1.<service>.<...>
        return self.subject.split(".")[2]
