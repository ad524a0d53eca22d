"""The identity provider's FastAPI app: wiring in one place."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from contracts.errors import ErrorCode
from contracts.subjects import EVENT_STREAM
from identity.http import (
    account,
    admin,
    alliances,
    authorize,
    broker,
    device,
    factor_admin,
    factors,
    login,
    logout,
    oidc,
    par,
    passkeys,
    platform,
    registration,
    scim,
    scim_admin,
    signup,
)
from identity.http.errors import install as install_errors
from identity.http.runtime import PACKAGE_DIR, build_runtime, trust_proxies
from identity.lean.audit import HandOverRelay, SqliteWriter
from identity.lean.shortcut import TokenFastPath
from identity.settings import IdentitySettings
from identity.store import models
from identity.store.relay import LingeringRelay
from mesh import metrics, migrate
from mesh.backoff import Backoff, retry
from mesh.db import Database
from mesh.defaults import process_defaults
from mesh.errors import MeshError
from mesh.groupcommit import GroupCommit
from mesh.nats import BusAuth, connect
from mesh.outbox import Outbox, OutboxRelay
from mesh.problems import PROBLEM_JSON, Problem
from mesh.startup import database_answers, wait_for_database
from mesh.streams import wait_for_streams

log = logging.getLogger(__name__)

# Makes the database's schema ready before identity serves (default: mesh.migrate.prepare).
Prepare = Callable[[Database, bool], Awaitable[object]]


async def _connect_nats(settings: IdentitySettings) -> Any:
    """NATS, retried with backoff (each attempt bounded by ``nats_connect_timeout_s``)
    until a server answers: identity waits for it instead of exiting."""
    name = f"identity-{settings.instance}"

    async def attempt() -> Any:
        return await asyncio.wait_for(
            connect(settings.nats_url, name, BusAuth.from_settings(settings)),
            settings.nats_connect_timeout_s,
        )

    return await retry(
        f"identity: connecting to NATS at {settings.nats_url}", attempt, Backoff(0.5, 10.0)
    )


async def _start(
    app: FastAPI, settings: IdentitySettings, stack: AsyncExitStack, prepare: Prepare
) -> None:
    """Everything identity needs before it serves: its database, NATS and the event
    stream, each waited for with backoff; then the relay and the audit group commit."""
    db = Database(settings.database_url_or_default("identity"), models.metadata)
    stack.push_async_callback(db.dispose)
    outbox = Outbox(models.metadata)
    await wait_for_database(db, "identity")
    await prepare(db, settings.migrates_on_start())
    nc = await _connect_nats(settings)
    stack.push_async_callback(nc.drain)
    js = nc.jetstream()
    await wait_for_streams(js, (EVENT_STREAM,))
    http = httpx.AsyncClient(timeout=10)
    stack.push_async_callback(http.aclose)
    redis_client = None
    if settings.redis_url:  # DPoP proof replay shared by every replica
        import redis.asyncio as redis

        redis_client = redis.from_url(settings.redis_url)
        stack.push_async_callback(redis_client.aclose)
    rt = app.state.rt = build_runtime(settings, db, outbox, http, redis_client)
    app.state.nc = nc
    relay = _relay(rt.group, outbox, nc, settings)
    tasks = [
        asyncio.create_task(relay.run(), name="identity-relay"),
        asyncio.create_task(app.state.rt.group.run(), name="identity-audit"),
        asyncio.create_task(rt.backchannel.run(rt), name="identity-backchannel"),
    ]
    stack.push_async_callback(_cancel, *tasks)
    app.state.relay = relay
    app.state.started = True
    log.info("identity ready")


def _relay(group: GroupCommit, outbox: Outbox, nc: Any, settings: IdentitySettings) -> OutboxRelay:
    """The outbox relay: with the lean audit writer, committed audit rows go straight out."""
    args = (group.db, outbox, nc, "identity", settings.relay_poll_interval)
    if isinstance(group.writer, SqliteWriter):
        return HandOverRelay(*args, group=group, linger=settings.relay_linger_s)
    return LingeringRelay(*args, linger=settings.relay_linger_s)


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
STARTING = Problem.of(
    MeshError(ErrorCode.UNAVAILABLE, "identity is starting; try again shortly"), "/"
).json()


class IdentityApp(FastAPI):
    """FastAPI with, when ``lean``, the token endpoint's lean client-credentials path in
    front of its whole middleware stack (:mod:`identity.lean.shortcut`); every other
    request goes through as usual."""

    def __init__(self, lean: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fast_path = TokenFastPath(super().__call__, self) if lean else None
        self._serve = self.fast_path or super().__call__

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.state.started and scope["type"] == "http" and scope["path"] not in PROBES:
            await _starting(send)
            return
        await self._serve(scope, receive, send)


async def _starting(send: Any) -> None:
    """503 while start-up still waits for the database, NATS or the stream."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"retry-after", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": STARTING})


def create_app(settings: IdentitySettings, prepare: Prepare = migrate.prepare) -> FastAPI:
    """The app; ``prepare`` makes the schema ready at start (``python -m identity`` leaves
    it to a child process, :func:`mesh.migrate_apart.prepare_apart`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await defaults.start()
            stack.push_async_callback(defaults.stop)
            starting = asyncio.create_task(
                _start(app, settings, stack, prepare), name="identity-start"
            )
            # A healthy start is ready before the first request; one whose dependencies
            # are not up yet serves the probes (not ready) while it goes on waiting.
            await asyncio.wait({starting}, timeout=settings.startup_grace_s)
            if starting.done():
                starting.result()
            else:
                log.warning("identity still waiting for its dependencies; serving probes")
            try:
                yield
            finally:
                await _cancel(starting)

    app = IdentityApp(
        lean=settings.lean,
        title="partnermesh identity",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.started = False
    # Logging is set up by ``python -m identity`` (its commands log too).
    defaults = process_defaults(
        "identity", settings, lambda: _ready(app), lambda: _reasons(app), setup_logging=False
    )
    app.mount("/static", StaticFiles(directory=str(PACKAGE_DIR / "static")), name="static")
    for router in (
        oidc.router,
        authorize.router,
        par.router,
        login.router,
        passkeys.router,
        factors.router,
        account.router,
        logout.router,
        device.router,
        registration.router,
        signup.router,
        broker.router,
        admin.router,
        alliances.router,
        factor_admin.router,
        scim_admin.router,
        scim.router,
        platform.router,
    ):
        app.include_router(router)
    defaults.probes(app, "/healthz", "/readyz", "/metrics")
    _metrics(app)
    install_errors(app)
    trust_proxies(app, settings)
    return app


async def _ready(app: FastAPI) -> bool:
    state = app.state
    return bool(state.started and state.nc.is_connected and await database_answers(state.rt.db))


def _reasons(app: FastAPI) -> list[str]:
    if not app.state.started:
        return ["starting"]
    return [] if app.state.nc.is_connected else ["nats: not connected"]


def _metrics(app: FastAPI) -> None:
    app.add_middleware(HttpMetrics)


class HttpMetrics:
    """Requests and latency per route template (never per raw path: no label explosion).

    A plain ASGI middleware: cheaper on the token endpoint than ``@app.middleware``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            metrics.http_requests.labels("identity", name, str(status[0]), "").inc()
            metrics.http_latency.labels("identity", name).observe(time.perf_counter() - started)
