"""The outermost layer of every request (pure ASGI, so it costs little).

Request id and W3C trace context (continued from the caller, carried into NATS by
``mesh.client``), CORS per ecosystem, the request size limit, security headers, a
JSON access log line and Prometheus metrics.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.errors import ErrorCode
from gateway import metrics
from gateway.auth import ANONYMOUS, Caller
from gateway.cors import CorsPolicy
from gateway.problems import PROBLEM_JSON, problem_doc
from gateway.settings import GatewaySettings
from gateway.tracing import Tracing, finish_server_span
from mesh import context
from mesh.errors import MeshError

access_log = logging.getLogger("gateway.access")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
API_CSP = b"default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    b"default-src 'none'; script-src 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    b"connect-src 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"cache-control", b"no-store"),
]


@dataclass
class RequestInfo:
    """What the inner layers learn about a request, for the access log and metrics."""

    route: str = "unmatched"
    caller: Caller = ANONYMOUS


def request_info(scope: Scope) -> RequestInfo:
    info = scope.get("pm")
    if not isinstance(info, RequestInfo):
        info = scope["pm"] = RequestInfo()
    return info


def incoming_trace(headers: Headers) -> str:
    parent = headers.get("traceparent", "")
    return context.child_traceparent(parent if _TRACEPARENT.match(parent) else None)


class Edge:
    def __init__(self, app: ASGIApp, settings: GatewaySettings, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing
        self.max_body = settings.max_body_bytes
        self.access_log = settings.access_log
        self.cors = CorsPolicy(settings.cors_origins, settings.cors_max_age)
        self._counters: dict[tuple[str, int, str], Any] = {}
        self._histograms: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = headers.get("x-request-id", "")
        rid = rid if _SAFE_ID.match(rid) else context.new_request_id()
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
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, rid: str
    ) -> tuple[RequestInfo, int]:
        info = request_info(scope)
        path: str = scope["path"]
        origin = headers.get("origin")
        extra = [*SECURITY_HEADERS, (b"x-request-id", rid.encode())]
        extra.append((b"content-security-policy", DOCS_CSP if path == "/docs" else API_CSP))
        if origin and self.cors.allows(path, origin):
            if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
                info.route = "preflight"
                await self._reply(send, 204, b"", extra + self.cors.preflight_headers(origin))
                self._log(scope, info, 204, time.perf_counter())
                return info, 204
            extra += self.cors.headers(origin)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            info.route = "too_large"
            await self._problem(
                send_with_headers,
                path,
                MeshError(
                    ErrorCode.PAYLOAD_TOO_LARGE, f"the request body exceeds {self.max_body} bytes"
                ),
            )
        else:
            await self.app(scope, receive, send_with_headers)
        self._log(scope, info, status, started)
        return info, status

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

    @staticmethod
    async def _reply(
        send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _problem(self, send: Send, path: str, exc: MeshError) -> None:
        body = json.dumps(problem_doc(exc, path)).encode()
        hdrs = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await self._reply(send, exc.status, body, hdrs)

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
