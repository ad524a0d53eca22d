"""The demo seed, run twice over real HTTP against the real service."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable

import httpx
from nats.aio.client import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from contracts.policy import Operation
from contracts.registry import operations_of
from contracts.v1 import collaboration as c
from deploy.demo import collaboration as demo
from mesh.client import request_raw
from mesh.errors import MeshError
from mesh.problems import Problem
from mesh.tokens import bearer
from tests.collaboration.conftest import PEOPLE, Mesh
from tests.support.infra import serve_app


def http_edge(nc: Client) -> Starlette:
    """The HTTP shape of the operations (path + query + JSON body → request), over NATS."""

    def endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            fields = {**request.path_params, **request.query_params}
            if await request.body():
                fields.update(await request.json())
            token = bearer(request.headers.get("authorization"))
            try:
                data = await request_raw(nc, op.subject, json.dumps(fields).encode(), token)
            except MeshError as exc:
                return Problem.of(exc).response()
            return Response(data, status_code=op.status, media_type="application/json")

        return handle

    routes = [
        Route(op.path, endpoint(op), methods=[op.method]) for op in operations_of("collaboration")
    ]
    return Starlette(routes=routes)


class TestDemoSeed:
    async def test_seed_twice_gives_one_copy(self, mesh: Mesh, nc: Client) -> None:
        tokens = {
            who: mesh.tokens.mint(
                eco=mesh.eco, sub=f"{who}-{uuid.uuid4().hex[:6]}", partner=partner,
                roles=list(roles),
            )
            for who, (partner, roles) in PEOPLE.items()
        }  # fmt: skip
        async with serve_app(http_edge(nc)) as url, httpx.AsyncClient(base_url=url) as api:
            for _ in range(2):
                await demo.seed(api, tokens, mesh.eco)
        nadia = tokens["nadia"]
        categories = await mesh.call_as(c.LIST_CATEGORIES, nadia)
        assert [(x.slug, x.thread_count) for x in categories.items] == [
            ("analytics", 1),
            ("logistics", 1),
            ("manufacturing", 1),
        ]
        threads = await mesh.call_as(c.LIST_THREADS, nadia, category="logistics")
        assert [t.post_count for t in threads.items] == [3]
        spaces = await mesh.call_as(c.LIST_WORKSPACES, tokens["carlos"])
        [ws] = spaces.items
        assert ws.partners == ["contoso", "northwind"] and len(ws.members) == 4
        assert (await mesh.call_as(c.LIST_WORKSPACES, tokens["fatima"])).items == []
        inbox = await mesh.call_as(c.LIST_NOTIFICATIONS, tokens["carlos"])
        mentions = [n.content_kind for n in inbox.items if n.kind == "mention"]
        assert mentions == ["note"]
