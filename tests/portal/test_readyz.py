"""The portal's readiness: ready while its database answers, 503 (problem+json) while not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from portal.app import create_app
from portal.settings import PortalSettings
from tests.support import infra
from tests.support.tcpproxy import TcpProxy


@pytest.fixture
async def proxied_postgres(postgres_admin_url: str | None) -> AsyncIterator[tuple[str, TcpProxy]]:
    if not postgres_admin_url:
        pytest.skip("a database outage needs PostgreSQL: set PARTNERMESH_TEST_POSTGRES_URL")
    url, name = await infra.create_pg_database(postgres_admin_url)
    target = make_url(url)
    proxy = TcpProxy([(target.host or "127.0.0.1", target.port or 5432)], "db").start()
    yield target.set(host="127.0.0.1", port=proxy.port).render_as_string(False), proxy
    proxy.close()
    await infra.drop_pg_database(postgres_admin_url, name)


async def readyz(base: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"{base}/readyz")


async def test_ready_on_its_migrated_database(tmp_path: Path) -> None:
    settings = PortalSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}")
    async with infra.serve_app(create_app(settings)) as base:
        resp = await readyz(base)
    assert resp.status_code == 200 and resp.json() == {"status": "ready"}


async def test_not_ready_while_its_database_does_not_answer(
    proxied_postgres: tuple[str, TcpProxy],
) -> None:
    url, proxy = proxied_postgres
    async with infra.serve_app(create_app(PortalSettings(database_url=url))) as base:
        assert (await readyz(base)).status_code == 200
        proxy.cut()
        resp = await readyz(base)
        assert resp.status_code == 503
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["detail"] == "the database does not answer"
        proxy.restore()
        assert (await readyz(base)).status_code == 200
