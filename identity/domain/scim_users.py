"""The SCIM ``User`` resource (RFC 7643 §4.1) over identity's people, one partner's.

A directory sees and changes the people of its own partner only (anyone else is not
found). It creates people through :func:`identity.domain.directory.create_person`, and
deactivating (``active: false``, or deleting) goes through
:func:`identity.domain.directory.update_membership`, which cuts the person off as
disabling does: sessions end, refresh and access tokens are revoked. A deleted person is
kept deactivated for the audit trail, out of every group, its userName freed. People
holding roles a directory cannot give (operators, brokers) are read-only to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from identity.domain import directory
from identity.domain.scim_admin import DIRECTORY_ROLES, Directory, apply_rules
from identity.domain.scim_common import (
    USER,
    Page,
    ScimError,
    bad,
    boolean,
    from_mesh,
    list_response,
    not_found,
    now,
    parse_filter,
    text,
    timestamp,
    unsupported,
    version,
)
from identity.domain.scim_patch import Patch, apply_patch
from identity.store import scim_repository as scim_repo
from identity.store.models import Person
from identity.store.scim_query import UnsupportedFilter
from identity.store.transaction import Tx
from mesh.errors import MeshError


@dataclass(frozen=True)
class UserState:
    """The writable attributes of a User."""

    user_name: str
    display_name: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    formatted: str | None = None
    email: str | None = None
    active: bool = True
    external_id: str | None = None
    password: bool = False  # a new password was given (its hash travels beside)

    def name(self) -> str:
        parts = " ".join(p for p in (self.given_name, self.family_name) if p)
        return (self.display_name or self.formatted or parts or self.user_name)[:200]


def doc(tx: Tx, person: Person, base: str) -> dict[str, Any]:
    """The User representation of ``person``, with meta.version its ETag."""
    name = {"formatted": person.name, "givenName": person.given_name}
    name["familyName"] = person.family_name
    out: dict[str, Any] = {"schemas": [USER], "id": person.id}
    if person.external_id is not None:
        out["externalId"] = person.external_id
    out |= {
        "userName": person.username,
        "name": {k: v for k, v in name.items() if v is not None},
        "displayName": person.name,
        "active": person.active,
        "emails": [{"value": person.email, "type": "work", "primary": True}]
        if person.email
        else [],
        "groups": [
            {"value": g.id, "display": g.display_name, "$ref": f"{base}/Groups/{g.id}"}
            for g in scim_repo.groups_of(tx.s, person.id)
        ],
        "roles": [{"value": r} for r in person.roles],
    }
    out["meta"] = {
        "resourceType": "User",
        "created": timestamp(person.created_at),
        "lastModified": timestamp(person.updated_at or person.created_at),
        "location": f"{base}/Users/{person.id}",
        "version": version(out),
    }
    return out


def _email(value: Any) -> str | None:
    if value in (None, []):
        return None
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise bad("invalidValue", "emails is a list of {value, type, primary}")
    chosen = next((e for e in value if e.get("primary") is True), value[0])
    return text(chosen.get("value"), "emails.value", 254)


def state_of(body: dict[str, Any]) -> UserState:
    """The writable attributes a POST or PUT body gives (readOnly ones are ignored)."""
    fields = {k.lower(): v for k, v in body.items()}
    name = fields.get("name") or {}
    if not isinstance(name, dict):
        raise bad("invalidValue", "name is an object")
    name = {k.lower(): v for k, v in name.items()}
    user_name = text(fields.get("username"), "userName", 120, required=True)
    return UserState(
        user_name=str(user_name),
        display_name=text(fields.get("displayname"), "displayName"),
        given_name=text(name.get("givenname"), "name.givenName"),
        family_name=text(name.get("familyname"), "name.familyName"),
        formatted=text(name.get("formatted"), "name.formatted"),
        email=_email(fields.get("emails")),
        active=boolean(fields["active"], "active") if "active" in fields else True,
        external_id=text(fields.get("externalid"), "externalId"),
        password=fields.get("password") is not None,
    )


def current_state(person: Person) -> UserState:
    return UserState(
        user_name=person.username,
        display_name=person.name,
        given_name=person.given_name,
        family_name=person.family_name,
        formatted=None,
        email=person.email,
        active=person.active,
        external_id=person.external_id,
    )


def _check_user_name(tx: Tx, who: Directory, user_name: str, but: str | None) -> None:
    try:
        directory.check_username(user_name)
    except MeshError as exc:
        raise from_mesh(exc) from None
    if scim_repo.username_taken(tx.s, who.eco, user_name, but):
        raise ScimError(409, f"userName {user_name} is taken", "uniqueness")


def create(
    tx: Tx, who: Directory, body: dict[str, Any], password_hash: str | None, base: str
) -> dict[str, Any]:
    state = state_of(body)
    _check_user_name(tx, who, state.user_name, None)
    try:
        person = directory.create_person(
            tx,
            who.eco,
            state.user_name,
            who.partner,
            state.name(),
            ["member"],
            password_hash,
            state.email,
            who.actor,
        )
    except MeshError as exc:
        raise from_mesh(exc) from None
    person.external_id, person.given_name = state.external_id, state.given_name
    person.family_name, person.updated_at = state.family_name, now()
    if not state.active:
        directory.update_membership(tx, who.eco, person.id, None, False, who.actor)
    tx.s.flush()
    return doc(tx, person, base)


def _person(tx: Tx, who: Directory, person_id: str, lock: bool = False) -> Person:
    person = scim_repo.get_person(tx.s, who.eco, who.partner, person_id, lock)
    if person is None:
        raise not_found("user")
    return person


def _writable(person: Person) -> None:
    if set(person.roles) - DIRECTORY_ROLES:
        raise ScimError(403, "this person holds roles a directory does not manage")


def get(tx: Tx, who: Directory, person_id: str, base: str) -> dict[str, Any]:
    return doc(tx, _person(tx, who, person_id), base)


def search(
    tx: Tx, who: Directory, filter_text: str | None, page: Page, base: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tree = parse_filter(filter_text)
    try:
        total, rows = scim_repo.find_people(
            tx.s, who.eco, who.partner, tree, page.offset, page.count
        )
    except UnsupportedFilter as exc:
        raise unsupported(exc) from None
    resources = [doc(tx, p, base) for p in rows]
    return list_response(total, page, resources), resources


def _store(
    tx: Tx, who: Directory, person: Person, new: UserState, password_hash: str | None
) -> None:
    """Write ``new`` over the person; deactivation cuts it off (update_membership)."""
    if new.user_name != person.username:
        _check_user_name(tx, who, new.user_name, person.id)
        person.username = new.user_name
    person.name, person.email = new.name(), new.email
    person.given_name, person.family_name = new.given_name, new.family_name
    person.external_id, person.updated_at = new.external_id, now()
    if new.password and password_hash:
        person.password_hash = password_hash
    tx.s.flush()
    if new.active != person.active:
        directory.update_membership(tx, who.eco, person.id, None, new.active, who.actor)
    else:
        tx.audit(
            who.eco, "scim.user.updated", actor=who.actor, target=person.id, partner=who.partner
        )


def _to_write(tx: Tx, who: Directory, person_id: str, base: str, check: Any) -> Person:
    """The person, locked, at the version the caller expects, and a directory may change."""
    person = _person(tx, who, person_id, lock=True)
    check(doc(tx, person, base)["meta"]["version"])
    _writable(person)
    return person


def put(
    tx: Tx,
    who: Directory,
    person_id: str,
    body: dict[str, Any],
    password_hash: str | None,
    base: str,
    check: Any,
) -> dict[str, Any]:
    person = _to_write(tx, who, person_id, base, check)
    new = state_of(body)
    if "active" not in {k.lower() for k in body}:
        new = replace(new, active=person.active)  # an absent active leaves it as it is
    _store(tx, who, person, new, password_hash)
    return doc(tx, person, base)


def patch(
    tx: Tx,
    who: Directory,
    person_id: str,
    body: dict[str, Any],
    password_hash: str | None,
    base: str,
    check: Any,
) -> dict[str, Any]:
    person = _to_write(tx, who, person_id, base, check)
    new = apply_patch(Patch.of(body), current_state(person))
    _store(tx, who, person, new, password_hash)
    return doc(tx, person, base)


def delete(tx: Tx, who: Directory, person_id: str, base: str, check: Any) -> None:
    """Deprovision: cut off (as disabling), out of every group, userName freed."""
    person = _person(tx, who, person_id, lock=True)
    check(doc(tx, person, base)["meta"]["version"])
    _writable(person)
    if person.active:
        directory.update_membership(tx, who.eco, person.id, None, False, who.actor)
    scim_repo.leave_all_groups(tx.s, person.id)
    apply_rules(tx, person, who.actor)  # the roles its groups gave go with them
    person.username = f"removed.{person.id}"
    person.external_id, person.removed_at = None, now()
    tx.s.flush()
    tx.audit(who.eco, "scim.user.deleted", actor=who.actor, target=person.id, partner=who.partner)
