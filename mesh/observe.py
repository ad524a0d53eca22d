"""The operations app every process serves: ``/metrics``, ``/healthz``, ``/readyz``.

One ASGI app (:class:`OperationsApp`): ``/metrics`` is prometheus-client's exposition
(text or OpenMetrics, gzip when asked), ``/healthz`` says the process runs, ``/readyz``
says whether it can work now (200) or why not (503, RFC 9457 problem+json with the
``reasons``). :class:`ObserveServer` serves it on the process's operations port; the
HTTP processes whose probes the manifests point at their public port (identity, portal)
route those paths to the same app (:meth:`mesh.defaults.ProcessDefaults.probes`).
Metrics (labelled by partner at the gateway) stay off the public ports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

from prometheus_client import make_asgi_app

from mesh.problems import PROBLEM_JSON, Problem

log = logging.getLogger(__name__)

Ready = Callable[[], Awaitable[bool]]
Reasons = Callable[[], list[str]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_PROBLEM = PROBLEM_JSON.encode()
NOT_FOUND = Problem(404, "Not Found").json()


def not_ready_problem(reasons: list[str]) -> bytes:
    """The body of a 503 from ``/readyz``: a problem saying why, reasons listed."""
    detail = "; ".join(reasons) or "not ready"
    return Problem(503, "Not ready", detail=detail, members={"reasons": reasons}).json()


class OperationsApp:
    """``ready`` decides ``/readyz`` (200 or 503); ``reasons`` says, when it is 503, why."""

    def __init__(self, ready: Ready, reasons: Reasons | None = None) -> None:
        self.ready = ready
        self.reasons = reasons
        self.metrics = make_asgi_app()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        path = scope.get("path", "/")
        if path == "/metrics":
            await self.metrics(scope, receive, send)
            return
        if path == "/healthz":
            status, ctype, body = 200, b"application/json", b'{"status":"ok"}'
        elif path == "/readyz":
            status, ctype, body = await self.readiness()
        else:
            status, ctype, body = 404, _PROBLEM, NOT_FOUND
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def readiness(self) -> tuple[int, bytes, bytes]:
        if await self.ready():
            return 200, b"application/json", b'{"status":"ready"}'
        reasons = self.reasons() if self.reasons is not None else []
        return 503, _PROBLEM, not_ready_problem(reasons)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class ObserveServer:
    """Serves an :class:`OperationsApp` on ``host:port`` (0: a free one, see :attr:`port`).

    A minimal HTTP/1.1 listener (one request per connection, as probes and scrapers
    send): it starts and stops in milliseconds, which every service start pays."""

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
        self.app = OperationsApp(ready, reasons)
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
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            headers: list[tuple[bytes, bytes]] = []
            while len(headers) < 100:
                raw = await asyncio.wait_for(reader.readline(), 5)
                if raw in (b"\r\n", b"\n", b""):
                    break
                name, _, value = raw.partition(b":")
                headers.append((name.strip().lower(), value.strip()))
            parts = line.decode("latin-1").split()
            method = parts[0] if parts else "GET"
            target = parts[1] if len(parts) > 1 else "/"
            path, _, query = target.partition("?")
            writer.write(await self._respond(method, path, query, headers))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _respond(
        self, method: str, path: str, query: str, headers: list[tuple[bytes, bytes]]
    ) -> bytes:
        """The app's response to one request, as HTTP/1.1 bytes."""
        scope: Scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": headers,
            "server": (self.host, self.port),
        }
        start: MutableMapping[str, Any] = {}
        body: list[bytes] = []

        async def receive() -> MutableMapping[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))

        await self.app(scope, receive, send)
        content = b"".join(body)
        status = int(start.get("status", 500))
        head = [f"HTTP/1.1 {status} {_phrase(status)}".encode()]
        head += [name + b": " + value for name, value in start.get("headers", [])]
        head += [b"Content-Length: " + str(len(content)).encode(), b"Connection: close"]
        return b"\r\n".join(head) + b"\r\n\r\n" + content


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
