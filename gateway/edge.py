"""The gateway as one plain ASGI application: the edge of every request, then its endpoint.

Request id and W3C trace context (continued from the caller, carried into NATS by
``mesh.client``), CORS per ecosystem, the request size limit, security headers, a
JSON access log line and Prometheus metrics; then the route (a tree of path
segments) picks the endpoint. No framework sits in the request path: routes are
matched in the depth of the path and headers decoded once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import URL
from starlette.responses import RedirectResponse
from starlette.types import Receive, Scope, Send

from contracts.errors import ErrorCode
from gateway import metrics
from gateway.auth import ANONYMOUS, Caller
from gateway.cors import CorsPolicy
from gateway.docs import CSP as DOCS_CSP
from gateway.endpoints import Endpoint
from gateway.http import Incoming, Reply, RequestHeaders, StreamReply, decode_headers
from gateway.routes import PathTree, path_params
from gateway.settings import GatewaySettings
from gateway.tracing import Tracing, finish_server_span
from mesh import context
from mesh.errors import MeshError
from mesh.problems import Problem, internal_error

access_log = logging.getLogger("gateway.access")

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cache-control", b"no-store"),
]


@dataclass(slots=True)
class RequestInfo:
    """What the inner layers learn about a request, for the access log and metrics."""

    route: str = "unmatched"
    caller: Caller = ANONYMOUS


def incoming_trace(headers: dict[str, str]) -> str:
    parent = headers.get("traceparent", "")
    return context.child_traceparent(parent if _TRACEPARENT.match(parent) else None)


class Edge:
    """The ASGI application: ``routes`` are ``(method, path, endpoint)``, matched in order."""

    def __init__(
        self,
        routes: list[tuple[str, str, Endpoint]],
        settings: GatewaySettings,
        tracing: Tracing,
        lifespan: Callable[[], AbstractAsyncContextManager[None]],
    ) -> None:
        self.tree = PathTree()
        for method, path, endpoint in routes:
            self.tree.add(method, path, (endpoint, path_params(path)))
        self.tracing = tracing
        self.lifespan = lifespan
        self.max_body = settings.max_body_bytes
        self.access_log = settings.access_log
        self.cors = CorsPolicy(settings.cors_origins, settings.cors_max_age)
        self._counters: dict[tuple[str, int, str], Any] = {}
        self._histograms: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # no websocket routes: close, as a router does
            await send({"type": "websocket.close", "code": 1000, "reason": ""})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = decode_headers(scope["headers"])
        rid = context.safe_request_id(headers.get("x-request-id", ""))
        context.request_id.set(rid)
        if not self.tracing.enabled:
            context.traceparent.set(incoming_trace(headers))
            await self._serve(scope, receive, send, headers, rid)
            return
        sent = headers.get("traceparent", "")
        parent = sent if _TRACEPARENT.match(sent) else None
        with self.tracing.server(scope["method"], scope["path"], parent) as span:
            info, status = await self._serve(scope, receive, send, headers, rid)
            finish_server_span(span, info.route, status)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, headers: RequestHeaders, rid: str
    ) -> tuple[RequestInfo, int]:
        info = RequestInfo()
        path: str = scope["path"]
        origin = headers.get("origin")
        extra = [
            *SECURITY_HEADERS,
            (b"x-request-id", rid.encode()),
            (b"content-security-policy", DOCS_CSP if path == "/docs" else API_CSP),
        ]
        if origin and self.cors.allows(path, origin):
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                info.route = "preflight"
                await self._send(
                    send, Reply(204, b"", None, self.cors.preflight_headers(origin)), extra
                )
                self._log(scope, info, 204, time.perf_counter())
                return info, 204
            extra += self.cors.headers(origin)
        started = time.perf_counter()
        status = 500
        try:
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > self.max_body:
                info.route = "too_large"
                too_large = MeshError(
                    ErrorCode.PAYLOAD_TOO_LARGE, f"the request body exceeds {self.max_body} bytes"
                )
                reply = Reply.problem(Problem.of(too_large, path))
            else:
                routed = self._route(scope, receive, headers, info)
                if isinstance(routed, Reply):
                    reply = routed
                else:
                    endpoint, request = routed
                    try:
                        reply = await endpoint(request)
                    except Exception as exc:  # endpoints are guarded; this is the last resort
                        reply = Reply.problem(Problem.of(internal_error(path, exc), path))
            status = reply.status
            await self._send(send, reply, extra)
        except asyncio.CancelledError:
            status = 504  # cut by the whole-request deadline (gateway.shedding), which answers
            raise
        finally:
            self._log(scope, info, status, started)
        return info, status

    def _route(
        self, scope: Scope, receive: Receive, headers: RequestHeaders, info: RequestInfo
    ) -> Reply | tuple[Endpoint, Incoming]:
        """The endpoint and its request, or the reply when nothing serves the path."""
        method: str = scope["method"]
        path: str = scope["path"]
        try:
            found = self.tree.match(method, path)
        except LookupError:
            return self._unrouted(scope, method, path)
        if found is None:  # RFC 9110 15.5.6: a 405 names the methods the path accepts
            allow = ", ".join(self.tree.allowed(path))
            refusal = "this path does not accept that method"
            return Reply.problem(Problem.for_status(405, refusal, path, {"Allow": allow}))
        (endpoint, names), values = found
        return endpoint, Incoming(
            scope, receive, headers, info, dict(zip(names, values, strict=True))
        )

    def _unrouted(self, scope: Scope, method: str, path: str) -> Reply:
        """404, or a redirect to the same path without its trailing slash if that is routed."""
        if path != "/" and path.endswith("/"):
            try:
                self.tree.match(method, path.rstrip("/"))
            except LookupError:
                pass
            else:
                url = URL(scope={**scope, "path": path.rstrip("/")})
                return Reply.of(RedirectResponse(str(url)))
        return Reply.problem(Problem.of(MeshError(ErrorCode.NOT_FOUND, "no such route"), path))

    @staticmethod
    async def _send(send: Send, reply: Reply, extra: list[tuple[bytes, bytes]]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": reply.headers + extra,
            }
        )
        if isinstance(reply, StreamReply):
            await reply.send_body(send)
            return
        await send({"type": "http.response.body", "body": reply.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        started = False
        await receive()  # lifespan.startup
        try:
            async with self.lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except BaseException:
            failed = "lifespan.shutdown.failed" if started else "lifespan.startup.failed"
            await send({"type": failed, "message": traceback.format_exc()})
            raise
        await send({"type": "lifespan.shutdown.complete"})

    def _count(self, route: str, status: int, partner: str, elapsed: float) -> None:
        # Labelled children are cached: looking them up costs more than counting.
        counter = self._counters.get((route, status, partner))
        if counter is None:
            counter = metrics.http_requests.labels("gateway", route, str(status), partner)
            self._counters[(route, status, partner)] = counter
        histogram = self._histograms.get(route)
        if histogram is None:
            histogram = self._histograms[route] = metrics.http_latency.labels("gateway", route)
        counter.inc()
        histogram.observe(elapsed)

    def _log(self, scope: Scope, info: RequestInfo, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        self._count(info.route, status, info.caller.partner or "-", elapsed)
        if self.access_log and access_log.isEnabledFor(logging.INFO):
            fields: dict[str, Any] = {
                "method": scope["method"],
                "path": scope["path"],
                "route": info.route,
                "status": status,
                "ms": round(elapsed * 1000, 2),
                "partner": info.caller.partner,
                "client_id": info.caller.client_id,
            }
            access_log.info("request", extra=fields)
