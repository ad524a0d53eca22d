"""SCIM PATCH (RFC 7644 §3.5.2) of a User: ``add``, ``replace`` and ``remove`` with or
without a path, in the forms directories send.

Operation names in any case (Entra ID: ``"Replace"``), booleans as strings (Entra ID:
``{"op": "Replace", "path": "active", "value": "False"}``), a path-less operation whose
value is an object of attributes (Okta), filtered paths on the one address a person has
(``emails[type eq "work"].value``). The operations apply to a copy of the writable
attributes, all or none: a failing operation changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from identity.domain import scim_filter
from identity.domain.scim_common import PATCH_OP, bad, boolean, text
from identity.domain.scim_filter import FilterError, Path

if TYPE_CHECKING:
    from identity.domain.scim_users import UserState

MAX_OPERATIONS = 100
READ_ONLY = frozenset({"id", "meta", "schemas", "groups", "roles"})
NAME_PARTS = {"givenname": "given_name", "familyname": "family_name", "formatted": "formatted"}


@dataclass(frozen=True)
class Operation:
    op: str  # add | replace | remove
    path: Path | None
    value: Any


@dataclass(frozen=True)
class Patch:
    operations: list[Operation]

    @classmethod
    def of(cls, body: dict[str, Any]) -> Patch:
        schemas = body.get("schemas")
        if not isinstance(schemas, list) or PATCH_OP not in schemas:
            raise bad("invalidSyntax", f"a PATCH request names the schema {PATCH_OP}")
        raw = body.get("Operations", body.get("operations"))
        if not isinstance(raw, list) or not raw or len(raw) > MAX_OPERATIONS:
            raise bad("invalidSyntax", f"Operations is a list of 1-{MAX_OPERATIONS} operations")
        ops = []
        for item in raw:
            if not isinstance(item, dict):
                raise bad("invalidSyntax", "each operation is an object")
            op = str(item.get("op", "")).lower()
            if op not in ("add", "replace", "remove"):
                raise bad("invalidSyntax", "op is add, replace or remove")
            path_text = item.get("path")
            if path_text is not None and not isinstance(path_text, str):
                raise bad("invalidPath", "path is a string")
            try:
                path = scim_filter.parse_path(path_text) if path_text else None
            except FilterError as exc:
                raise bad("invalidPath", str(exc)) from None
            if op == "remove" and path is None:
                raise bad("noTarget", "remove needs a path")
            if op != "remove" and "value" not in item:
                raise bad("invalidValue", f"{op} needs a value")
            ops.append(Operation(op, path, item.get("value")))
        return cls(ops)


def attribute_name(key: str) -> str:
    """An attribute named in a path-less operation's value (invalidPath if it is none)."""
    try:
        return scim_filter.attribute(key)
    except FilterError as exc:
        raise bad("invalidPath", str(exc)) from None


def _set(state: UserState, attr: str, sub: str | None, op: str, value: Any) -> UserState:
    """One attribute (``sub`` for name's parts) set to ``value`` (None: removed)."""
    gone = op == "remove"
    if attr == "active":
        return replace(state, active=False if gone else boolean(value, "active"))
    if attr == "username":
        if gone:
            raise bad("mutability", "userName is required")
        return replace(state, user_name=str(text(value, "userName", 120, required=True)))
    if attr == "password":
        if gone:
            raise bad("mutability", "a password can be replaced, not removed")
        text(value, "password", 256, required=True)
        return replace(state, password=True)
    if attr in ("displayname", "externalid") and sub is None:
        field = "display_name" if attr == "displayname" else "external_id"
        changes: dict[str, Any] = {field: None if gone else text(value, attr)}
        return replace(state, **changes)
    if attr == "name":
        if sub is not None:
            if sub not in NAME_PARTS:
                raise bad("invalidPath", f"name has no {sub}")
            part: dict[str, Any] = {NAME_PARTS[sub]: None if gone else text(value, sub)}
            return replace(state, **part)
        if gone:
            return replace(state, given_name=None, family_name=None, formatted=None)
        if not isinstance(value, dict):
            raise bad("invalidValue", "name is an object")
        for key, part in value.items():
            state = _set(state, "name", key.lower(), op, part)
        return state
    if attr == "emails":
        return _emails(state, sub, op, value)
    if attr in READ_ONLY:
        raise bad("mutability", f"{attr} is read-only")
    raise bad("invalidPath", f"no attribute {attr}")


def _emails(state: UserState, sub: str | None, op: str, value: Any) -> UserState:
    if op == "remove":
        return replace(state, email=None)
    if sub == "value":
        return replace(state, email=text(value, "emails.value", 254))
    if sub is not None and sub not in ("type", "primary"):
        raise bad("invalidPath", f"emails has no {sub}")
    if sub is not None:
        return state  # every address is the primary work one
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(e, dict) for e in items):
        raise bad("invalidValue", "emails is a list of {value, type, primary}")
    chosen = next((e for e in items if e.get("primary") is True), items[0])
    return replace(state, email=text(chosen.get("value"), "emails.value", 254))


def _filtered(state: UserState, operation: Operation) -> UserState:
    path = operation.path
    assert path is not None and path.where is not None
    if path.attr != "emails":
        raise bad("invalidPath", f"{path.attr} has no values to filter")
    element: dict[str, object] = {"value": state.email, "type": "work", "primary": True}
    vacant = state.email is None and operation.op != "remove"
    if not vacant and not scim_filter.matches(path.where, element):
        raise bad("noTarget", "the filter matches no address")
    return _emails(state, path.sub, operation.op, operation.value)


def apply_patch(patch: Patch, state: UserState) -> UserState:
    """The User's writable attributes after every operation, in order."""
    for operation in patch.operations:
        path = operation.path
        if path is None:
            if not isinstance(operation.value, dict):
                raise bad("invalidValue", "an operation without a path has an object value")
            for key, value in operation.value.items():
                attr = attribute_name(key)
                if attr in READ_ONLY or attr == "schemas":
                    continue  # read-only attributes in a request are ignored (RFC 7643 §2.2)
                head, _, sub = attr.partition(".")
                state = _set(state, head, sub or None, operation.op, value)
        elif path.where is not None:
            state = _filtered(state, operation)
        else:
            state = _set(state, path.attr, path.sub, operation.op, operation.value)
    return state


def password_of(body: dict[str, Any]) -> str | None:
    """The new password a POST, PUT or PATCH body carries (hashed before the transaction)."""
    found = {k.lower(): v for k, v in body.items()}.get("password")
    ops = body.get("Operations", body.get("operations"))
    for item in ops if isinstance(ops, list) else []:
        if not isinstance(item, dict) or str(item.get("op", "")).lower() == "remove":
            continue
        path, value = str(item.get("path") or "").lower(), item.get("value")
        if path == "password":
            found = value
        elif not path and isinstance(value, dict):
            found = {k.lower(): v for k, v in value.items()}.get("password", found)
    return found if isinstance(found, str) and 0 < len(found) <= 256 else None
