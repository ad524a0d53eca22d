"""Connector pages against the real connector service and a real back-end on loopback:
a partner admin registers a back-end, declares and grants an operation; the grantee calls it."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from tests.portal.login import csrf_of, sign_in
from tests.support.infra import serve_app


def stock_backend() -> FastAPI:
    app = FastAPI()

    @app.get("/stock/{sku}")
    async def stock(sku: str) -> dict:
        return {"sku": sku, "available": 42}

    return app


@pytest.fixture
async def backend_url():
    """A partner's back-end system: a real HTTP server on loopback."""
    async with serve_app(stock_backend()) as url:
        yield url


async def post(client, action: str, data: dict):
    token = csrf_of((await client.get("/connectors")).text)
    return await client.post(action, data={**data, "csrf": token})


class TestConnectorPages:
    async def test_register_declare_grant_and_call(self, mesh, backend_url):
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
            assert re.search(r"contoso\s*<form", resp.text), "the grant is listed"
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

    async def test_members_cannot_administer_their_company_connectors(self, mesh, backend_url):
        async with sign_in(mesh, "noah") as member:
            page = await member.get("/connectors")
            assert "Register a back-end" not in page.text
            resp = await post(
                member, "/connectors/backends", {"name": "x", "base_url": backend_url}
            )
            assert resp.status_code == 404
