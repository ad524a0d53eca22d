"""Process wiring for a NATS service, in one place.

A service's ``__main__`` reads::

    settings = ProfileSettings()
    async with service_runtime("profile", settings, models.metadata) as rt:
        handlers.register(rt)
        await rt.serve_forever()

and runs ``main()`` with :func:`run` (uvloop when installed).

Start-up waits instead of crashing: the observe listener (/readyz 503 meanwhile) comes
up first, then NATS, the database and the streams are retried with backoff until they
answer. Once started, consumers and the revocation feed are supervised (restarted if
their task ever ends) and :meth:`ServiceRuntime.ready` is true only while every one of
them can pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import MetaData

from contracts.policy import Operation
from mesh import migrate
from mesh.backoff import Backoff
from mesh.consumer import EventConsumer, EventHandler, Inbox, RetrySchedule
from mesh.db import Database
from mesh.defaults import process_defaults
from mesh.nats import BusAuth
from mesh.observe import ObserveServer
from mesh.outbox import Outbox, OutboxRelay
from mesh.revocation import RevocationFeed
from mesh.service import Handler, MeshService
from mesh.settings import ServiceSettings
from mesh.startup import connect_nats, database_answers, wait_for_database
from mesh.streams import wait_for_streams
from mesh.tokens import RemoteJwks, TokenVerifier

log = logging.getLogger(__name__)

try:  # the release's version, from the installed distribution (pyproject.toml is its one source)
    VERSION = importlib.metadata.version("partnermesh")
except importlib.metadata.PackageNotFoundError:  # run from a bare source tree
    VERSION = "0.0.0"


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
    _replays: list[Any] = field(default_factory=list)
    _started: bool = False

    def endpoint(self, operation: Operation, handler: Handler) -> None:
        self.service.register(operation, handler)

    def endpoints(self, routes: Mapping[Operation, Handler]) -> None:
        """Serve each operation with its handler ``fn(claims, req)``."""
        for operation, handler in routes.items():
            self.service.register(operation, handler)

    def consume(
        self,
        durable: str,
        filter_subjects: list[str],
        handler: EventHandler,
        together: bool = False,
    ) -> None:
        """Consume ``filter_subjects`` as ``durable``; ``together``: each fetched batch in
        one transaction when it can (:mod:`mesh.consumer_batch`)."""
        s = self.settings
        schedule = RetrySchedule(
            tuple(s.consumer_retry_delays), s.consumer_max_deliver, s.consumer_ack_wait_s
        )
        self.consumers.append(
            EventConsumer(
                self.js,
                self.db,
                self.inbox,
                durable,
                filter_subjects,
                handler,
                process=self.name,
                schedule=schedule,
                together=together,
            )
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
            task = asyncio.create_task(self._supervise(c), name=f"{self.name}-{c.durable}")
            self._consuming.append((c, task))
            self._tasks.append(task)
            self._replays.append(await c.serve_replays(self.nc))
            self._replays.append(await c.watch_exhausted(self.nc))
        if self.consumers:  # ready at once when all is well: each has tried to subscribe
            attempts = [asyncio.create_task(c.attempted.wait()) for c in self.consumers]
            await asyncio.wait(attempts, timeout=10)
            for attempt in attempts:
                attempt.cancel()
        self._started = True
        port = self.observe.port
        log.info("service ready", extra={"service": self.name, "observe_port": port})

    async def _supervise(self, consumer: EventConsumer) -> None:
        """Run ``consumer`` until it is stopped; should its task ever end otherwise (it
        handles its own errors, so only a bug would), log it and run it again."""
        backoff = Backoff(0.5, 30.0)
        while True:
            try:
                await consumer.run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer crashed; restarting", extra={"consumer": consumer.durable})
            if consumer.stopping:
                return
            await backoff.sleep()

    async def stop(self, grace: float = 5.0) -> None:
        self._started = False
        for sub in self._replays:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._replays.clear()
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
        await self.revocations.stop()

    async def ready(self) -> bool:
        """Started, connected, the database answering, and every consumer and the
        revocation feed able to pull (each heals by itself; so does readiness)."""
        return (
            self._started
            and self.nc.is_connected
            and self.revocations.following
            and all(c.healthy for c in self.consumers)
            and all(not task.done() for _, task in self._consuming)
            and await database_answers(self.db)
        )

    def not_ready_reasons(self) -> list[str]:
        """What keeps the process from being ready, in words (logs, /readyz body)."""
        reasons = [] if self._started else ["starting"]
        if not self.nc.is_connected:
            reasons.append("nats: not connected")
        if not self.revocations.following:
            reasons.append(f"revocation feed: {self.revocations.last_error or 'not following'}")
        reasons += [
            f"consumer {c.durable}: {c.last_error or 'not pulling'}"
            for c in self.consumers
            if not c.healthy
        ]
        return reasons

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
    """The runtime of service ``name`` on its process defaults (:mod:`mesh.defaults`);
    ``tracer_provider`` records its spans (tests), else ``settings.otel`` decides."""
    holder: list[ServiceRuntime] = []
    defaults = process_defaults(
        name,
        settings,
        lambda: holder[0].ready() if holder else _not_yet(),
        lambda: holder[0].not_ready_reasons() if holder else ["starting"],
        setup_logging=setup_logging,
        tracer_provider=tracer_provider,
    )
    async with AsyncExitStack() as stack:
        # /readyz answers 503 from the first moment, while the rest waits for NATS,
        # the database and the streams.
        await defaults.start()
        stack.push_async_callback(defaults.stop)
        outbox, inbox = Outbox(metadata), Inbox(metadata)
        db = Database(settings.database_url_or_default(name), metadata)
        stack.push_async_callback(db.dispose)
        await wait_for_database(db, name)
        await migrate.prepare(db, settings.migrates_on_start())
        # identity's documents and keys: at its internal address when one is set
        http = httpx.AsyncClient(timeout=10, transport=settings.identity_route().transport())
        stack.push_async_callback(http.aclose)
        if verifier is None:
            verifier = TokenVerifier(
                RemoteJwks(http),
                settings.identity_url,
                settings.audience,
                settings.extra_trusted_issuers,
            )
        nc = await connect_nats(
            settings.nats_url, f"{name}-{settings.instance}", BusAuth.from_settings(settings)
        )
        stack.push_async_callback(drain, nc)
        js = nc.jetstream()
        await wait_for_streams(js)
        service = MeshService(
            nc,
            name,
            VERSION,
            verifier,
            f"partnermesh {name} service",
            settings.max_concurrency,
            tracer=defaults.tracer(),
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
            relay=OutboxRelay(db, outbox, nc, name),
            observe=defaults.operations,
            revocations=RevocationFeed(js, verifier.revoked),
            http=http,
        )
        holder.append(rt)
        stack.push_async_callback(rt.stop)
        yield rt


async def _not_yet() -> bool:
    return False
