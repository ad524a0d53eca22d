"""The demo seed runs through HTTP against the real service and leaves an approved introduction.

The gateway lives in its own package; here a small HTTP → NATS forwarder built from the
contracts' routes stands in for it, served by a real uvicorn on loopback.
"""

import json
import re
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from nats.aio.client import Client

from contracts.claims import Role
from contracts.registry import operations_of
from deploy.demo.matching import seed
from mesh.client import request_raw
from mesh.errors import MeshError
from mesh.problems import Problem
from mesh.tokens import bearer
from tests.matching.conftest import until
from tests.support.infra import serve_app

DEMO = {
    # username: (partner, roles, needs, offers)
    "olivia": ("acme-hq", (Role.OPERATOR, Role.MEMBER), [], []),
    "bruno": ("acme-hq", (Role.BROKER, Role.MEMBER), [], []),
    "noah": ("northwind", (Role.MEMBER,), ["demand forecasting"], ["freight forwarding"]),
    "chloe": ("contoso", (Role.MEMBER,), ["shipping goods"], ["cnc machining"]),
    "felix": ("fabrikam", (Role.MEMBER,), ["precision milling"], ["sales prediction"]),
}


def forwarder(nc: Client) -> FastAPI:
    app = FastAPI()
    routes = [
        (op, re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", op.path) + "$"))
        for op in operations_of("matching")
    ]

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward(path: str, request: Request) -> Response:
        for op, pattern in routes:
            found = pattern.match("/" + path)
            if op.method != request.method or not found:
                continue
            body = dict(request.query_params) if op.method == "GET" else await request.json()
            body.update(found.groupdict())
            token = bearer(request.headers.get("authorization"))
            try:
                data = await request_raw(
                    nc, op.subject, json.dumps(body).encode(), token, timeout=30
                )
            except MeshError as exc:
                return Problem.of(exc).response()
            return Response(data, status_code=op.status, media_type="application/json")
        return JSONResponse({"code": "not_found"}, status_code=404)

    return app


class TestDemoSeed:
    async def test_seed_leaves_an_approved_introduction(self, mesh: Any) -> None:
        tokens = {}
        for user, (partner, roles, needs, offers) in DEMO.items():
            tokens[user] = mesh.token(user, roles=roles, partner=partner)
            if needs:
                await mesh.person(user, partner, needs, offers)
        await until(lambda: len(mesh.svc.store.eco(mesh.eco).people) == 3)
        async with serve_app(forwarder(mesh.nc)) as url, httpx.AsyncClient(base_url=url) as api:
            await seed(api, tokens, mesh.eco)
            await seed(api, tokens, mesh.eco)  # again: nothing new
            broker = {"Authorization": f"Bearer {tokens['bruno']}"}
            intros = (
                await api.get(f"/v1/ecosystems/{mesh.eco}/introductions", headers=broker)
            ).json()
        statuses = sorted(i["status"] for i in intros["introductions"])
        # The demo's three members form a cycle of one-sided needs (each serves the next):
        # every pair counts now, so one optimiser run proposes up to all three pairs.
        assert "approved" in statuses and len(statuses) <= 3
        approved = next(i for i in intros["introductions"] if i["status"] == "approved")
        assert {approved["a"], approved["b"]} <= {"noah", "chloe", "felix"}
        assert approved["note"]
