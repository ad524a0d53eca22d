"""A tiny HTTP listener for operations: /metrics, /healthz, /readyz.

Processes without an HTTP API serve only this; the gateway serves it beside its API, so
metrics (labelled by partner) never reach the public port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from mesh import metrics

Ready = Callable[[], Awaitable[bool]]
Reasons = Callable[[], list[str]]


class ObserveServer:
    """``ready`` decides /readyz (200 or 503); ``reasons`` says, when it is 503, why."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: Ready,
        reasons: Reasons | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.ready = ready
        self.reasons = reasons
        # Several worker processes of one server may share the port (SO_REUSEPORT).
        self.reuse_port = reuse_port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_port=self.reuse_port or None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            status, ctype, body = await self._route(path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _route(self, path: str) -> tuple[str, str, bytes]:
        if path == "/metrics":
            body, ctype = metrics.exposition()
            return "200 OK", ctype, body
        if path == "/healthz":
            return "200 OK", "application/json", b'{"status":"ok"}'
        if path == "/readyz":
            if await self.ready():
                return "200 OK", "application/json", b'{"status":"ready"}'
            doc: dict[str, object] = {"status": "not ready"}
            if self.reasons is not None:
                doc["reasons"] = self.reasons()
            return "503 Service Unavailable", "application/json", json.dumps(doc).encode()
        return "404 Not Found", "application/json", b'{"status":"not found"}'
