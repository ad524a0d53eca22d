"""The SCIM ``Group`` resource (RFC 7643 §4.2): a partner directory's groups of its own
people. Whenever members come or go, or a group is renamed or deleted, the roles its
members hold through the partner's group rules follow (:func:`apply_rules`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from identity.domain import scim_filter
from identity.domain.scim_admin import DIRECTORY_ROLES, Directory, apply_rules
from identity.domain.scim_common import (
    GROUP,
    Page,
    ScimError,
    bad,
    list_response,
    not_found,
    now,
    parse_filter,
    text,
    timestamp,
    unsupported,
    version,
)
from identity.domain.scim_patch import Patch, attribute_name
from identity.store import repository as repo
from identity.store import scim_repository as scim_repo
from identity.store.models import ScimGroup
from identity.store.scim_query import UnsupportedFilter
from identity.store.transaction import Tx

MAX_MEMBERS = 10_000
Check = Callable[[str], None]


def doc(tx: Tx, group: ScimGroup, base: str) -> dict[str, Any]:
    out: dict[str, Any] = {"schemas": [GROUP], "id": group.id}
    if group.external_id is not None:
        out["externalId"] = group.external_id
    out["displayName"] = group.display_name
    out["members"] = [
        {"value": p.id, "display": p.name, "type": "User", "$ref": f"{base}/Users/{p.id}"}
        for p in scim_repo.members_of(tx.s, group.id)
    ]
    out["meta"] = {
        "resourceType": "Group",
        "created": timestamp(group.created_at),
        "lastModified": timestamp(group.updated_at),
        "location": f"{base}/Groups/{group.id}",
        "version": version(out),
    }
    return out


def _group(tx: Tx, who: Directory, group_id: str, lock: bool = False) -> ScimGroup:
    group = scim_repo.get_group(tx.s, who.eco, who.partner, group_id, lock)
    if group is None:
        raise not_found("group")
    return group


def _name(tx: Tx, who: Directory, value: Any, but: str | None) -> str:
    name = str(text(value, "displayName", 200, required=True)).strip()
    if scim_repo.group_name_taken(tx.s, who.eco, who.partner, name, but):
        raise ScimError(409, f"a group named {name} exists", "uniqueness")
    return name


def _member_ids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_MEMBERS or not all(
        isinstance(m, dict) and isinstance(m.get("value"), str) for m in items
    ):
        raise bad("invalidValue", "members is a list of {value: <user id>}")
    return [m["value"] for m in items]


def _check_member(tx: Tx, who: Directory, person_id: str) -> None:
    person = scim_repo.get_person(tx.s, who.eco, who.partner, person_id)
    if person is None or set(person.roles) - DIRECTORY_ROLES:
        raise bad("invalidValue", f"{person_id} is not a user this directory manages")


class _Change:
    """Membership changes of one request, and the people whose roles must follow."""

    def __init__(self, tx: Tx, who: Directory, group: ScimGroup) -> None:
        self.tx, self.who, self.group = tx, who, group
        self.touched: set[str] = set()

    def add(self, ids: list[str]) -> None:
        for person_id in ids:
            _check_member(self.tx, self.who, person_id)
            if scim_repo.add_member(self.tx.s, self.group.id, person_id):
                self.touched.add(person_id)

    def remove(self, ids: list[str]) -> None:
        for person_id in ids:
            if scim_repo.remove_member(self.tx.s, self.group.id, person_id):
                self.touched.add(person_id)

    def current(self) -> list[str]:
        return [p.id for p in scim_repo.members_of(self.tx.s, self.group.id)]

    def set(self, ids: list[str]) -> None:
        self.remove([m for m in self.current() if m not in set(ids)])
        self.add(ids)

    def everyone(self) -> None:
        self.touched.update(self.current())

    def done(self, action: str, deleted: bool = False) -> None:
        if not deleted:
            self.group.updated_at = now()
        self.tx.s.flush()
        for person_id in sorted(self.touched):
            person = repo.get_person(self.tx.s, person_id)
            if person is not None:
                apply_rules(self.tx, person, self.who.actor)
        self.tx.audit(
            self.who.eco,
            action,
            actor=self.who.actor,
            target=self.group.id,
            partner=self.who.partner,
            members_changed=len(self.touched),
        )


def create(tx: Tx, who: Directory, body: dict[str, Any], base: str) -> dict[str, Any]:
    fields = {k.lower(): v for k, v in body.items()}
    moment = now()
    group = ScimGroup(
        id=uuid.uuid4().hex,
        eco=who.eco,
        partner=who.partner,
        display_name=_name(tx, who, fields.get("displayname"), None),
        external_id=text(fields.get("externalid"), "externalId"),
        created_at=moment,
        updated_at=moment,
    )
    repo.add(tx.s, group)
    change = _Change(tx, who, group)
    change.add(_member_ids(fields.get("members") or []))
    change.done("scim.group.created")
    return doc(tx, group, base)


def get(tx: Tx, who: Directory, group_id: str, base: str) -> dict[str, Any]:
    return doc(tx, _group(tx, who, group_id), base)


def search(
    tx: Tx, who: Directory, filter_text: str | None, page: Page, base: str
) -> dict[str, Any]:
    tree = parse_filter(filter_text)
    try:
        total, rows = scim_repo.find_groups(
            tx.s, who.eco, who.partner, tree, page.offset, page.count
        )
    except UnsupportedFilter as exc:
        raise unsupported(exc) from None
    return list_response(total, page, [doc(tx, g, base) for g in rows])


def put(
    tx: Tx, who: Directory, group_id: str, body: dict[str, Any], base: str, check: Check
) -> dict[str, Any]:
    group = _group(tx, who, group_id, lock=True)
    check(doc(tx, group, base)["meta"]["version"])
    fields = {k.lower(): v for k, v in body.items()}
    change = _Change(tx, who, group)
    group.display_name = _name(tx, who, fields.get("displayname"), group.id)
    group.external_id = text(fields.get("externalid"), "externalId")
    change.set(_member_ids(fields.get("members") or []))
    change.everyone()  # a new name may fall under other rules
    change.done("scim.group.replaced")
    return doc(tx, group, base)


def _attribute(change: _Change, attr: str, op: str, value: Any) -> None:
    tx, who, group = change.tx, change.who, change.group
    if attr == "displayname":
        if op == "remove":
            raise bad("mutability", "displayName is required")
        group.display_name = _name(tx, who, value, group.id)
        change.everyone()
    elif attr == "externalid":
        group.external_id = None if op == "remove" else text(value, "externalId")
    elif attr == "members":
        if op == "remove":
            change.remove(_member_ids(value) if value is not None else change.current())
        elif op == "replace":
            change.set(_member_ids(value))
        else:
            change.add(_member_ids(value))
    elif attr not in ("id", "meta", "schemas"):
        raise bad("invalidPath", f"no attribute {attr}")


def patch(
    tx: Tx, who: Directory, group_id: str, body: dict[str, Any], base: str, check: Check
) -> dict[str, Any]:
    group = _group(tx, who, group_id, lock=True)
    check(doc(tx, group, base)["meta"]["version"])
    change = _Change(tx, who, group)
    for operation in Patch.of(body).operations:
        path = operation.path
        if path is None:
            if not isinstance(operation.value, dict):
                raise bad("invalidValue", "an operation without a path has an object value")
            for key, value in operation.value.items():
                _attribute(change, attribute_name(key), operation.op, value)
        elif path.where is not None:
            if path.attr != "members" or operation.op != "remove" or path.sub:
                raise bad("invalidPath", 'a filtered path removes members[value eq "…"]')
            gone = [m for m in change.current() if scim_filter.matches(path.where, {"value": m})]
            if not gone:
                raise bad("noTarget", "the filter matches no member")
            change.remove(gone)
        else:
            if path.sub is not None and not (path.attr == "members" and path.sub == "value"):
                raise bad("invalidPath", f"{path.attr}.{path.sub} cannot be changed")
            _attribute(change, path.attr, operation.op, operation.value)
    change.done("scim.group.updated")
    return doc(tx, group, base)


def delete(tx: Tx, who: Directory, group_id: str, base: str, check: Check) -> None:
    group = _group(tx, who, group_id, lock=True)
    check(doc(tx, group, base)["meta"]["version"])
    change = _Change(tx, who, group)
    change.everyone()
    scim_repo.drop_group(tx.s, group)
    change.done("scim.group.deleted", deleted=True)
