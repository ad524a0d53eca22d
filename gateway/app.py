"""The gateway application: ``create_app(settings, verifier)``.

The lifespan connects NATS, builds an httpx client and (unless one is given) a
token verifier on the issuers' JWKS, and the rate limiter (Redis-shared when
configured). Routes come from ``contracts.registry.OPERATIONS``; the table refuses
operations it could not enforce, so the app does not start with one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx

from contracts.policy import Operation
from contracts.registry import OPERATIONS
from contracts.subjects import EVENT_STREAM
from contracts.v1.collaboration import NOTIFICATION_STREAM as STREAM
from gateway import mashup
from gateway.dpop import EdgeDPoP
from gateway.edge import Edge
from gateway.endpoints import Endpoint, operation_endpoint
from gateway.live import LiveFeed
from gateway.livestream import stream_endpoint
from gateway.meta import meta_routes, operations_server
from gateway.ratelimit import RateLimiter, make_buckets
from gateway.routes import RouteTable
from gateway.settings import GatewaySettings
from gateway.shedding import LoadShedder
from gateway.state import Gateway
from gateway.tracing import make_tracing
from mesh.nats import BusAuth
from mesh.revocation import RevocationFeed
from mesh.startup import connect_nats
from mesh.streams import wait_for_streams
from mesh.tokens import RemoteJwks, TokenVerifier

log = logging.getLogger(__name__)


def default_verifier(settings: GatewaySettings, http: httpx.AsyncClient) -> TokenVerifier:
    return TokenVerifier(
        RemoteJwks(http, refresh_cooldown=settings.jwks_refresh_cooldown),
        settings.identity_url,
        settings.audience,
        settings.extra_trusted_issuers,
        cache_size=settings.token_cache_size if settings.token_cache else 0,
    )


async def _connect(gw: Gateway, stack: AsyncExitStack) -> None:
    """NATS (retried until a server answers), the event stream (waited for), then the
    revocation feed, caught up; only then ``gw.nc`` is set and operations flow."""
    settings = gw.settings
    nc = await connect_nats(
        settings.nats_url, f"gateway-{settings.instance}", BusAuth.from_settings(settings)
    )
    stack.push_async_callback(nc.drain)
    js = nc.jetstream()
    await wait_for_streams(js, (EVENT_STREAM,))
    assert gw.verifier is not None
    feed = RevocationFeed(js, gw.verifier.revoked)
    stack.push_async_callback(feed.stop)
    await feed.start()  # replays recent revocations before the first request
    gw.feed = feed
    live = LiveFeed(js, STREAM.events, settings.max_streams)
    stack.push_async_callback(live.stop)
    await live.start()
    gw.live = live
    gw.nc = nc
    log.info("gateway connected")


def create_app(
    settings: GatewaySettings,
    verifier: TokenVerifier | None = None,
    operations: Iterable[Operation] = OPERATIONS,
    tracer_provider: Any = None,
) -> LoadShedder:
    """The gateway (an ASGI application behind its load shedding, :mod:`gateway.shedding`)
    for ``operations`` (default: the whole registry).

    ``verifier`` replaces the JWKS-backed token verifier (tests); ``tracer_provider``
    an OpenTelemetry provider to record spans with (else ``settings.otel`` decides).
    """
    gw = Gateway(
        settings=settings,
        routes=RouteTable(operations),
        tracing=make_tracing(settings, tracer_provider),
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            http = httpx.AsyncClient(timeout=5, transport=settings.identity_route().transport())
            stack.push_async_callback(http.aclose)
            buckets, redis_client = make_buckets(settings)
            if redis_client is not None:
                stack.push_async_callback(redis_client.aclose)
            ops = operations_server(gw)  # /metrics off the public port
            await ops.start()
            stack.push_async_callback(ops.stop)
            gw.limiter = RateLimiter(settings, buckets)
            gw.dpop = EdgeDPoP(settings, redis_client)  # jti replay shared through Redis
            gw.verifier = verifier or default_verifier(settings, http)
            starting = asyncio.create_task(_connect(gw, stack), name="gateway-start")
            # A healthy start is ready before the first request; one whose NATS or
            # stream is not up yet serves (/readyz 503, operations 503) while it waits.
            await asyncio.wait({starting}, timeout=settings.startup_grace_s)
            if starting.done():
                starting.result()
            else:
                log.warning("gateway still waiting for NATS and the event stream; serving")
            try:
                yield
            finally:
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)

    # Operations first: they are what the gateway is for, and the first match wins.
    routes: list[tuple[str, str, Endpoint]] = [
        (b.op.method, b.op.path, operation_endpoint(gw, b)) for b in gw.routes.routes
    ]
    routes.append(("POST", mashup.PATH, mashup.mashup_endpoint(gw)))
    routes.append(("GET", STREAM.path, stream_endpoint(gw)))
    routes.extend(meta_routes(gw))
    return LoadShedder(Edge(routes, settings, gw.tracing, lifespan), settings)
