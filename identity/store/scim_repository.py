"""The SQL of SCIM provisioning: tokens, a partner's people and groups, filters, rules.

A filter arrives as a :mod:`identity.store.scim_query` tree and becomes a where-clause
over the columns listed here; every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from identity.store.models import Person, ScimGroup, ScimMember, ScimRoleRule, ScimToken
from identity.store.scim_query import And, Compare, Filter, Not, Or, UnsupportedFilter


@dataclass(frozen=True)
class Attr:
    """A filterable attribute: its column (or a builder) and how it compares."""

    column: Any
    kind: str = "string"  # string | boolean | datetime | members | constant
    case_exact: bool = False


_LAST_MODIFIED_P = func.coalesce(Person.updated_at, Person.created_at)
USER_ATTRS: dict[str, Attr] = {
    "id": Attr(Person.id, case_exact=True),
    "username": Attr(Person.username),
    "displayname": Attr(Person.name),
    "name.formatted": Attr(Person.name),
    "name.givenname": Attr(Person.given_name),
    "name.familyname": Attr(Person.family_name),
    "externalid": Attr(Person.external_id, case_exact=True),
    "active": Attr(Person.active, "boolean"),
    "emails": Attr(Person.email),
    "emails.value": Attr(Person.email),
    "emails.type": Attr(Person.email, "constant"),  # every address is the "work" one
    "emails.primary": Attr(Person.email, "constant"),
    "meta.created": Attr(Person.created_at, "datetime"),
    "meta.lastmodified": Attr(_LAST_MODIFIED_P, "datetime"),
}
GROUP_ATTRS: dict[str, Attr] = {
    "id": Attr(ScimGroup.id, case_exact=True),
    "displayname": Attr(ScimGroup.display_name),
    "externalid": Attr(ScimGroup.external_id, case_exact=True),
    "members": Attr(None, "members"),
    "members.value": Attr(None, "members"),
    "meta.created": Attr(ScimGroup.created_at, "datetime"),
    "meta.lastmodified": Attr(ScimGroup.updated_at, "datetime"),
}
CONSTANTS: dict[str, object] = {"emails.type": "work", "emails.primary": True}


def _datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise UnsupportedFilter("a date is compared with a string (RFC 3339)")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UnsupportedFilter(f"not a date: {value!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _string(spec: Attr, f: Compare) -> ColumnElement[bool]:
    if not isinstance(f.value, str):
        raise UnsupportedFilter(f"{f.attr} is compared with a string")
    col, value = spec.column, f.value
    if not spec.case_exact:
        col, value = func.lower(col), value.lower()
    ops: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: col == value,
        "ne": lambda: or_(spec.column.is_(None), col != value),
        "co": lambda: col.contains(value, autoescape=True),
        "sw": lambda: col.startswith(value, autoescape=True),
        "ew": lambda: col.endswith(value, autoescape=True),
        "gt": lambda: col > value,
        "ge": lambda: col >= value,
        "lt": lambda: col < value,
        "le": lambda: col <= value,
    }
    return ops[f.op]()


def _typed(spec: Attr, f: Compare) -> ColumnElement[bool]:
    col = spec.column
    if spec.kind == "boolean":
        if f.op not in ("eq", "ne") or not isinstance(f.value, bool):
            raise UnsupportedFilter(f"{f.attr} is compared with eq/ne and true/false")
        return cast(ColumnElement[bool], col.is_(f.value) if f.op == "eq" else col.is_not(f.value))
    when = _datetime(f.value)
    ops = {"eq": col == when, "ne": col != when, "gt": col > when, "ge": col >= when}
    ops |= {"lt": col < when, "le": col <= when}
    if f.op not in ops:
        raise UnsupportedFilter(f"{f.attr} is a date: eq ne gt ge lt le")
    return cast(ColumnElement[bool], ops[f.op])


def _members(f: Compare) -> ColumnElement[bool]:
    link = select(ScimMember.person_id).where(ScimMember.group_id == ScimGroup.id)
    if f.op == "pr":
        return exists(link)
    if f.op != "eq" or not isinstance(f.value, str):
        raise UnsupportedFilter('members are filtered with pr or value eq "<id>"')
    return exists(link.where(ScimMember.person_id == f.value))


def _compare(f: Compare, attrs: dict[str, Attr]) -> ColumnElement[bool]:
    spec = attrs.get(f.attr)
    if spec is None:
        raise UnsupportedFilter(f"cannot filter by {f.attr}")
    if spec.kind == "members":
        return _members(f)
    if f.op == "pr":
        col = spec.column
        return and_(col.is_not(None), col != "") if spec.kind == "string" else col.is_not(None)
    if spec.kind == "constant":
        if f.op not in ("eq", "ne"):
            raise UnsupportedFilter(f"{f.attr} is compared with eq or ne")
        same = f.value == CONSTANTS[f.attr] or (
            isinstance(f.value, str) and f.value.lower() == CONSTANTS[f.attr]
        )
        return spec.column.is_not(None) if same == (f.op == "eq") else false()
    if spec.kind == "string":
        return _string(spec, f)
    return _typed(spec, f)


def where(f: Filter | None, attrs: dict[str, Attr]) -> ColumnElement[bool]:
    """The where-clause of filter ``f`` over ``attrs`` (UnsupportedFilter when it cannot be)."""
    if f is None:
        return true()
    if isinstance(f, Compare):
        return _compare(f, attrs)
    if isinstance(f, And):
        return and_(where(f.left, attrs), where(f.right, attrs))
    if isinstance(f, Or):
        return or_(where(f.left, attrs), where(f.right, attrs))
    if isinstance(f, Not):
        return not_(where(f.inner, attrs))
    raise UnsupportedFilter("not a filter")


def _page(s: Session, query: Any, order: Sequence[Any], offset: int, limit: int) -> Any:
    total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = s.scalars(query.order_by(*order).offset(offset).limit(limit)).all() if limit else []
    return int(total), list(rows)


# --- people -------------------------------------------------------------------------------


def _people(eco: str, partner: str) -> Any:
    return select(Person).where(
        Person.eco == eco, Person.partner == partner, Person.removed_at.is_(None)
    )


def find_people(
    s: Session, eco: str, partner: str, f: Filter | None, offset: int, limit: int
) -> tuple[int, list[Person]]:
    """(total, one page) of a partner's people matching ``f``, oldest first."""
    query = _people(eco, partner).where(where(f, USER_ATTRS))
    total, rows = _page(s, query, (Person.created_at, Person.id), offset, limit)
    return total, rows


def get_person(
    s: Session, eco: str, partner: str, person_id: str, lock: bool = False
) -> Person | None:
    """One of the partner's people; ``lock``: held until the transaction ends (a write
    that checked its If-Match version is not overtaken by another)."""
    if lock:  # a write first: SQLite takes its write lock here, PostgreSQL the row's
        claim = update(Person).where(Person.id == person_id, Person.eco == eco)
        s.execute(
            claim.values(updated_at=Person.updated_at),
            execution_options={"synchronize_session": False},
        )
    query = _people(eco, partner).where(Person.id == person_id)
    return s.scalars(query.with_for_update() if lock else query).first()


def username_taken(s: Session, eco: str, username: str, but: str | None = None) -> bool:
    """Is ``username`` (in any case) someone's in the ecosystem (other than ``but``)?"""
    query = select(Person.id).where(
        Person.eco == eco, func.lower(Person.username) == username.lower()
    )
    if but is not None:
        query = query.where(Person.id != but)
    return s.scalars(query).first() is not None


# --- groups -------------------------------------------------------------------------------


def _groups(eco: str, partner: str) -> Any:
    return select(ScimGroup).where(ScimGroup.eco == eco, ScimGroup.partner == partner)


def find_groups(
    s: Session, eco: str, partner: str, f: Filter | None, offset: int, limit: int
) -> tuple[int, list[ScimGroup]]:
    query = _groups(eco, partner).where(where(f, GROUP_ATTRS))
    total, rows = _page(s, query, (ScimGroup.created_at, ScimGroup.id), offset, limit)
    return total, rows


def get_group(
    s: Session, eco: str, partner: str, group_id: str, lock: bool = False
) -> ScimGroup | None:
    if lock:
        claim = update(ScimGroup).where(ScimGroup.id == group_id, ScimGroup.eco == eco)
        s.execute(
            claim.values(updated_at=ScimGroup.updated_at),
            execution_options={"synchronize_session": False},
        )
    query = _groups(eco, partner).where(ScimGroup.id == group_id)
    return s.scalars(query.with_for_update() if lock else query).first()


def group_name_taken(s: Session, eco: str, partner: str, name: str, but: str | None = None) -> bool:
    query = _groups(eco, partner).where(func.lower(ScimGroup.display_name) == name.lower())
    if but is not None:
        query = query.where(ScimGroup.id != but)
    return s.scalars(query).first() is not None


def members_of(s: Session, group_id: str) -> list[Person]:
    query = (
        select(Person)
        .join(ScimMember, ScimMember.person_id == Person.id)
        .where(ScimMember.group_id == group_id, Person.removed_at.is_(None))
        .order_by(Person.username)
    )
    return list(s.scalars(query).all())


def groups_of(s: Session, person_id: str) -> list[ScimGroup]:
    query = (
        select(ScimGroup)
        .join(ScimMember, ScimMember.group_id == ScimGroup.id)
        .where(ScimMember.person_id == person_id)
        .order_by(ScimGroup.display_name)
    )
    return list(s.scalars(query).all())


def add_member(s: Session, group_id: str, person_id: str) -> bool:
    """Add a member; False if it already was one."""
    if s.get(ScimMember, (group_id, person_id)) is not None:
        return False
    s.add(ScimMember(group_id=group_id, person_id=person_id))
    s.flush()
    return True


def remove_member(s: Session, group_id: str, person_id: str) -> bool:
    result = s.execute(
        delete(ScimMember).where(ScimMember.group_id == group_id, ScimMember.person_id == person_id)
    )
    return bool(getattr(result, "rowcount", 0))


def drop_group(s: Session, group: ScimGroup) -> None:
    s.execute(delete(ScimMember).where(ScimMember.group_id == group.id))
    s.delete(group)
    s.flush()


def leave_all_groups(s: Session, person_id: str) -> list[str]:
    """Take a person out of every group; the ids of the groups it was in."""
    ids = list(s.scalars(select(ScimMember.group_id).where(ScimMember.person_id == person_id)))
    s.execute(delete(ScimMember).where(ScimMember.person_id == person_id))
    return [str(i) for i in ids]


def group_names_of(s: Session, person_id: str) -> list[str]:
    return [g.display_name for g in groups_of(s, person_id)]


def people_with_group_roles(s: Session, eco: str, partner: str) -> list[Person]:
    """The partner's people in any group (whose roles the rules may change)."""
    in_group = select(ScimMember.person_id).join(ScimGroup, ScimGroup.id == ScimMember.group_id)
    query = _people(eco, partner).where(
        Person.id.in_(in_group.where(ScimGroup.eco == eco, ScimGroup.partner == partner))
    )
    return list(s.scalars(query).all())


# --- role rules ---------------------------------------------------------------------------


def role_rules(s: Session, eco: str, partner: str) -> list[ScimRoleRule]:
    query = select(ScimRoleRule).where(ScimRoleRule.eco == eco, ScimRoleRule.partner == partner)
    return list(s.scalars(query.order_by(ScimRoleRule.group_name)).all())


def replace_role_rules(s: Session, eco: str, partner: str, rules: dict[str, list[str]]) -> None:
    s.execute(delete(ScimRoleRule).where(ScimRoleRule.eco == eco, ScimRoleRule.partner == partner))
    for group, roles in rules.items():
        s.add(ScimRoleRule(eco=eco, partner=partner, group_name=group, roles=roles))
    s.flush()


# --- tokens -------------------------------------------------------------------------------


def scim_token_by_hash(s: Session, token_hash: str) -> ScimToken | None:
    return s.scalars(select(ScimToken).where(ScimToken.token_hash == token_hash)).first()


def get_scim_token(s: Session, eco: str, token_id: str) -> ScimToken | None:
    row = s.get(ScimToken, token_id)
    return row if row is not None and row.eco == eco else None


def list_scim_tokens(s: Session, eco: str, partner: str) -> list[ScimToken]:
    query = select(ScimToken).where(ScimToken.eco == eco, ScimToken.partner == partner)
    return list(s.scalars(query.order_by(ScimToken.created_at)).all())
