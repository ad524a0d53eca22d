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
import contextlib
import json
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import uvicorn
from prometheus_client import make_asgi_app

log = logging.getLogger(__name__)

Ready = Callable[[], Awaitable[bool]]
Reasons = Callable[[], list[str]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PROBLEM_JSON = b"application/problem+json"


def not_ready_problem(reasons: list[str]) -> bytes:
    """The body of a 503 from ``/readyz``: a problem saying why, reasons listed."""
    return json.dumps(
        {
            "type": "about:blank",
            "title": "Not ready",
            "status": 503,
            "detail": "; ".join(reasons) or "not ready",
            "reasons": reasons,
        }
    ).encode()


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
            status, ctype = 404, PROBLEM_JSON
            body = b'{"type":"about:blank","title":"Not Found","status":404}'
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
        return 503, PROBLEM_JSON, not_ready_problem(reasons)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Server(uvicorn.Server):
    """uvicorn inside a process that owns its signals: stopped by :meth:`ObserveServer.stop`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ObserveServer:
    """Serves an :class:`OperationsApp` on ``host:port`` (0: a free one, see :attr:`port`)."""

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
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        sock = _bind(self.host, self.port, self.reuse_port)
        self.port = sock.getsockname()[1]
        # Loggers as the process set them (no log_config, log_level or access_log here:
        # uvicorn would reconfigure them for the whole process).
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="operations")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.005)
        return self.port

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
        self._server = self._task = None


def _bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
