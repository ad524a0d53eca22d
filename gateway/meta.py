"""The gateway's own endpoints: health, readiness, OpenAPI (docs: gateway.docs), and the
operations port (``PM_GATEWAY_OBSERVE_HOST``/``_PORT``) that serves ``/metrics``: metrics
are labelled by partner, so they are not served on the public port."""

from __future__ import annotations

import json

from gateway.docs import docs_routes
from gateway.endpoints import Endpoint, guarded
from gateway.http import Incoming, Reply
from gateway.openapi import build_openapi
from gateway.state import Gateway
from mesh.defaults import ProcessDefaults, process_defaults
from mesh.observe import OperationsApp


def meta_routes(gw: Gateway) -> list[tuple[str, str, Endpoint]]:
    """``(method, path, endpoint)`` of each."""
    openapi = json.dumps(build_openapi(gw.routes, gw.settings)).encode()

    async def healthz(request: Incoming, rl: dict[str, str]) -> Reply:
        request.info.route = "healthz"
        return Reply(200, b'{"status":"ok"}')

    probes = OperationsApp(lambda: ready(gw), lambda: reasons(gw))

    async def readyz(request: Incoming, rl: dict[str, str]) -> Reply:
        request.info.route = "readyz"
        status, ctype, body = await probes.readiness()  # as on the operations port
        return Reply(status, body, ctype)

    async def openapi_json(request: Incoming, rl: dict[str, str]) -> Reply:
        request.info.route = "openapi"
        return Reply(200, openapi)

    return [
        ("GET", "/healthz", guarded(healthz)),
        ("GET", "/readyz", guarded(readyz)),
        ("GET", "/openapi.json", guarded(openapi_json)),
        *docs_routes(),
    ]


async def ready(gw: Gateway) -> bool:
    """Connected to NATS, with a token verifier, hearing revocations (:meth:`Gateway.ready`)."""
    return gw.ready()


def reasons(gw: Gateway) -> list[str]:
    """What keeps the gateway from being ready, in words (the /readyz body)."""
    found = [] if gw.nc is not None and gw.nc.is_connected else ["nats: not connected"]
    if gw.feed is None or not gw.feed.following:
        found.append("revocation feed: not following")
    return found


def operations_server(gw: Gateway) -> ProcessDefaults:
    """The gateway's process defaults: ``/metrics``, ``/healthz`` and ``/readyz`` on the
    operations port (one per worker process; workers share the port). Logging is set up
    by ``python -m gateway`` (its workers too), before the app exists."""
    settings = gw.settings
    return process_defaults(
        "gateway",
        settings,
        lambda: ready(gw),
        lambda: reasons(gw),
        setup_logging=False,
        reuse_port=settings.workers > 1,
    )
