"""The gateway's own endpoints: health, readiness, metrics, OpenAPI (docs: gateway.docs)."""

from __future__ import annotations

import json

from gateway.docs import docs_routes
from gateway.endpoints import Endpoint, guarded
from gateway.http import Incoming, Reply
from gateway.openapi import build_openapi
from gateway.state import Gateway
from mesh import metrics


def meta_routes(gw: Gateway) -> list[tuple[str, str, Endpoint]]:
    """``(method, path, endpoint)`` of each."""
    openapi = json.dumps(build_openapi(gw.routes, gw.settings)).encode()

    async def healthz(request: Incoming, rl: dict[str, str]) -> Reply:
        request.info.route = "healthz"
        return Reply(200, b'{"status":"ok"}')

    async def readyz(request: Incoming, rl: dict[str, str]) -> Reply:
        request.info.route = "readyz"
        if gw.ready():
            return Reply(200, b'{"status":"ready"}')
        return Reply(503, b'{"status":"not ready"}')

    async def metrics_endpoint(request: Incoming, rl: dict[str, str]) -> Reply:
        request.info.route = "metrics"
        body, ctype = metrics.exposition()
        return Reply(200, body, ctype.encode("latin-1"))

    async def openapi_json(request: Incoming, rl: dict[str, str]) -> Reply:
        request.info.route = "openapi"
        return Reply(200, openapi)

    return [
        ("GET", "/healthz", guarded(healthz)),
        ("GET", "/readyz", guarded(readyz)),
        ("GET", "/metrics", guarded(metrics_endpoint)),
        ("GET", "/openapi.json", guarded(openapi_json)),
        *docs_routes(),
    ]
