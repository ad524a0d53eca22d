"""No input crashes the portal: depth bombs in forms and JSON bodies are the caller's error
(a page or ``{"error": …}``), unknown pages and unexpected errors are pages, never traces."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from portal import errors
from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import Mesh
from tests.support.bombs import BOMBS, object_holding
from tests.support.infra import serve_app


async def post_on(
    client: httpx.AsyncClient, page: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    token = csrf_of((await client.get(page)).text)
    return await client.post(action, data={**data, "csrf": token})


def assert_page(resp: httpx.Response, status: int, text: str) -> None:
    assert resp.status_code == status, resp.text[-1500:]
    assert resp.headers["content-type"].startswith("text/html")
    assert text in resp.text


class TestForms:
    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_connector_input_is_refused_on_the_page(
        self, mesh: Mesh, bomb: str
    ) -> None:
        async with sign_in(mesh, "carlos") as carlos:
            data = {"operation": "northwind.stock", "input": bomb}
            resp = await post_on(carlos, "/connectors", "/connectors/invoke", data)
        assert resp.status_code < 500
        assert "must be a JSON object" in resp.text

    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_flow_builder_value_is_refused_on_the_page(
        self, mesh: Mesh, bomb: str
    ) -> None:
        async with sign_in(mesh, "carlos") as carlos:
            data = {
                "name": bomb,
                "s0.op": bomb,
                "s0.in.sku.src": "const",
                "s0.in.sku.val": bomb,
                "do": "start",
            }
            resp = await post_on(carlos, "/connectors/flows", "/connectors/flows", data)
        assert_page(resp, 403, "is not an operation granted to your company")

    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_admission_rule_is_refused_on_the_page(
        self, mesh: Mesh, bomb: str
    ) -> None:
        async with sign_in(mesh, "olivia") as olivia:
            data = {"policy": "rule", "rule": object_holding(bomb)}
            resp = await post_on(olivia, "/operator", "/operator/policy", data)
        assert resp.status_code < 500
        assert "the admission rule must be JSON" in resp.text


class TestJsonApi:
    @pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
    async def test_a_nested_preview_body_is_refused(self, mesh: Mesh, bomb: str) -> None:
        async with sign_in(mesh, "felix") as client:
            token = csrf_of((await client.get("/")).text)
            resp = await client.post(
                "/api/preview",
                content=object_holding(bomb, text="hi"),
                headers={"X-CSRF-Token": token, "Content-Type": "application/json"},
            )
            assert resp.status_code == 422 and "error" in resp.json()
            fine = await client.post(
                "/api/preview", json={"text": "*hi*"}, headers={"X-CSRF-Token": token}
            )
            assert fine.status_code == 200 and "<em>hi</em>" in fine.json()["html"]


class TestErrorPages:
    async def test_an_unknown_page_is_an_error_page(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as client:
            resp = await client.get("/no/such/page")
        assert_page(resp, 404, "Not Found")
        assert "content-security-policy" in resp.headers

    async def test_an_unknown_api_path_is_json(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as client:
            resp = await client.get("/api/no/such/thing")
        assert resp.status_code == 404 and resp.json() == {"error": "Not Found"}


@pytest.fixture
async def failing_app() -> AsyncIterator[httpx.AsyncClient]:
    """A bare app with the portal's error handlers and routes that fail unexpectedly
    (no portal state: the error page falls back to its bare form)."""
    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/api/boom")
    async def api_boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/api/items")
    async def api_items(n: int) -> dict[str, int]:
        return {"n": n}

    @app.get("/items")
    async def items(n: int) -> dict[str, int]:
        return {"n": n}

    async with serve_app(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


class TestUnexpectedErrors:
    async def test_a_page_names_the_request_id(self, failing_app: httpx.AsyncClient) -> None:
        resp = await failing_app.get("/boom", headers={"X-Request-Id": "portal-1"})
        assert_page(resp, 500, "request id portal-1")
        assert "secret internals" not in resp.text
        assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]

    async def test_the_json_api_gets_json(self, failing_app: httpx.AsyncClient) -> None:
        resp = await failing_app.get("/api/boom")
        assert resp.status_code == 500
        doc = json.loads(resp.text)
        assert resp.headers["x-request-id"] in doc["error"] and "secret" not in resp.text


class TestRefusedInput:
    async def test_the_json_api_names_a_query_off_its_schema(
        self, failing_app: httpx.AsyncClient
    ) -> None:
        resp = await failing_app.get("/api/items", params={"n": "many"})
        assert resp.status_code == 422
        assert resp.json() == {"error": "the request does not match its schema"}
        assert (await failing_app.get("/api/items", params={"n": "3"})).json() == {"n": 3}

    async def test_a_page_says_so_on_the_error_page(self, failing_app: httpx.AsyncClient) -> None:
        resp = await failing_app.get("/items", params={"n": "many"})
        assert_page(resp, 422, "the request does not match its schema")
        assert "many" not in resp.text


class TestOddCsrfAndState:
    """Values a browser (or an attacker) sends are compared whatever their characters."""

    async def test_a_non_ascii_csrf_header_is_refused(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix") as client:
            resp = await client.post(
                "/api/preview",
                json={"text": "hi"},
                headers={b"X-CSRF-Token": "é".encode("latin-1")},  # sent as the byte 0xE9
            )
        assert resp.status_code == 403

    async def test_a_non_ascii_csrf_form_field_is_refused(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "carlos") as carlos:
            resp = await carlos.post(
                "/connectors/invoke", data={"operation": "x", "input": "{}", "csrf": "é"}
            )
        assert_page(resp, 403, "Form expired")

    async def test_a_non_ascii_login_state_is_a_failed_sign_in(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as client:
            resp = await client.get("/auth/callback", params={"state": "é", "code": "x"})
        assert resp.status_code < 500
        assert "not started in this browser" in resp.text
