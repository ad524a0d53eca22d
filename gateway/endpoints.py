"""HTTP endpoints generated from the route table: one per contract Operation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.errors import ErrorCode
from gateway.dpop import authenticate
from gateway.edge import request_info
from gateway.forward import call_operation, decode_body, merge_params
from gateway.problems import edge_problem, internal_error, problem_response
from gateway.ratelimit import RateLimited
from gateway.routes import BoundRoute
from gateway.state import Gateway
from mesh.dpop import DPoPChallenge
from mesh.errors import MeshError

Endpoint = Callable[[Request], Awaitable[Response]]


class UnsupportedMediaType(Exception):
    pass


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "-"


def query_lists(request: Request) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        grouped.setdefault(key, []).append(value)
    return grouped


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes even without a Content-Length."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MeshError(ErrorCode.PAYLOAD_TOO_LARGE, f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if raw.strip() and not (ctype == "application/json" or ctype.endswith("+json")):
        raise UnsupportedMediaType()
    return raw


async def json_body(request: Request, gw: Gateway) -> dict[str, Any]:
    return decode_body(await read_body(request, gw.settings.max_body_bytes))


def guarded(handler: Callable[[Request, dict[str, str]], Awaitable[Response]]) -> Endpoint:
    """Run ``handler`` so every failure becomes a problem document (rate-limit headers kept)."""

    async def endpoint(request: Request) -> Response:
        rl: dict[str, str] = {}
        path: str = request.scope["path"]
        try:
            return await handler(request, rl)
        except (RateLimited, DPoPChallenge) as exc:
            return problem_response(exc, path, exc.headers)
        except MeshError as exc:
            return problem_response(exc, path, rl)
        except UnsupportedMediaType:
            return edge_problem(415, "send the body as application/json", path)
        except Exception as exc:
            return problem_response(internal_error(path, exc), path, rl)

    return endpoint


def operation_endpoint(gw: Gateway, bound: BoundRoute) -> Endpoint:
    op = bound.op

    async def handle(request: Request, rl: dict[str, str]) -> Response:
        info = request_info(request.scope)
        info.route = op.name
        caller = info.caller = await authenticate(
            request.headers, request.scope, gw.token_verifier(), gw.proofs()
        )
        eco = caller.claims.eco if caller.claims else request.path_params.get("eco", "-")
        rl.update(await gw.rate_limiter().check(eco, caller, client_ip(request)))
        body = await json_body(request, gw) if bound.takes_body else {}
        params = merge_params(bound, request.path_params, query_lists(request), body)
        data = await call_operation(gw, bound, caller, params)
        if op.status == 204:
            return Response(status_code=204, headers=rl)
        return Response(data, op.status, headers=rl, media_type="application/json")

    return guarded(handle)


def operation_routes(gw: Gateway) -> list[Route]:
    return [
        Route(b.op.path, operation_endpoint(gw, b), methods=[b.op.method], name=b.op.name)
        for b in gw.routes.routes
    ]
