"""Load shedding at the edge: a bound on requests in flight and a whole-request deadline.

A pure ASGI middleware around the gateway (:class:`LoadShedder`). A request beyond
``PM_GATEWAY_MAX_IN_FLIGHT`` requests at once is answered 503 ``overloaded`` with
``Retry-After`` at once, before its headers are decoded or its body read: under overload
the gateway spends almost nothing on what it refuses, and what it admits keeps the
latency of a gateway that is not overloaded. An admitted request that is not answered
within ``PM_GATEWAY_REQUEST_DEADLINE_S`` (the whole request: waiting for the event loop,
authentication, the NATS hop) is cut and answered 504 ``timeout``; the deadline travels
on with the NATS request (``mesh.context.deadline``, ``Pm-Deadline``), so a service drops
it rather than work for a caller who has gone. Both cost next to nothing per request:
a counter, and an entry in an insertion-ordered dict that one reaper task per gateway
walks a few times per deadline (no timer per request).

Refusals must not cost what admitted requests need, whoever sends them. One client (its
credential as sent, not verified, else its address) holds at most
``PM_GATEWAY_CLIENT_SHARE`` of the bound, so a greedy client cannot take every slot; and
a connection refused within its Retry-After that asks again gets its next refusal after
``PM_GATEWAY_REPEAT_REFUSAL_DELAY_S`` (an idle wait, at most so many at once): a client
that retries at once, as an attacker or a naive client does, then costs one refusal per
wait per connection, not as many as the event loop can parse. Refusals carry the CORS
headers the edge would give (allowed origins only), so a browser can read them.

Never counted, never shed, never cut: the probes (``/healthz``, ``/readyz``), CORS
preflights (answered by the edge without a token) and long-lived streams
(``Accept: text/event-stream``, or a path under one of ``PM_GATEWAY_STREAM_PATHS``).
``/metrics`` is on the operations port, outside this app.
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
from gateway.cors import CorsPolicy
from gateway.edge import API_CSP, SECURITY_HEADERS
from gateway.http import PROBLEM_JSON, encode_headers
from gateway.settings import GatewaySettings
from mesh import context
from mesh.errors import MeshError
from mesh.problems import Problem

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
delayed = Counter(
    "pm_gateway_refusals_delayed_total",
    "Refusals held back a moment: their connection was refused within its Retry-After",
)
waiting = Gauge("pm_gateway_refusals_waiting", "Delayed refusals waiting to be answered now")


class LoadShedder:
    """Bounds the requests ``app`` works on at once, each client's share of them, and how
    long each may take; a connection that comes back too soon after a refusal waits a
    little for its next one (:class:`RepeatRefusals`)."""

    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.limit = settings.max_in_flight  # 0: no bound
        # What one client (its credential, else its address) may hold of the bound.
        self.per_client = max(1, int(self.limit * settings.client_share)) if self.limit else 0
        self.streams = tuple(settings.stream_paths)
        self.in_flight = 0
        self.clients: dict[bytes | str, int] = {}  # client -> requests in flight (only > 0)
        self.cors = CorsPolicy(settings.cors_origins, settings.cors_max_age)
        self.repeats = RepeatRefusals(
            settings.repeat_refusal_delay_s, OVERLOAD_RETRY_AFTER_S, settings.max_delayed_refusals
        )
        self.deadlines = (
            Deadlines(settings.request_deadline_s, self.cors)
            if settings.request_deadline_s
            else None
        )
        retry = f"retry after {OVERLOAD_RETRY_AFTER_S} s"
        self._busy = Refusal(
            MeshError(ErrorCode.OVERLOADED, f"the gateway is at capacity; {retry}")
        )
        self._greedy = Refusal(
            MeshError(
                ErrorCode.OVERLOADED,
                f"the gateway is at capacity for this caller's share of it; {retry}",
            )
        )
        self._refused = shed.labels("in_flight")
        self._refused_share = shed.labels("client_share")
        in_flight.set_function(lambda: self.in_flight)  # read when scraped: free per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_SHED:
            await self.app(scope, receive, send)
            return
        passes, credential, origin = self._inspect(scope)
        if passes:
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        who: bytes | str = credential or (peer[0] if peer else "")
        held = self.clients.get(who, 0)
        if self.limit and (self.in_flight >= self.limit or held >= self.per_client):
            busy = self.in_flight >= self.limit
            (self._refused if busy else self._refused_share).inc()
            # (not in pm_http_requests_total: one lock less per refusal)
            await self.repeats.hold(peer)
            refusal = self._busy if busy else self._greedy
            await refusal.send(scope, send, self.cors.raw_headers(scope["path"], origin))
            return
        self.clients[who] = held + 1
        self.in_flight += 1
        try:
            if self.deadlines is None:
                await self.app(scope, receive, send)
            else:
                await self.deadlines.run(self.app, scope, receive, send, origin)
        finally:
            self.in_flight -= 1
            left = self.clients[who] - 1
            if left:
                self.clients[who] = left
            else:
                del self.clients[who]

    def _inspect(self, scope: Scope) -> tuple[bool, bytes, bytes]:
        """One look at the headers, nothing decoded: whether the request is never counted
        (a long-lived stream: a declared stream path or a client asking for events; a CORS
        preflight, answered by the edge without a token, so that a browser's call that
        follows it can read its own refusal), its credential as sent (who the client is,
        without verifying it) and its Origin."""
        passes = bool(self.streams) and scope["path"].startswith(self.streams)
        credential = origin = b""
        preflight = scope["method"] == "OPTIONS"
        for name, value in scope["headers"]:
            if name == b"authorization":
                credential = value
            elif name == b"origin":
                origin = value
            elif name == b"accept":
                passes = passes or EVENT_STREAM in value
            elif preflight and name == b"access-control-request-method":
                passes = True
        return passes, credential, origin


class RepeatRefusals:
    """Throttles retry storms at no CPU cost: a connection refused within the last
    ``window`` seconds (its Retry-After) that asks again gets its next refusal only after
    ``delay`` seconds, an idle wait on the event loop. A first refusal is at once; a
    client that retries at once can cost the gateway at most one refusal per ``delay``
    per connection instead of as many as the event loop can answer, which is what the
    admitted requests need. At most ``max_waiting`` refusals wait at once (beyond, they
    are answered at once), and at most ``max_known`` connections are remembered."""

    def __init__(
        self, delay: float, window: float, max_waiting: int, max_known: int = 65_536
    ) -> None:
        self.delay = delay
        self.window = window
        self.max_waiting = max_waiting
        self.max_known = max_known
        self.waiting = 0
        # connection -> until when it counts as refused; insertion order is expiry order
        self.recent: dict[Any, float] = {}
        self._delayed = delayed
        waiting.set_function(lambda: self.waiting)

    async def hold(self, peer: Any) -> None:
        """Record a refusal of ``peer``'s request; wait first if it was refused lately."""
        if peer is None or not self.delay:
            return
        peer = tuple(peer)  # (host, port): one per connection (a list from some servers)
        now = time.monotonic()
        lately = self.recent.pop(peer, 0.0) > now
        self.recent[peer] = now + self.delay + self.window
        while self.recent:  # forget the expired, oldest first (amortised: once each)
            oldest, until = next(iter(self.recent.items()))
            if until > now and len(self.recent) <= self.max_known:
                break
            del self.recent[oldest]
        if not lately or self.waiting >= self.max_waiting:
            return
        self.waiting += 1
        self._delayed.inc()
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.waiting -= 1


class Deadlines:
    """Cuts requests older than ``seconds``: the reaper cancels their tasks, and each
    cut request answers 504 itself. One deadline for all, so the order requests start
    in is the order they expire in: the reaper looks only at the oldest."""

    def __init__(self, seconds: float, cors: CorsPolicy) -> None:
        self.seconds = seconds
        self.cors = cors
        self.tick = min(0.1, seconds / 4)  # how late a cut may come
        self.running: dict[asyncio.Task[Any], float] = {}  # task -> when it expires
        self.cut: set[asyncio.Task[Any]] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._late = Refusal(
            MeshError(ErrorCode.TIMEOUT, f"the request took longer than {seconds:g} s")
        )
        self._cut = shed.labels("deadline")

    async def run(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, origin: bytes = b""
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.running[task] = time.monotonic() + self.seconds
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap(), name="gateway-deadlines")
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        token = context.deadline.set(time.time() + self.seconds)  # the NATS hop's limit
        try:
            await app(scope, receive, tracked)
        except asyncio.CancelledError:
            if task not in self.cut:
                raise  # not ours (the server is stopping): let it through
            task.uncancel()
            self._cut.inc()
            if started:  # too late for a 504: the connection closes mid-response
                log.warning("deadline passed mid-response", extra={"path": scope["path"]})
                return
            await self._late.send(scope, send, self.cors.raw_headers(scope["path"], origin))
        finally:
            self.running.pop(task, None)
            self.cut.discard(task)
            context.deadline.reset(token)

    async def _reap(self) -> None:
        """Cancel what has expired, every ``tick``, while anything runs."""
        try:
            while self.running:
                await asyncio.sleep(self.tick)
                now = time.monotonic()
                expired = []
                for task, expires in self.running.items():
                    if expires > now:
                        break  # the rest started later: they expire later
                    expired.append(task)
                for task in expired:
                    del self.running[task]
                    if task.cancel():
                        self.cut.add(task)
        finally:
            self._reaper = None


class Refusal:
    """A problem reply (RFC 9457) built once; per request only its instance and request id
    are filled in."""

    def __init__(self, exc: MeshError) -> None:
        problem = Problem.of(exc)  # an overloaded refusal carries its Retry-After
        self.status = problem.status
        self._prefix = problem.json()[:-1] + b',"instance":'
        self._headers = [(b"content-type", PROBLEM_JSON), *encode_headers(problem.headers)]
        self._headers += SECURITY_HEADERS
        self._headers.append((b"content-security-policy", API_CSP))

    async def send(
        self, scope: Scope, send: Send, extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        rid = _request_id(scope)  # of the request id alphabet: nothing to escape
        body = b"".join(
            (
                self._prefix,
                json.dumps(scope["path"]).encode(),
                b',"request_id":"',
                rid.encode(),
                b'"}',
            )
        )
        headers = [
            *self._headers,
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()),
            *(extra or ()),
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return context.safe_request_id(value.decode("latin-1"))
    return context.new_request_id()
