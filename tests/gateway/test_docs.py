"""The API docs page: Swagger UI from the gateway itself, no CDN, no inline script, and it
really renders the operations in a browser under its Content-Security-Policy."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.docs import ASSETS


class TestServedFromTheGateway:
    async def test_page_loads_only_the_gateways_own_files(self, gateway: httpx.AsyncClient) -> None:
        r = await gateway.get("/docs")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "http://" not in r.text and "https://" not in r.text  # nothing from elsewhere
        assert "<script>" not in r.text  # every script is a file: script-src 'self'
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "https:" not in csp and "cdn" not in csp
        start = await gateway.get("/docs/init.js")
        assert start.status_code == 200 and '"/openapi.json"' in start.text

    @pytest.mark.parametrize("path", sorted(ASSETS))
    async def test_swagger_ui_files(self, gateway: httpx.AsyncClient, path: str) -> None:
        r = await gateway.get(path)
        assert r.status_code == 200 and len(r.content) > 500
        assert r.headers["content-type"].encode() == ASSETS[path][1]
        assert r.headers["x-content-type-options"] == "nosniff"

    async def test_other_paths_under_docs_are_not_found(self, gateway: httpx.AsyncClient) -> None:
        r = await gateway.get("/docs/../../etc/passwd")
        assert r.status_code == 404
        assert (await gateway.get("/docs/redoc.standalone.js")).status_code == 404


class TestInABrowser:
    async def test_operations_render_with_nothing_blocked(
        self, gateway: httpx.AsyncClient, browser: Any
    ) -> None:
        base = str(gateway.base_url).rstrip("/")
        page = await browser.new_page()
        elsewhere: list[str] = []
        problems: list[str] = []

        async def only_the_gateway(route) -> None:  # type: ignore[no-untyped-def]
            if urlsplit(route.request.url).netloc != urlsplit(base).netloc:
                elsewhere.append(route.request.url)
                await route.abort()
            else:
                await route.continue_()

        await page.route("**/*", only_the_gateway)
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            await page.goto(f"{base}/docs")
            await page.wait_for_selector(".opblock", timeout=20_000)
            operations = await page.locator(".opblock").count()
            title = await page.locator(".info .title").first.inner_text()
        finally:
            await page.close()
        assert operations > 50 and "partnermesh" in title.lower()
        assert elsewhere == [] and problems == []  # no CDN, no CSP violation, no error
