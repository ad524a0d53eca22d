"""The route table: every contract Operation as an HTTP route, checked before it is served.

A route whose operation has no usable policy refuses to load, so a new operation
without a policy fails the build (the gateway's tests load the whole registry).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.routing import Match, Route

from contracts.errors import ErrorCode
from contracts.policy import Operation, Policy
from mesh.errors import MeshError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")


class RouteConfigError(RuntimeError):
    """An operation cannot be served safely (no policy, unbound parameters, ...)."""


class MethodNotAllowed(Exception):
    """The path is routed, but not for that method (405)."""


@dataclass(frozen=True)
class BoundRoute:
    """An operation with what the edge needs to decode a call to it."""

    op: Operation
    route: Route
    path_params: tuple[str, ...]
    list_fields: frozenset[str]

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


class RouteTable:
    """Every operation, matched by method and path (used by HTTP routes and by mashups)."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self.routes: list[BoundRoute] = []
        for op in operations:
            check_operation(op)
            fields = op.request.model_fields
            self.routes.append(
                BoundRoute(
                    op=op,
                    route=Route(op.path, _unrouted, methods=[op.method], name=op.name),
                    path_params=path_params(op.path),
                    list_fields=frozenset(n for n, f in fields.items() if _is_list(f.annotation)),
                )
            )

    def match(self, method: str, path: str) -> tuple[BoundRoute, dict[str, str]]:
        """The route serving ``method path`` and its path parameters, or a coded error."""
        scope = {"type": "http", "method": method.upper(), "path": path, "root_path": ""}
        partial = False
        for bound in self.routes:
            found, child = bound.route.matches(scope)
            if found is Match.FULL:
                return bound, dict(child["path_params"])
            partial = partial or found is Match.PARTIAL
        if partial:
            raise MethodNotAllowed()
        raise MeshError(ErrorCode.NOT_FOUND, "no such route")


async def _unrouted(request: object) -> None:  # placeholder endpoint, replaced by the app
    raise RuntimeError("route table entries are matched, not served")
