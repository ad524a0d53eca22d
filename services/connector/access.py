"""Data-dependent access rules of the connector (the policies on the contracts come first)."""

from __future__ import annotations

from collections.abc import Iterable

from contracts.claims import Claims, Role
from mesh.errors import forbidden, not_found
from services.connector.models import Grant, OperationRow


def is_operator(claims: Claims) -> bool:
    return claims.has_role(Role.OPERATOR)


def administers(claims: Claims, partner: str) -> bool:
    """Partner admins of ``partner`` administer its connector things; operators may too."""
    return is_operator(claims) or (
        claims.has_role(Role.PARTNER_ADMIN) and claims.partner == partner
    )


def names(grant: Grant, partner: str | None, home: str | None = None) -> bool:
    """The grant is to ``partner`` (of ``home``, an allied ecosystem, when given), revoked or
    not; a grant across an alliance always names one partner."""
    if grant.grantee_eco != home:
        return False
    return grant.grantee == partner if home else grant.grantee in (None, partner)


def grant_applies(grant: Grant, partner: str | None, home: str | None = None) -> bool:
    """An unrevoked grant to ``partner``; across an alliance (``home``), the alliance's
    state is checked apart (:mod:`services.connector.alliances`)."""
    return grant.revoked_at is None and names(grant, partner, home)


def may_see(claims: Claims, op: OperationRow, grants: Iterable[Grant]) -> bool:
    """A caller from an allied ecosystem sees only what is granted to its partner."""
    fed = claims.fed
    if fed is not None and fed.eco != claims.eco:
        return any(grant_applies(g, fed.partner, fed.eco) for g in grants)
    if is_operator(claims) or op.partner == claims.partner or op.visibility == "ecosystem":
        return True
    return any(grant_applies(g, claims.partner) for g in grants)


def require_owner_admin(claims: Claims, op: OperationRow, grants: Iterable[Grant]) -> None:
    """404 for those who may not see the operation, 403 for those who see but do not own it."""
    if not may_see(claims, op, grants):
        raise not_found("operation")
    if not administers(claims, op.partner):
        raise forbidden("only the owning partner's admins may manage this operation")
