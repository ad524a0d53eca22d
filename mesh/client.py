"""Calling an operation over NATS, with the caller's token and trace headers."""

from __future__ import annotations

import asyncio
import itertools
import time
import weakref
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, ValidationError

from contracts import headers as h
from contracts.errors import ErrorBody, ErrorCode, code_for_status
from contracts.policy import Operation
from mesh import context
from mesh.errors import MeshError

# Pauses between attempts when no service answered at all (under 0.8 s in total).
NO_RESPONDER_RETRIES = (0.02, 0.05, 0.1, 0.2, 0.4)


class Replies:
    """One reply subscription per connection (``<inbox>.*``) and the calls waiting on it.

    A request is one publish with a reply subject of that inbox and a future,
    resolved by the subscription's callback or failed by a timer: lighter than
    ``Client.request`` (no ``wait_for``, no per-call NUID). It holds no reference to
    the connection (which holds it, through the subscription).
    """

    def __init__(self, nc: Client) -> None:
        self.prefix = nc.new_inbox() + "."
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._seq = itertools.count()
        self._started: asyncio.Future[None] | None = None
        self.ready = False  # subscribed

    async def start(self, nc: Client) -> None:
        if self.ready:
            return
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                await nc.subscribe(self.prefix + "*", cb=self._on_reply)
            except BaseException as exc:
                started, self._started = self._started, None  # a later call tries again
                started.set_exception(exc)
                started.exception()  # retrieved here; callers waiting on it re-raise it
                raise
            self._started.set_result(None)
            self.ready = True
        await asyncio.shield(self._started)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._waiting.pop(msg.subject[len(self.prefix) :], None)
        if future is not None and not future.done():
            future.set_result(msg)

    async def request(
        self, nc: Client, subject: str, payload: bytes, timeout: float, headers: dict[str, str]
    ) -> Msg:
        """The reply; raises :class:`NoRespondersError` or :class:`TimeoutError`."""
        loop = asyncio.get_running_loop()
        token = str(next(self._seq))
        future: asyncio.Future[Msg] = loop.create_future()
        self._waiting[token] = future
        timer = loop.call_later(timeout, _expire, future)
        try:
            await nc.publish(subject, payload, reply=self.prefix + token, headers=headers)
            msg = await future
        finally:
            timer.cancel()
            self._waiting.pop(token, None)
        if msg.headers and msg.headers.get("Status") == "503":  # as Client.request decides
            raise NoRespondersError
        return msg


def _expire(future: asyncio.Future[Msg]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


# id(connection) -> (a weak reference to it, its replies): no weakref made per call.
_replies: dict[int, tuple[weakref.ref[Client], Replies]] = {}


async def replies_of(nc: Client) -> Replies:
    found = _replies.get(id(nc))
    if found is None or found[0]() is not nc:
        key = id(nc)
        found = _replies[key] = (weakref.ref(nc, lambda _: _replies.pop(key, None)), Replies(nc))
    replies = found[1]
    if not replies.ready:
        await replies.start(nc)
    return replies


def outgoing_headers(token: str | None) -> dict[str, str]:
    hdrs = {
        h.REQUEST_ID: context.request_id.get() or context.new_request_id(),
        h.TRACEPARENT: context.child_traceparent(context.traceparent.get()),
    }
    if token:
        hdrs[h.AUTHORIZATION] = f"Bearer {token}"
    return hdrs


async def request_raw(
    nc: Client,
    subject: str,
    payload: bytes,
    token: str | None,
    timeout: float = 5.0,
    extra_headers: dict[str, str] | None = None,
) -> bytes:
    """Send a request; return the reply payload or raise :class:`MeshError`."""
    hdrs = outgoing_headers(token)
    if extra_headers:
        hdrs.update(extra_headers)
    timeout = _within_deadline(timeout, hdrs)
    deadline = time.monotonic() + timeout
    replies = await replies_of(nc)
    for pause in (*NO_RESPONDER_RETRIES, None):
        try:
            msg = await replies.request(nc, subject, payload, timeout, hdrs)
            break
        except NoRespondersError:
            # Nobody received the request, so sending it again is safe whatever it does:
            # ride out a replica that is (re)starting or a subscription not yet propagated.
            if pause is None or time.monotonic() + pause >= deadline:
                raise MeshError(
                    ErrorCode.UNAVAILABLE, "no service is serving this operation"
                ) from None
            await asyncio.sleep(pause)
            timeout = max(0.05, deadline - time.monotonic())
        except (NatsTimeoutError, TimeoutError):
            raise MeshError(ErrorCode.TIMEOUT, "the service did not answer in time") from None
    status = (msg.headers or {}).get(h.SERVICE_ERROR_CODE)
    if status:
        raise _decode_error(status, msg.data)
    return msg.data


def _within_deadline(timeout: float, hdrs: dict[str, str]) -> float:
    """``timeout``, cut to what is left of the request's deadline (``context.deadline``),
    which the request carries on (``Pm-Deadline``) so the service drops it once stale."""
    now = time.time()
    limit = context.deadline.get()
    if limit is not None and limit - now < timeout:
        timeout = limit - now
        if timeout <= 0:
            raise MeshError(ErrorCode.TIMEOUT, "the request's deadline has passed")
    hdrs[h.DEADLINE] = f"{now + timeout:.3f}"
    return timeout


def _decode_error(status: str, data: bytes) -> MeshError:
    try:
        return MeshError.from_body(ErrorBody.model_validate_json(data))
    except ValidationError:
        code = code_for_status(int(status)) if status.isdigit() else ErrorCode.INTERNAL
        return MeshError(code, "the service reported an error")


async def call(
    nc: Client,
    op: Operation,
    request: BaseModel | dict[str, Any],
    token: str | None,
    timeout: float = 5.0,
) -> Any:
    """Call ``op`` and return its reply model."""
    body = request if isinstance(request, BaseModel) else op.request.model_validate(request)
    data = await request_raw(nc, op.subject, body.model_dump_json().encode(), token, timeout)
    return op.reply.model_validate_json(data)
