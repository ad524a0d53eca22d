"""What a SCIM filter (RFC 7644 §3.4.2.2) becomes once parsed: a small typed tree that
the repository turns into bound SQL expressions over a fixed set of attributes.

No text of a filter ever reaches SQL: attribute names are looked up in a table of
columns, values are bound parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CompareOp = Literal["eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le", "pr"]
Value = str | bool | int | float | None


@dataclass(frozen=True)
class Compare:
    """``attr op value`` (``pr``: the attribute has a value). ``attr`` is lower-case,
    dotted for sub-attributes (``name.givenname``, ``emails.value``)."""

    attr: str
    op: CompareOp
    value: Value = None


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    inner: Filter


Filter = Compare | And | Or | Not


class UnsupportedFilter(ValueError):
    """A filter naming an attribute, operator or value the resource cannot be filtered by."""
