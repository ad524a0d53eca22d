"""A person's notifications as they happen: ``GET …/notifications/stream``, Server-Sent
Events (``contracts.v1.collaboration.NOTIFICATION_STREAM``).

The caller is authenticated, rate-limited and authorised like any operation; the stream
is theirs alone: it registers for the token's own ``(eco, sub)`` with :mod:`gateway.live`,
and nothing the request says can change that. It must ask for ``Accept:
text/event-stream`` (406 otherwise), which is also what keeps it out of the load
shedder's in-flight bound and deadline (:mod:`gateway.shedding`); the streams of one
process have a bound of their own (``PM_GATEWAY_MAX_STREAMS``, 503 beyond it).

What it sends:

- ``event: notification`` with ``id: <notification id>``: ``{"notification", "unread"}``;
- ``event: read``: ``{"ids", "unread"}`` when the person marked notifications read;
- ``event: unread``: ``{"unread"}`` once, when the stream opens;
- a comment every ``PM_GATEWAY_STREAM_HEARTBEAT_S`` (keeps proxies from timing it out).

It opens by catching up: with ``Last-Event-ID`` (what a browser's EventSource sends when
it reconnects), every notification after that id, from the collaboration service with the
caller's own token. Registration comes first, so nothing recorded meanwhile is missed;
ids already sent are not sent twice. The stream ends when its token expires or is
revoked (an EventSource then reconnects with a fresh token), or when the client leaves.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.v1.collaboration import (
    LIST_NOTIFICATIONS,
    NotificationAdded,
    NotificationsRead,
)
from contracts.v1.collaboration import (
    NOTIFICATION_STREAM as STREAM,
)
from gateway.auth import Caller, authorize
from gateway.dpop import authenticate
from gateway.endpoints import Endpoint, guarded
from gateway.forward import call_operation
from gateway.http import Incoming, Reply, StreamReply, encode_headers
from gateway.routes import RouteTable
from gateway.state import Gateway
from mesh.errors import MeshError
from mesh.problems import Problem

EVENT_STREAM = "text/event-stream"
CATCH_UP = 100  # at most this many missed notifications are replayed on reconnect


def frame(event: str, data: Any, id_: int | None = None) -> bytes:
    head = f"id: {id_}\n" if id_ is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def stream_endpoint(gw: Gateway) -> Endpoint:
    listing = RouteTable([LIST_NOTIFICATIONS]).routes[0]

    async def handler(request: Incoming, rl: dict[str, str]) -> Reply:
        request.info.route = STREAM.name
        caller = request.info.caller = await authenticate(
            request.headers, request.scope, gw.token_verifier(), gw.proofs()
        )
        eco = caller.claims.eco if caller.claims else request.params.get("eco", "-")
        rl.update(await gw.rate_limiter().check(eco, caller, request.client_ip))
        authorize(STREAM.policy, caller, request.params)
        if EVENT_STREAM not in request.headers.get("accept", ""):
            return Reply.problem(
                Problem.for_status(406, f"ask for Accept: {EVENT_STREAM}", request.path)
            )
        after = _last_event_id(request)
        feed = gw.live
        if feed is None or not feed.healthy:
            raise MeshError(ErrorCode.UNAVAILABLE, "live notifications are not available now")
        assert caller.claims is not None  # authorised: a token was given
        key = (caller.claims.eco, caller.claims.sub)
        queue = feed.join(key)
        if queue is None:
            raise MeshError(ErrorCode.OVERLOADED, "too many open streams here; retry later")
        try:
            params = {"eco": key[0], "limit": CATCH_UP if after is not None else 1}
            if after is not None:
                params["after"] = after
            else:
                params["unread_only"] = True
            box = json.loads(await call_operation(gw, listing, caller, params))
        except BaseException:
            feed.leave(key, queue)
            raise
        body = _events(gw, request, caller, key, queue, box, after)
        headers = encode_headers({**rl, "X-Accel-Buffering": "no"})
        return StreamReply(body, EVENT_STREAM.encode(), headers)

    return guarded(handler)


def _last_event_id(request: Incoming) -> int | None:
    """``Last-Event-ID`` (a reconnecting EventSource), else ``?after=`` (a page that
    shows notifications up to that id); anything but a plain number is ignored."""
    sent = request.headers.get("last-event-id", "").strip()
    if not sent:
        sent = request.query_lists().get("after", [""])[-1].strip()
    if sent.isdigit() and len(sent) < 19:
        return int(sent)
    return None


async def _events(
    gw: Gateway,
    request: Incoming,
    caller: Caller,
    key: tuple[str, str],
    queue: asyncio.Queue[EventBase | None],
    box: dict[str, Any],
    after: int | None,
) -> AsyncIterator[bytes]:
    assert gw.live is not None and caller.claims is not None and caller.token is not None
    heartbeat = gw.settings.stream_heartbeat_s
    ends = caller.claims.exp
    left = asyncio.ensure_future(_disconnected(request))
    sent = after or 0
    try:
        yield f"retry: {int(gw.settings.stream_retry_ms)}\n\n".encode()
        if after is not None:
            for item in reversed(box.get("items", [])):
                sent = max(sent, int(item["id"]))
                yield frame("notification", {"notification": item, "unread": None}, item["id"])
        yield frame("unread", {"unread": box.get("unread", 0)})
        while not left.done():
            wait = min(heartbeat, ends - time.time())
            if wait <= 0:
                return  # the token expired: the client comes back with a fresh one
            got = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({got, left}, timeout=wait, return_when="FIRST_COMPLETED")
            if got not in done:
                got.cancel()
                if not left.done():
                    await gw.token_verifier().verify(caller.token)  # revoked? it ends here
                    yield b": keep-alive\n\n"
                continue
            event = got.result()
            if event is None:
                return  # too slow, or the gateway is stopping: the client reconnects
            await gw.token_verifier().verify(caller.token)
            if isinstance(event, NotificationAdded):
                note = event.data.notification
                if note.id <= sent:
                    continue
                sent = note.id
                data = {"notification": note.model_dump(mode="json"), "unread": event.data.unread}
                yield frame("notification", data, note.id)
            elif isinstance(event, NotificationsRead):
                yield frame("read", {"ids": event.data.ids, "unread": event.data.unread})
    except MeshError:
        return  # the token was revoked meanwhile
    finally:
        left.cancel()
        gw.live.leave(key, queue)


async def _disconnected(request: Incoming) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
