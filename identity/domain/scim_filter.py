"""SCIM filters (RFC 7644 §3.4.2.2) and attribute paths, parsed into typed trees.

A tokenizer and a recursive-descent parser, bounded in length, depth and terms:
``and`` binds tighter than ``or``, ``not (...)`` negates, parentheses group, and a value
path (``emails[type eq "work" and value co "@x"]``) filters a multi-valued attribute.
Attribute names are matched case-insensitively and may carry the schema URN. The tree
(:mod:`identity.store.scim_query`) goes to the repository, never its text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import cast

from identity.store.scim_query import And, Compare, CompareOp, Filter, Not, Or, Value

MAX_LENGTH = 2000
MAX_DEPTH = 16
MAX_TERMS = 40
OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "lt", "ge", "le"})
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:user:"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:group:"
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<punct>[()\[\]])
    | (?P<word>[A-Za-z0-9_:.$\-+]+)
    )""",
    re.VERBOSE,
)
_ATTR = re.compile(r"^[A-Za-z][A-Za-z0-9_$-]*(\.[A-Za-z][A-Za-z0-9_$-]*)?$")


class FilterError(ValueError):
    """The filter is not one this service can read (SCIM ``invalidFilter``)."""


@dataclass(frozen=True)
class Token:
    kind: str  # string | punct | word
    text: str


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise FilterError(f"a filter is at most {MAX_LENGTH} characters")
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise FilterError(f"unexpected character at {pos}")
        kind = next(k for k, v in m.groupdict().items() if v is not None)
        tokens.append(Token(kind, m.group(kind)))
        pos = m.end()
    return tokens


def attribute(name: str) -> str:
    """A filter's or a PATCH path's attribute name, lower-case, without the schema URN."""
    low = name.lower()
    for urn in (USER_URN, GROUP_URN):
        if low.startswith(urn):
            low = low[len(urn) :]
    if not _ATTR.match(low):
        raise FilterError(f"not an attribute name: {name!r}")
    return low


def _value(token: Token) -> Value:
    if token.kind == "string":
        try:
            return cast(str, json.loads(token.text))
        except ValueError:
            raise FilterError("a string value is not valid JSON") from None
    low = token.text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    try:
        return int(token.text) if re.fullmatch(r"-?\d+", token.text) else float(token.text)
    except ValueError:
        raise FilterError(f"not a value: {token.text!r}") from None


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens, self.pos, self.terms = tokens, 0, 0

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too soon")
        self.pos += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text.lower() != text:
            raise FilterError(f"expected {text!r}, found {token.text!r}")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.pos += 1
            return True
        return False

    def filter(self, depth: int, prefix: str = "") -> Filter:
        if depth > MAX_DEPTH:
            raise FilterError(f"a filter nests at most {MAX_DEPTH} deep")
        node = self.conjunction(depth, prefix)
        while self.keyword("or"):
            node = Or(node, self.conjunction(depth, prefix))
        return node

    def conjunction(self, depth: int, prefix: str) -> Filter:
        node = self.term(depth, prefix)
        while self.keyword("and"):
            node = And(node, self.term(depth, prefix))
        return node

    def term(self, depth: int, prefix: str) -> Filter:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterError(f"a filter has at most {MAX_TERMS} terms")
        token = self.take()
        if token.text == "(":
            inner = self.filter(depth + 1, prefix)
            self.expect(")")
            return inner
        if token.kind == "word" and token.text.lower() == "not":
            self.expect("(")
            inner = self.filter(depth + 1, prefix)
            self.expect(")")
            return Not(inner)
        if token.kind != "word":
            raise FilterError(f"expected an attribute, found {token.text!r}")
        name = attribute(token.text)
        if prefix:
            name = f"{prefix}.{name}"
        nxt = self.peek()
        if nxt is not None and nxt.text == "[":
            if prefix or "." in name:
                raise FilterError("a value path cannot nest")
            self.take()
            inner = self.filter(depth + 1, name)
            self.expect("]")
            return inner
        op = self.take().text.lower()
        if op == "pr":
            return Compare(name, "pr")
        if op not in OPS:
            raise FilterError(f"unknown operator {op!r}")
        return Compare(name, cast(CompareOp, op), _value(self.take()))


def parse(text: str) -> Filter:
    """The tree of filter ``text`` (FilterError when it is not a filter)."""
    tokens = tokenize(text)
    if not tokens:
        raise FilterError("the filter is empty")
    parser = _Parser(tokens)
    tree = parser.filter(0)
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.peek().text!r}")  # type: ignore[union-attr]
    return tree


@dataclass(frozen=True)
class Path:
    """A PATCH path (RFC 7644 §3.5.2): ``attr``, ``attr.sub``, ``attr[filter]`` or
    ``attr[filter].sub``."""

    attr: str
    sub: str | None = None
    where: Filter | None = None


def parse_path(text: str) -> Path:
    if len(text) > MAX_LENGTH:
        raise FilterError("the path is too long")
    m = re.fullmatch(r"\s*([^\[\]\s]+)\s*(?:\[(.*)\])?\s*(?:\.([A-Za-z][A-Za-z0-9_$-]*))?\s*", text)
    if m is None:
        raise FilterError(f"not a path: {text!r}")
    name, inner, sub = m.group(1), m.group(2), m.group(3)
    full = attribute(name)
    where = None
    if inner is not None:
        if "." in full:
            raise FilterError("a value path's attribute has no sub-attribute")
        where = parse(inner)
    elif "." in full:
        full, sub = full.split(".", 1)
    return Path(full, sub.lower() if sub else None, where)


def matches(f: Filter, element: dict[str, object]) -> bool:
    """Does one value of a multi-valued attribute (``{"value": …, "type": …}``, keys in
    lower case) pass a value filter? Strings compare case-insensitively."""
    if isinstance(f, And):
        return matches(f.left, element) and matches(f.right, element)
    if isinstance(f, Or):
        return matches(f.left, element) or matches(f.right, element)
    if isinstance(f, Not):
        return not matches(f.inner, element)
    have = element.get(f.attr.rsplit(".", 1)[-1])
    if f.op == "pr":
        return have not in (None, "")
    want = f.value
    if isinstance(have, str) and isinstance(want, str):
        have, want = have.lower(), want.lower()
        tests = {"co": want in have, "sw": have.startswith(want), "ew": have.endswith(want)}
        if f.op in tests:
            return tests[f.op]
    if f.op == "eq":
        return have == want
    if f.op == "ne":
        return have != want
    return False
