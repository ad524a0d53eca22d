"""HTTP endpoints generated from the route table: one per contract Operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gateway.dpop import authenticate
from gateway.forward import call_operation, decode_body, merge_params
from gateway.http import Incoming, Reply, UnsupportedMediaType, encode_headers
from gateway.routes import BoundRoute
from gateway.state import Gateway
from mesh.errors import MeshError
from mesh.problems import Problem, internal_error

Endpoint = Callable[[Incoming], Awaitable[Reply]]


async def json_body(request: Incoming, gw: Gateway) -> dict[str, Any]:
    return decode_body(await request.body(gw.settings.max_body_bytes))


def guarded(handler: Callable[[Incoming, dict[str, str]], Awaitable[Reply]]) -> Endpoint:
    """Run ``handler`` so every failure becomes a problem document (rate-limit headers kept)."""

    async def endpoint(request: Incoming) -> Reply:
        rl: dict[str, str] = {}
        try:
            return await handler(request, rl)
        except Exception as exc:
            return failed(request.path, exc, rl)

    return endpoint


def failed(path: str, exc: Exception, rl: dict[str, str]) -> Reply:
    """The problem reply for ``exc``: with the rate-limit fields ``rl`` and the error's own
    (a rate limit's ``Retry-After``, a DPoP challenge); anything unexpected is logged."""
    if isinstance(exc, MeshError):
        return Reply.problem(Problem.of(exc, path, rl))
    if isinstance(exc, UnsupportedMediaType):
        return Reply.problem(Problem.for_status(415, "send the body as application/json", path))
    return Reply.problem(Problem.of(internal_error(path, exc), path, rl))


def operation_endpoint(gw: Gateway, bound: BoundRoute) -> Endpoint:
    op = bound.op
    status = op.status

    async def endpoint(request: Incoming) -> Reply:
        # The hot path: what guarded() does, written out (one coroutine less per call).
        rl: dict[str, str] = {}
        try:
            info = request.info
            info.route = op.name
            caller = info.caller = await authenticate(
                request.headers, request.scope, gw.token_verifier(), gw.proofs()
            )
            eco = caller.claims.eco if caller.claims else request.params.get("eco", "-")
            rl = await gw.rate_limiter().check(eco, caller, request.client_ip)
            body = await json_body(request, gw) if bound.takes_body else {}
            params = merge_params(bound, request.params, request.query_lists(), body)
            data = await call_operation(gw, bound, caller, params)
            if status == 204:
                return Reply(204, b"", None, encode_headers(rl))
            return Reply(status, data, headers=encode_headers(rl))
        except Exception as exc:
            return failed(request.path, exc, rl)

    return endpoint
