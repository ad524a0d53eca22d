"""A TCP relay the test controls: put it between a process and what it reaches (a database,
a set of replicas) to cut every connection at will and restore them later.

It runs its own event loop in a thread, so traffic keeps flowing while the test's loop
is busy (waiting on a subprocess, a dump, a long assertion). ``cut()`` closes every
relayed connection and makes new ones fail at once (accepted, then closed: what a
client sees when the server is gone), until ``restore()``. With several upstreams it
balances round robin and skips one that refuses, like a TCP load balancer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Coroutine
from typing import Any

from mesh.localnats import free_port


class TcpProxy:
    """Relays ``127.0.0.1:<port>`` to ``upstreams`` (host, port) until :meth:`close`."""

    def __init__(self, upstreams: list[tuple[str, int]], name: str = "proxy") -> None:
        if not upstreams:
            raise ValueError("a proxy needs at least one upstream")
        self.upstreams = list(upstreams)
        self.name = name
        self.port = free_port()
        self.accepted = 0  # connections relayed since start
        self.refused = 0  # connections closed at once because the link was cut
        self._cut = False
        self._next = itertools.cycle(range(len(self.upstreams)))
        self._open: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    @property
    def is_cut(self) -> bool:
        return self._cut

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def cut(self) -> int:
        """Close every relayed connection and refuse new ones; returns how many were open."""
        return int(self._call(self._cut_all()))

    def restore(self) -> None:
        """Relay new connections again."""
        self._cut = False

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- in the proxy's loop --------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_all()
        if self._relays:  # let them see their connections gone and return
            await asyncio.wait(set(self._relays), timeout=2)
        self._cut = False

    async def _cut_all(self) -> int:
        self._cut = True
        writers = list(self._open)
        for writer in writers:
            writer.transport.abort()
        self._open.clear()
        return len(writers) // 2

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        last: OSError | None = None
        for _ in range(len(self.upstreams)):
            host, port = self.upstreams[next(self._next)]
            try:
                return await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            except (OSError, TimeoutError) as exc:
                last = OSError(str(exc))
        raise last or OSError("no upstream")

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._relays.add(task)
            task.add_done_callback(self._relays.discard)
        if self._cut:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await self._connect_upstream()
        except OSError:
            writer.transport.abort()
            return
        if self._cut:  # cut while we were connecting
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self.accepted += 1
        self._open.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._open.discard(w)
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
