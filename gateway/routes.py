"""The route table: every contract Operation as an HTTP route, checked before it is served.

A route whose operation has no usable policy refuses to load, so a new operation
without a policy fails the build (the gateway's tests load the whole registry).

Matching walks a tree of path segments (literal segments first, then parameters),
so it costs the depth of the path, not the number of routes; when several routes
match a path, the first registered one wins, as in an ordered list of routes.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contracts.errors import ErrorCode
from contracts.policy import Operation, Policy
from mesh.errors import MeshError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")
_WHOLE_PARAM = re.compile(r"^{[a-zA-Z_][a-zA-Z0-9_]*}$")


class RouteConfigError(RuntimeError):
    """An operation cannot be served safely (no policy, unbound parameters, ...)."""


class MethodNotAllowed(Exception):
    """The path is routed, but not for that method (405)."""


@dataclass(frozen=True)
class BoundRoute:
    """An operation with what the edge needs to decode a call to it."""

    op: Operation
    path_params: tuple[str, ...]
    list_fields: frozenset[str]
    # The fields the policy binds to the token (re-checked on the validated request).
    policy_fields: frozenset[str] = frozenset()

    @property
    def takes_body(self) -> bool:
        return self.op.method in BODY_METHODS


def path_params(path: str) -> tuple[str, ...]:
    return tuple(_PARAM.findall(path))


def _is_list(annotation: object) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_is_list(a) for a in typing.get_args(annotation) if origin is not None)


def check_operation(op: Operation) -> None:
    """Refuse an operation the gateway could not enforce."""
    policy = getattr(op, "policy", None)
    if not isinstance(policy, Policy):
        raise RouteConfigError(f"{op.name}: every operation needs a Policy, got {policy!r}")
    if not policy.public and policy.scope is None:
        raise RouteConfigError(f"{op.name}: a non-public policy must name a scope")
    if op.method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
        raise RouteConfigError(f"{op.name}: unsupported method {op.method}")
    if not op.path.startswith("/"):
        raise RouteConfigError(f"{op.name}: the path must start with /")
    for segment in op.path.split("/"):
        if "{" in segment and not _WHOLE_PARAM.match(segment):
            raise RouteConfigError(f"{op.name}: a path parameter must be a whole segment")
    fields = op.request.model_fields
    params = path_params(op.path)
    for name in params:
        if name not in fields:
            raise RouteConfigError(
                f"{op.name}: path parameter {name} is not in {op.request.__name__}"
            )
    for bound in (policy.eco_param, policy.partner_param):
        if bound and bound not in fields:
            raise RouteConfigError(f"{op.name}: policy binds {bound}, which the request lacks")
    if "eco" in params and not policy.public and policy.eco_param != "eco":
        raise RouteConfigError(f"{op.name}: an ecosystem route must bind the token to {{eco}}")


class _Node:
    """One path segment of the tree: literal children, one parameter child, routes ending here."""

    __slots__ = ("ends", "literal", "param")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.ends: list[tuple[int, str, Any]] = []  # (registration order, method, target)


class PathTree:
    """Paths with ``{param}`` segments → targets, matched like an ordered route list.

    A GET route also answers HEAD. :meth:`match` returns the first registered target
    for the method, ``None`` when the path matches only under other methods (405),
    and raises :class:`LookupError` when no route has that path (404).
    """

    CACHE_SIZE = 4096

    def __init__(self) -> None:
        self.root = _Node()
        self._count = 0
        # Recent answers: most calls repeat a few paths (the cache empties when full).
        self._recent: dict[tuple[str, str], tuple[Any, tuple[str, ...]] | None] = {}

    def add(self, method: str, path: str, target: Any) -> None:
        node = self.root
        for segment in path.split("/")[1:]:
            if _WHOLE_PARAM.match(segment):
                node.param = node.param or _Node()
                node = node.param
            else:
                node = node.literal.setdefault(segment, _Node())
        methods = (method, "HEAD") if method == "GET" else (method,)
        for m in methods:
            node.ends.append((self._count, m, target))
        self._count += 1

    def match(self, method: str, path: str) -> tuple[Any, tuple[str, ...]] | None:
        """The target and the values of the path's parameters, in path order."""
        try:
            return self._recent[(method, path)]
        except KeyError:
            pass
        result = self._match(method, path)  # raises LookupError: not cached, rarely repeated
        if len(path) > 256:  # bound what the cache holds
            return result
        if len(self._recent) >= self.CACHE_SIZE:
            self._recent.clear()
        self._recent[(method, path)] = result
        return result

    def allowed(self, path: str) -> list[str]:
        """The methods some route serves ``path`` with (a 405's ``Allow``), sorted."""
        return sorted({m for _order, m, _target, _values in self._found(path)})

    def _found(self, path: str) -> list[tuple[int, str, Any, list[str]]]:
        found: list[tuple[int, str, Any, list[str]]] = []
        if path[:1] == "/":
            self._walk(self.root, path.split("/"), 1, [], found)
        return found

    def _match(self, method: str, path: str) -> tuple[Any, tuple[str, ...]] | None:
        found = self._found(path)
        if not found:
            raise LookupError(path)
        best = None
        for order, m, target, values in found:
            if m == method and (best is None or order < best[0]):
                best = (order, target, tuple(values))
        return None if best is None else (best[1], best[2])

    def _walk(
        self,
        node: _Node,
        segments: list[str],
        i: int,
        values: list[str],
        found: list[tuple[int, str, Any, list[str]]],
    ) -> None:
        if i == len(segments):
            found.extend((order, m, target, values) for order, m, target in node.ends)
            return
        segment = segments[i]
        child = node.literal.get(segment)
        if child is not None:
            self._walk(child, segments, i + 1, values, found)
        if node.param is not None and segment:
            self._walk(node.param, segments, i + 1, [*values, segment], found)


class RouteTable:
    """Every operation, matched by method and path (used by HTTP routes and by mashups)."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self.routes: list[BoundRoute] = []
        self.tree = PathTree()
        for op in operations:
            check_operation(op)
            fields = op.request.model_fields
            policy = op.policy
            bound = BoundRoute(
                op=op,
                path_params=path_params(op.path),
                list_fields=frozenset(n for n, f in fields.items() if _is_list(f.annotation)),
                policy_fields=frozenset(
                    f for f in (policy.eco_param, policy.partner_param) if f and not policy.public
                ),
            )
            self.routes.append(bound)
            self.tree.add(op.method, op.path, bound)

    def match(self, method: str, path: str) -> tuple[BoundRoute, dict[str, str]]:
        """The route serving ``method path`` and its path parameters, or a coded error."""
        try:
            found = self.tree.match(method.upper(), path)
        except LookupError:
            raise MeshError(ErrorCode.NOT_FOUND, "no such route") from None
        if found is None:
            raise MethodNotAllowed()
        bound, values = found
        return bound, dict(zip(bound.path_params, values, strict=True))
