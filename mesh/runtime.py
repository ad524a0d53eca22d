"""Process wiring for a NATS service, in one place.

A service's ``__main__`` reads::

    settings = ProfileSettings()
    async with service_runtime("profile", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()

and runs ``main()`` with :func:`run` (uvloop when installed).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import MetaData

from contracts.policy import Operation
from mesh import logging as mesh_logging
from mesh import migrate
from mesh.consumer import EventConsumer, EventHandler, Inbox
from mesh.db import Database
from mesh.nats import BusAuth, connect, ensure_event_stream
from mesh.observe import ObserveServer
from mesh.outbox import Outbox, OutboxRelay
from mesh.revocation import RevocationFeed
from mesh.service import Handler, MeshService
from mesh.settings import ServiceSettings
from mesh.tokens import RemoteJwks, TokenVerifier
from mesh.tracing import sdk_provider

log = logging.getLogger(__name__)
VERSION = "0.1.0"


@dataclass
class ServiceRuntime:
    """Everything a service's handlers need: NATS, its database, outbox, token verifier."""

    name: str
    settings: ServiceSettings
    nc: Client
    js: JetStreamContext
    db: Database
    outbox: Outbox
    inbox: Inbox
    service: MeshService
    relay: OutboxRelay
    observe: ObserveServer
    revocations: RevocationFeed
    consumers: list[EventConsumer] = field(default_factory=list)
    http: httpx.AsyncClient | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _consuming: list[tuple[EventConsumer, asyncio.Task[None]]] = field(default_factory=list)
    _background: list[tuple[str, Callable[[], Awaitable[None]]]] = field(default_factory=list)

    def endpoint(self, operation: Operation, handler: Handler) -> None:
        self.service.register(operation, handler)

    def consume(self, durable: str, filter_subjects: list[str], handler: EventHandler) -> None:
        self.consumers.append(
            EventConsumer(self.js, self.db, self.inbox, durable, filter_subjects, handler)
        )

    def background(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        """Run ``factory()`` as a task from :meth:`start` until :meth:`stop` (e.g. a worker)."""
        self._background.append((name, factory))

    async def start(self) -> None:
        await self.revocations.start()  # revoked tokens are refused from the first request
        await self.service.start()
        for name, factory in self._background:
            self._tasks.append(asyncio.create_task(factory(), name=f"{self.name}-{name}"))  # type: ignore[arg-type]
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-relay"))
        for c in self.consumers:
            task = asyncio.create_task(c.run(), name=f"{self.name}-{c.durable}")
            self._consuming.append((c, task))
            self._tasks.append(task)
        port = await self.observe.start()
        log.info("service ready", extra={"service": self.name, "observe_port": port})

    async def stop(self, grace: float = 5.0) -> None:
        await self.service.stop()
        # A consumer handling an event finishes it (its transaction) before it is cancelled;
        # one waiting for messages is cancelled at once.
        for c in self.consumers:
            c.stop()
        busy = [task for c, task in self._consuming if c.busy]
        if busy:
            await asyncio.wait(busy, timeout=grace)
        self._consuming.clear()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.observe.stop()
        await self.revocations.stop()

    async def ready(self) -> bool:
        return self.nc.is_connected and await self.db.ping()

    async def serve_forever(self) -> None:
        """Start, then wait for SIGTERM/SIGINT and stop cleanly (drain NATS)."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        log.info("stopping", extra={"service": self.name})
        await self.stop()


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a process's main coroutine: on uvloop when it is installed (it comes with
    ``uvicorn[standard]``; its event loop costs markedly less per message), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


async def drain(nc: Client) -> None:
    if not nc.is_closed:
        await nc.drain()


@asynccontextmanager
async def service_runtime(
    name: str,
    settings: ServiceSettings,
    metadata: MetaData,
    verifier: TokenVerifier | None = None,
    setup_logging: bool = True,
    tracer_provider: Any = None,
) -> AsyncIterator[ServiceRuntime]:
    """The runtime of service ``name``; ``tracer_provider`` records its spans (tests),
    else ``settings.otel`` decides whether it records any."""
    if setup_logging:
        mesh_logging.setup(f"{name}-{settings.instance}", settings.log_level, settings.log_json)
    async with AsyncExitStack() as stack:
        outbox, inbox = Outbox(metadata), Inbox(metadata)
        db = Database(settings.database_url_or_default(name), metadata)
        stack.push_async_callback(db.dispose)
        await migrate.prepare(db, settings.migrates_on_start())
        http = httpx.AsyncClient(timeout=10)
        stack.push_async_callback(http.aclose)
        if verifier is None:
            verifier = TokenVerifier(
                RemoteJwks(http),
                settings.identity_url,
                settings.audience,
                settings.extra_trusted_issuers,
            )
        nc = await connect(
            settings.nats_url, f"{name}-{settings.instance}", BusAuth.from_settings(settings)
        )
        stack.push_async_callback(drain, nc)
        js = nc.jetstream()
        await ensure_event_stream(js)
        if tracer_provider is None and settings.otel:
            tracer_provider = sdk_provider(f"partnermesh-{name}", settings.instance)
        service = MeshService(
            nc,
            name,
            VERSION,
            verifier,
            f"partnermesh {name} service",
            settings.max_concurrency,
            tracer=tracer_provider.get_tracer(f"partnermesh.{name}") if tracer_provider else None,
        )
        rt = ServiceRuntime(
            name=name,
            settings=settings,
            nc=nc,
            js=js,
            db=db,
            outbox=outbox,
            inbox=inbox,
            service=service,
            relay=OutboxRelay(db, outbox, js, name),
            observe=ObserveServer(settings.observe_host, settings.observe_port, lambda: rt.ready()),
            revocations=RevocationFeed(js, verifier.revoked),
            http=http,
        )
        stack.push_async_callback(rt.stop)
        yield rt
