"""Load shedding at the edge: a bound on requests in flight and a whole-request deadline.

A pure ASGI middleware around the gateway (:class:`LoadShedder`). A request beyond
``PM_GATEWAY_MAX_IN_FLIGHT`` requests at once is answered 503 ``overloaded`` with
``Retry-After`` at once, before its headers are decoded or its body read: under overload
the gateway spends almost nothing on what it refuses, and what it admits keeps the
latency of a gateway that is not overloaded. An admitted request that is not answered
within ``PM_GATEWAY_REQUEST_DEADLINE_S`` (the whole request: waiting for the event loop,
authentication, the NATS hop) is cut and answered 504 ``timeout``; the deadline travels
on with the NATS request (``mesh.context.deadline``, ``Pm-Deadline``), so a service drops
it rather than work for a caller who has gone.

Never counted, never shed, never cut: the probes (``/healthz``, ``/readyz``) and
long-lived streams (``Accept: text/event-stream``, or a path under one of
``PM_GATEWAY_STREAM_PATHS``). ``/metrics`` is on the operations port, outside this app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contracts.errors import OVERLOAD_RETRY_AFTER_S, ErrorCode
from gateway import metrics
from gateway.edge import API_CSP, SECURITY_HEADERS, safe_request_id
from gateway.problems import PROBLEM_JSON
from gateway.settings import GatewaySettings
from mesh import context
from mesh.errors import MeshError

log = logging.getLogger(__name__)

NEVER_SHED = frozenset({"/healthz", "/readyz"})
EVENT_STREAM = b"text/event-stream"

shed = Counter(
    "pm_gateway_shed_total",
    "Requests the gateway refused (in_flight: 503 beyond the bound) or cut (deadline: 504)",
    ["reason"],
)
in_flight = Gauge(
    "pm_gateway_in_flight", "Requests the gateway is working on now (those the bound counts)"
)


class LoadShedder:
    """Bounds the requests ``app`` works on at once and how long each may take."""

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.limit = settings.max_in_flight  # 0: no bound
        self.deadline = settings.request_deadline_s  # 0: no deadline
        self.streams = tuple(settings.stream_paths)
        self.in_flight = 0
        self._refused = shed.labels("in_flight")
        self._cut = shed.labels("deadline")
        self._refusals = metrics.http_requests.labels("gateway", "shed", "503", "-")
        detail = f"the gateway is at capacity; retry after {OVERLOAD_RETRY_AFTER_S} s"
        self._busy = MeshError(ErrorCode.OVERLOADED, detail).body().problem()  # built once
        self._retry = [(b"retry-after", str(OVERLOAD_RETRY_AFTER_S).encode())]
        in_flight.set_function(lambda: self.in_flight)  # read when scraped: free per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED or self._streaming(scope):
            await self.app(scope, receive, send)
            return
        if self.limit and self.in_flight >= self.limit:
            await self._refuse(scope, send)
            return
        self.in_flight += 1
        try:
            if self.deadline:
                await self._within_deadline(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    def _streaming(self, scope: Scope) -> bool:
        """A long-lived stream: a declared stream path, or a client asking for events."""
        if self.streams and scope["path"].startswith(self.streams):
            return True
        for name, value in scope["headers"]:
            if name == b"accept":
                return EVENT_STREAM in value
        return False

    async def _within_deadline(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        token = context.deadline.set(time.time() + self.deadline)
        try:
            async with asyncio.timeout(self.deadline) as cut:
                await self.app(scope, receive, tracked)
        except TimeoutError:
            if not cut.expired():
                raise
            self._cut.inc()
            if started:  # too late for a 504: the connection closes mid-response
                log.warning("deadline passed mid-response", extra={"path": scope["path"]})
                return
            detail = f"the request took longer than {self.deadline:g} s"
            late = MeshError(ErrorCode.TIMEOUT, detail).body().problem()
            await _problem(scope, send, 504, late, [])
        finally:
            context.deadline.reset(token)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        self._refused.inc()
        self._refusals.inc()
        await _problem(scope, send, 503, self._busy, self._retry)


async def _problem(
    scope: Scope, send: Send, status: int, doc: dict[str, Any], extra: list[tuple[bytes, bytes]]
) -> None:
    """Answer with the problem ``doc`` (RFC 9457), for this path and request id."""
    rid = _request_id(scope)
    body = json.dumps({**doc, "instance": scope["path"], "request_id": rid}).encode()
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *extra,
        *SECURITY_HEADERS,
        (b"x-request-id", rid.encode()),
        (b"content-security-policy", API_CSP),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return safe_request_id(value.decode("latin-1"))
    return context.new_request_id()
