"""A partner's SCIM provisioning, the admin's side: bearer tokens for its directory and
the rules that map the directory's groups to roles.

A SCIM token speaks for one partner of one ecosystem: ``pmscim_`` and 256 random bits,
shown once, stored as a SHA-256 hash; it can be listed and revoked. It is no OAuth token
(no JWT: the gateway and the admin API refuse it) and OAuth tokens are refused where it
is asked for. Group rules give roles a partner's directory may hand out: at most
``member`` and ``partner_admin``, and for a partner admin only roles it holds itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from contracts.claims import Role
from identity.domain import company_admin, directory
from identity.domain.company_admin import Admin
from identity.domain.crypto import digest, new_secret
from identity.domain.scim_common import ScimError, timestamp
from identity.store import repository as repo
from identity.store import scim_repository as scim_repo
from identity.store.models import Person, ScimToken
from identity.store.transaction import Tx
from mesh.errors import not_found

PREFIX = "pmscim_"
# What a partner's directory may give its people: never operator or broker powers.
DIRECTORY_ROLES = frozenset({Role.MEMBER.value, Role.PARTNER_ADMIN.value})
MAX_RULES = 200


@dataclass(frozen=True)
class Directory:
    """Whom a SCIM request speaks for: a partner of an ecosystem, through token ``token``."""

    eco: str
    partner: str
    token: str

    @property
    def actor(self) -> str:
        return f"scim:{self.token}"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def issue_token(
    tx: Tx, eco: str, partner: str, name: str, ttl_s: int | None, admin: Admin
) -> tuple[ScimToken, str]:
    admin.company(partner)
    if repo.get_partner(tx.s, eco, partner) is None:
        raise not_found("partner")
    secret = PREFIX + new_secret()
    now = datetime.now(UTC)
    row = ScimToken(
        id=uuid.uuid4().hex,
        token_hash=digest(secret),
        eco=eco,
        partner=partner,
        name=name,
        created_by=admin.sub,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s) if ttl_s else None,
        revoked=False,
    )
    repo.add(tx.s, row)
    tx.audit(eco, "admin.scim_token.issued", actor=admin.sub, target=row.id, partner=partner)
    return row, secret


def revoke_token(tx: Tx, eco: str, partner: str, token_id: str, admin: Admin) -> None:
    admin.company(partner)
    row = scim_repo.get_scim_token(tx.s, eco, token_id)
    if row is None or row.partner != partner:
        raise not_found("SCIM token")
    row.revoked = True
    tx.s.flush()
    tx.audit(eco, "admin.scim_token.revoked", actor=admin.sub, target=row.id, partner=partner)


def list_tokens(tx: Tx, eco: str, partner: str, admin: Admin) -> list[dict[str, Any]]:
    admin.company(partner)
    return [view_token(r) for r in scim_repo.list_scim_tokens(tx.s, eco, partner)]


def view_token(row: ScimToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "partner": row.partner,
        "name": row.name,
        "created_by": row.created_by,
        "created_at": timestamp(row.created_at),
        "expires_at": timestamp(row.expires_at),
        "last_used_at": timestamp(row.last_used_at),
        "revoked": row.revoked,
    }


def authenticate(tx: Tx, eco: str, secret: str | None) -> Directory:
    """The directory a bearer token speaks for, or 401: no, an unknown, revoked or
    expired token, or one of another ecosystem."""
    row = scim_repo.scim_token_by_hash(tx.s, digest(secret)) if secret else None
    now = datetime.now(UTC)
    if (
        row is None
        or row.eco != eco
        or row.revoked
        or (row.expires_at is not None and _aware(row.expires_at) <= now)
        or repo.get_partner(tx.s, eco, row.partner) is None
    ):
        raise ScimError(401, "a valid SCIM token of this ecosystem is needed")
    if row.last_used_at is None or _aware(row.last_used_at) < now - timedelta(minutes=1):
        row.last_used_at = now
    return Directory(eco, row.partner, row.id)


# --- group rules --------------------------------------------------------------------------


def view_rules(tx: Tx, eco: str, partner: str, admin: Admin) -> list[dict[str, Any]]:
    admin.company(partner)
    return [
        {"group": r.group_name, "roles": r.roles} for r in scim_repo.role_rules(tx.s, eco, partner)
    ]


def grantable_roles(admin: Admin) -> list[str]:
    """The roles ``admin`` may put in a rule: what a directory may give, and for a partner
    admin only what it holds itself (:func:`company_admin.check_grant`)."""
    if admin.partner is None:
        return sorted(DIRECTORY_ROLES)
    return sorted(DIRECTORY_ROLES & admin.roles)


def set_rules(
    tx: Tx, eco: str, partner: str, rules: list[tuple[str, list[str]]], admin: Admin
) -> list[dict[str, Any]]:
    """Replace the partner's rules and apply them to its people at once."""
    admin.company(partner)
    if repo.get_partner(tx.s, eco, partner) is None:
        raise not_found("partner")
    merged: dict[str, set[str]] = {}
    for group, roles in rules:
        beyond = sorted(set(roles) - DIRECTORY_ROLES)
        if beyond:
            raise directory.invalid_field("rules", f"a directory cannot give {beyond}")
        company_admin.check_grant(admin, partner, roles)
        merged.setdefault(group.strip(), set()).update(roles)
    if "" in merged:
        raise directory.invalid_field("rules", "each rule names a group")
    scim_repo.replace_role_rules(tx.s, eco, partner, {g: sorted(r) for g, r in merged.items()})
    for person in scim_repo.people_with_group_roles(tx.s, eco, partner):
        apply_rules(tx, person, admin.sub)
    tx.audit(eco, "admin.scim_rules.updated", actor=admin.sub, target=partner, partner=partner)
    return view_rules(tx, eco, partner, admin)


def apply_rules(tx: Tx, person: Person, actor: str) -> None:
    """Bring a person's roles in line with its groups: the roles it holds only through
    groups follow the rules; roles given otherwise stay."""
    rules = {
        r.group_name.lower(): r.roles
        for r in scim_repo.role_rules(tx.s, person.eco, person.partner)
    }
    mapped: set[str] = set()
    for name in scim_repo.group_names_of(tx.s, person.id):
        mapped.update(rules.get(name.lower(), []))
    own = set(person.roles) - set(person.group_roles or [])
    roles = sorted(own | mapped | {Role.MEMBER.value})
    group_roles = sorted(mapped - own)
    if roles != sorted(person.roles) or group_roles != sorted(person.group_roles or []):
        person.group_roles = group_roles
        directory.update_membership(tx, person.eco, person.id, roles, None, actor)
