"""Connector pages against the real connector service and a real back-end on loopback:
a partner admin registers a back-end, declares and grants an operation; the grantee calls it."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI

from tests.connector.backends import Receiver, receiver_app, standard_signature
from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import Mesh
from tests.support.infra import serve_app

T = TypeVar("T")


def stock_backend() -> FastAPI:
    app = FastAPI()

    @app.get("/stock/{sku}")
    async def stock(sku: str) -> dict[str, Any]:
        return {"sku": sku, "available": 42}

    return app


@pytest.fixture
async def backend_url() -> AsyncIterator[str]:
    """A partner's back-end system: a real HTTP server on loopback."""
    async with serve_app(stock_backend()) as url:
        yield url


async def post(client: httpx.AsyncClient, action: str, data: dict[str, Any]) -> httpx.Response:
    token = csrf_of((await client.get("/connectors")).text)
    return await client.post(action, data={**data, "csrf": token})


class TestConnectorPages:
    async def test_register_declare_grant_and_call(self, mesh: Mesh, backend_url: str) -> None:
        async with sign_in(mesh, "nadia") as admin:
            resp = await post(
                admin, "/connectors/backends", {"name": "wms", "base_url": backend_url}
            )
            assert resp.status_code == 200 and "Not done" not in resp.text, resp.text[-2000:]
            resp = await post(
                admin,
                "/connectors/operations",
                {
                    "backend": "wms",
                    "name": "stock",
                    "method": "GET",
                    "path": "/stock/{sku}",
                    "visibility": "private",
                    "description": "Stock on hand",
                },
            )
            assert "northwind.stock" in resp.text and "Not done" not in resp.text
            resp = await post(
                admin, "/connectors/grants", {"operation": "northwind.stock", "grantee": "contoso"}
            )
            assert re.search(r"Contoso Manufacturing\s*<form", resp.text), "the grant is listed"
        async with sign_in(mesh, "carlos") as grantee:
            page = await grantee.get("/connectors")
            assert "northwind.stock" in page.text and "granted" in page.text
            resp = await post(
                grantee,
                "/connectors/invoke",
                {
                    "operation": "northwind.stock",
                    "input": '{"sku": "A-1"}',
                },
            )
            assert "Result of northwind.stock (HTTP 200)" in resp.text
            assert "&#34;available&#34;: 42" in resp.text or '"available": 42' in resp.text
            resp = await post(
                grantee,
                "/connectors/invoke",
                {
                    "operation": "northwind.stock",
                    "input": "[1, 2]",
                },
            )
            assert "must be a JSON object" in resp.text
        async with sign_in(mesh, "felix") as outsider:
            page = await outsider.get("/connectors")
            assert "northwind.stock" not in page.text
            resp = await post(
                outsider,
                "/connectors/invoke",
                {
                    "operation": "northwind.stock",
                    "input": "{}",
                },
            )
            assert "Result of" not in resp.text and "Not done" in resp.text

    async def test_members_cannot_administer_their_company_connectors(
        self, mesh: Mesh, backend_url: str
    ) -> None:
        async with sign_in(mesh, "noah") as member:
            page = await member.get("/connectors")
            assert "Register a back-end" not in page.text
            resp = await post(
                member, "/connectors/backends", {"name": "x", "base_url": backend_url}
            )
            assert resp.status_code == 404


async def eventually(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
    return result


async def post_on(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    token = csrf_of((await client.get(page)).text)
    return await client.post(action, data={**data, "csrf": token})


WEBHOOKS = "/connectors/webhooks"


class TestWebhookPages:
    async def test_share_events_subscribe_receive_and_replay(self, mesh: Mesh) -> None:
        rx = Receiver()
        async with serve_app(receiver_app(rx)) as receiver_url:
            async with sign_in(mesh, "nadia") as nadia:
                made = await post_on(nadia, WEBHOOKS, f"{WEBHOOKS}/inbound", {"name": "wms"})
                assert made.status_code == 201, made.text[-1500:]
                secret = re.search(r'<code class="secret">(whsec_[^<]+)</code>', made.text)
                assert secret, "the inbound secret is shown once"
                assert "/partners/northwind/webhooks/inbound/wms/messages" in made.text
                assert secret.group(1) not in (await nadia.get(WEBHOOKS)).text, "only once"
                granted = await post_on(
                    nadia,
                    WEBHOOKS,
                    f"{WEBHOOKS}/event-grants",
                    {"event_type": "stock.low", "grantee": "contoso"},
                )
                assert granted.status_code == 201 and "Granted <code>stock.low</code>" in (
                    granted.text
                )
                assert re.search(
                    r"<code>stock.low</code> → Contoso Manufacturing\s*<form", granted.text
                )
            async with sign_in(mesh, "carlos") as carlos:
                sub = await post_on(
                    carlos,
                    WEBHOOKS,
                    f"{WEBHOOKS}/subscriptions",
                    {
                        "source_partner": "northwind",
                        "event_types": "stock.low",
                        "url": f"{receiver_url}/hook",
                    },
                )
                assert sub.status_code == 201, sub.text[-1500:]
                shown = re.search(r'<code class="secret">(whsec_[^<]+)</code>', sub.text)
                assert shown, "the signing secret is shown once"
                rx.secret = shown[1]
            # northwind's back-end pushes a signed message in, with its partner's token
            msg_id, ts = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
            body = json.dumps({"type": "stock.low", "timestamp": int(ts), "data": {"sku": "A"}})
            async with mesh.api() as api:
                pushed = await api.post(
                    "/partners/northwind/webhooks/inbound/wms/messages",
                    headers=mesh.bearer("nadia"),
                    json={
                        "webhook_id": msg_id,
                        "webhook_timestamp": ts,
                        "webhook_signature": standard_signature(secret.group(1), msg_id, ts, body),
                        "body": body,
                    },
                )
                assert pushed.status_code == 202, pushed.text
            await eventually(lambda: _async(len(rx.processed) == 1))
            async with sign_in(mesh, "carlos") as carlos:
                # This delivery's row: other tests' flows (the demo's shipments) deliver too.
                row = re.compile(
                    r'<tr><td><code>stock\.low</code></td><td><span class="status '
                    r'status-delivered">.*?action="(/connectors/webhooks/deliveries/[^"]+/replay)"',
                    re.S,
                )

                async def delivered() -> re.Match[str] | None:
                    return row.search((await carlos.get(WEBHOOKS)).text)

                replay = await eventually(delivered)
                resp = await post_on(carlos, WEBHOOKS, replay[1], {})
                assert resp.status_code == 200 and resp.url.path == WEBHOOKS
                await eventually(lambda: _async(len(rx.received) >= 2))
                assert {r["id"] for r in rx.received} == {rx.received[0]["id"]}, "same id"
                assert rx.bad_signatures == 0
        async with sign_in(mesh, "nadia") as nadia:
            page = (await nadia.get(WEBHOOKS)).text
            listed = re.search(
                r"<code>stock\.low</code> → Contoso Manufacturing\s*<form[^>]*>.*?"
                r'name="grant" value="([^"]+)"',
                page,
                re.S,
            )
            assert listed, "the grant is listed"
            grant = listed[1]
            resp = await post_on(
                nadia, WEBHOOKS, f"{WEBHOOKS}/event-grants/revoke", {"grant": grant}
            )
            assert "Revoked the grant on <code>stock.low</code>" in resp.text

    async def test_members_see_but_do_not_manage_and_bad_input_keeps_the_page(
        self, mesh: Mesh
    ) -> None:
        async with sign_in(mesh, "noah") as member:
            page = await member.get(WEBHOOKS)
            assert page.status_code == 200 and "Subscriptions" in page.text
            assert 'id="h-manage"' not in page.text
            resp = await post_on(member, WEBHOOKS, f"{WEBHOOKS}/inbound", {"name": "x"})
            assert resp.status_code == 404
        async with sign_in(mesh, "fatima") as admin:
            resp = await post_on(
                admin,
                WEBHOOKS,
                f"{WEBHOOKS}/subscriptions",
                {"source_partner": "northwind", "event_types": "", "url": "http://x"},
            )
            assert resp.status_code == 422 and "Not done" in resp.text


async def _async(value: T) -> T:
    return value
