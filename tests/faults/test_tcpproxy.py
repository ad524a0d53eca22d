"""The proxy the drills cut databases with: relays, cuts, refuses, restores, balances."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from mesh.localnats import free_port
from tests.support.tcpproxy import TcpProxy


@contextlib.asynccontextmanager
async def echo_server(tag: bytes) -> AsyncIterator[int]:
    """A TCP server that answers every line with ``tag`` + the line."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                writer.write(tag + line)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def ask(port: int, line: bytes) -> bytes:
    """Send one line and read the answer (b"": the connection was closed or reset)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(line)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 5)
    except ConnectionError:
        return b""
    finally:
        writer.close()


class TestTcpProxy:
    async def test_relays_until_cut_and_again_after_restore(self) -> None:
        async with echo_server(b"a:") as port:
            with TcpProxy([("127.0.0.1", port)]) as proxy:
                reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
                writer.write(b"one\n")
                assert await reader.readline() == b"a:one\n"
                assert proxy.cut() == 1
                # the open connection is gone ...
                with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                    writer.write(b"two\n")
                    await writer.drain()
                    line = await asyncio.wait_for(reader.readline(), 5)
                    if not line:
                        raise asyncio.IncompleteReadError(b"", None)
                writer.close()
                # ... and new ones are refused while cut
                assert await ask(proxy.port, b"three\n") == b""
                assert proxy.refused == 1
                proxy.restore()
                assert await ask(proxy.port, b"four\n") == b"a:four\n"

    async def test_balances_and_skips_an_upstream_that_refuses(self) -> None:
        async with echo_server(b"a:") as a, echo_server(b"b:") as b:
            dead = free_port()  # nobody listens there
            with TcpProxy([("127.0.0.1", a), ("127.0.0.1", dead), ("127.0.0.1", b)]) as proxy:
                answers = {await ask(proxy.port, b"x\n") for _ in range(4)}
                assert answers == {b"a:x\n", b"b:x\n"}
