"""The gateway's own endpoints: health, readiness, metrics, OpenAPI and its docs page."""

from __future__ import annotations

import json

from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from gateway.edge import request_info
from gateway.openapi import build_openapi
from gateway.state import Gateway
from mesh import metrics


def meta_routes(gw: Gateway) -> list[Route]:
    openapi = json.dumps(build_openapi(gw.routes, gw.settings)).encode()

    async def healthz(request: Request) -> Response:
        request_info(request.scope).route = "healthz"
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        request_info(request.scope).route = "readyz"
        ready = gw.nc is not None and gw.nc.is_connected and gw.verifier is not None
        return JSONResponse({"status": "ready" if ready else "not ready"}, 200 if ready else 503)

    async def metrics_endpoint(request: Request) -> Response:
        request_info(request.scope).route = "metrics"
        body, ctype = metrics.exposition()
        return Response(body, media_type=ctype)

    async def openapi_json(request: Request) -> Response:
        request_info(request.scope).route = "openapi"
        return Response(openapi, media_type="application/json")

    async def docs(request: Request) -> HTMLResponse:
        request_info(request.scope).route = "docs"
        return get_swagger_ui_html(openapi_url="/openapi.json", title="partnermesh API")

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
