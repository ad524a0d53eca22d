"""Partner admins administer the people of their own company: who they are, what they may
grant, and whom they may change.

Operators administer the whole ecosystem (``Admin.partner is None``). A partner admin is a
person of the ecosystem whose token carries scope ``profile:write`` and role
``partner_admin``; the account itself must still be active and hold the role (a suspended or
demoted admin is refused at once, before revocation reaches any cache). Refusals say
FORBIDDEN: the company and the person's existence are public in the ecosystem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from identity.store import repository as repo
from identity.store.transaction import Tx
from mesh.errors import MeshError, not_found


@dataclass(frozen=True)
class Admin:
    """Who administers people: ``partner`` None for an operator (every company)."""

    sub: str
    partner: str | None
    roles: frozenset[str]

    def company(self, asked: str | None) -> str | None:
        """The company a listing covers: a partner admin's own, whatever was asked."""
        if self.partner is None:
            return asked
        if asked and asked != self.partner:
            raise _forbidden("partner admins see the people of their own company only")
        return self.partner


def _forbidden(detail: str) -> MeshError:
    return MeshError(ErrorCode.FORBIDDEN, detail)


def partner_admin(tx: Tx, eco: str, claims: dict[str, Any]) -> Admin:
    """The caller (the verified, unrevoked claims of its token) as a partner admin of its
    company, or FORBIDDEN."""
    scopes, roles = set(str(claims.get("scope", "")).split()), set(claims.get("roles", []))
    partner = claims.get("partner")
    if (
        Scope.PROFILE_WRITE.value not in scopes
        or Role.PARTNER_ADMIN.value not in roles
        or not partner
        or claims.get("fed")
    ):
        raise _forbidden("operators of this ecosystem or partner admins only")
    person = repo.get_person(tx.s, str(claims.get("sub")))
    if (
        person is None
        or person.eco != eco
        or person.partner != partner
        or not person.active
        or Role.PARTNER_ADMIN.value not in person.roles
    ):
        raise _forbidden("operators of this ecosystem or partner admins only")
    return Admin(person.id, person.partner, frozenset(person.roles))


def check_grant(admin: Admin, partner: str, roles: list[str] | None) -> None:
    """May ``admin`` give ``roles`` in ``partner``? Operators: anything; partner admins: in
    their own company, roles they hold themselves."""
    if admin.partner is None:
        return
    if partner != admin.partner:
        raise _forbidden("partner admins invite and manage people of their own company only")
    beyond = sorted(set(roles or []) - admin.roles)
    if beyond:
        raise _forbidden(f"a partner admin grants only roles it holds (not {beyond})")


def check_membership_change(
    tx: Tx,
    eco: str,
    admin: Admin,
    person_id: str,
    roles: list[str] | None,
    active: bool | None,
) -> None:
    """Refuse what a partner admin may not do to ``person_id`` (operators may do anything)."""
    if admin.partner is None:
        return
    person = repo.get_person(tx.s, person_id)
    if person is None or person.eco != eco:
        raise not_found("person")
    check_grant(admin, person.partner, roles)
    if set(person.roles) - admin.roles:
        raise _forbidden("this person holds roles beyond yours: ask an operator")
    if person.id == admin.sub and (
        active is False or (roles is not None and Role.PARTNER_ADMIN.value not in roles)
    ):
        raise _forbidden("you cannot suspend yourself or give up your own admin role here")
