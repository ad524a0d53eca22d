"""mesh.client's request path: one reply subscription per connection, futures and timers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from contracts.errors import ErrorCode
from mesh.client import replies_of, request_raw
from mesh.errors import MeshError

SUBJECT = "pm.v1.testing.client"


@pytest.fixture
async def responder(nc: Client) -> AsyncIterator[dict[str, bool]]:
    """A real NATS responder: answers with the payload, or stays silent while ``quiet``."""
    state = {"quiet": False}

    async def handle(msg: Msg) -> None:
        if not state["quiet"]:
            await msg.respond(b"re:" + msg.data)

    sub = await nc.subscribe(SUBJECT, cb=handle)
    await nc.flush()
    yield state
    await sub.unsubscribe()


class TestRequests:
    async def test_each_concurrent_call_gets_its_own_reply(
        self, nc: Client, responder: dict[str, bool]
    ) -> None:
        payloads = [str(i).encode() for i in range(50)]
        replies = await asyncio.gather(*(request_raw(nc, SUBJECT, p, None, 2.0) for p in payloads))
        assert replies == [b"re:" + p for p in payloads]

    async def test_a_timeout_is_504_and_leaves_nothing_waiting(
        self, nc: Client, responder: dict[str, bool]
    ) -> None:
        responder["quiet"] = True
        with pytest.raises(MeshError) as err:
            await request_raw(nc, SUBJECT, b"x", None, 0.1)
        assert err.value.code is ErrorCode.TIMEOUT
        responder["quiet"] = False
        assert await request_raw(nc, SUBJECT, b"y", None, 2.0) == b"re:y"
        assert not (await replies_of(nc))._waiting

    async def test_a_cancelled_call_leaves_nothing_waiting(
        self, nc: Client, responder: dict[str, bool]
    ) -> None:
        responder["quiet"] = True
        call = asyncio.ensure_future(request_raw(nc, SUBJECT, b"x", None, 5.0))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not (await replies_of(nc))._waiting

    async def test_nobody_listening_is_503(self, nc: Client) -> None:
        with pytest.raises(MeshError) as err:
            await request_raw(nc, "pm.v1.testing.nobody", b"x", None, 2.0)
        assert err.value.code is ErrorCode.UNAVAILABLE
