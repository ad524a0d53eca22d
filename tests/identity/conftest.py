"""A real identity provider on loopback (uvicorn), seeded with the demo ecosystem."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from contracts.claims import ALL_SCOPES
from identity.cli import seed
from identity.cli.devclient import login
from identity.settings import IdentitySettings
from tests.support import infra
from tests.support.identity import serve_idp, start_idp

CLI_REDIRECT = "http://127.0.0.1:8099/callback"
PORTAL_REDIRECT = "http://127.0.0.1:8082/auth/callback"


@dataclass
class IdP:
    """A running provider: its URL, settings, demo credentials and an HTTP client."""

    url: str
    settings: IdentitySettings
    creds: dict[str, Any]
    http: httpx.AsyncClient
    eco: str = "acme"
    app: Any = None  # the served app (its runtime: app.state.rt)

    @property
    def rt(self) -> Any:
        """The served app's runtime (keys, database, caches)."""
        return self.app.state.rt

    @property
    def issuer(self) -> str:
        return f"{self.url}/eco/{self.eco}"

    def secret(self, client_id: str) -> str:
        return str(self.creds["clients"][client_id]["client_secret"])

    async def cc(self, client_id: str, scope: str | None = None, **extra: str) -> httpx.Response:
        data = {"grant_type": "client_credentials", **extra}
        if scope is not None:
            data["scope"] = scope
        return await self.http.post(
            f"{self.issuer}/token", data=data, auth=(client_id, self.secret(client_id))
        )

    async def person_tokens(
        self, username: str, scope: str = "openid profile " + " ".join(sorted(ALL_SCOPES))
    ) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as browser:
            return await login(
                browser, self.issuer, "mesh-cli", username, seed.PASSWORD, CLI_REDIRECT, scope
            )


@pytest.fixture(scope="module", params=infra.database_engines())
async def idp_database(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_databases: infra.PgDatabases | None,
) -> AsyncIterator[str]:
    """A clean database per test module, on each configured engine."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('idp') / 'identity.db'}"
        return
    assert pg_databases
    url, name = await pg_databases.take()
    try:
        yield url
    finally:
        await pg_databases.give_back(url, name)


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    """Settings a test module gives its provider (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
async def idp(
    nats_url: str,
    idp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
    idp_overrides: dict[str, Any],
) -> AsyncIterator[IdP]:
    """The demo provider, served by uvicorn on a free loopback port, for one test module."""
    settings, creds, app = await start_idp(
        nats_url, idp_database, tmp_path_factory.mktemp("w"), demo_hashes, **idp_overrides
    )
    async with serve_idp(app, settings.port) as url, httpx.AsyncClient(timeout=10) as http:
        yield IdP(url, settings, creds, http, app=app)
    await asyncio.sleep(0)
