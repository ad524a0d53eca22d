"""A call across an alliance with identity's real tokens: a person of an allied ecosystem
signs in there, the portal exchanges her token at acme's token endpoint (RFC 8693, an
exchange rule accepting her ecosystem), and the connector serves her the operation
fabrikam granted to her partner; the same token is refused once the alliance ends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from contracts.v1.alliances import AllianceStatus
from identity.cli import commands, seed
from identity.cli.devclient import login
from mesh.client import call
from mesh.tokens import RemoteJwks, TokenVerifier
from services.connector import handlers, models
from services.connector.settings import ConnectorSettings
from tests.connector.allied import Alliance
from tests.connector.backends import BackendState, backend_app
from tests.connector.conftest import FAST
from tests.connector.test_alliances import refused
from tests.support.identity import serve_idp, start_idp
from tests.support.infra import serve_app
from tests.support.services import run_service
from tests.support.tokens import TokenFactory

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"
CLI_REDIRECT = "http://127.0.0.1:8099/callback"
OP = "fabrikam.stock"


@pytest.fixture
async def idp(
    nats_url: str, database_url: str, tmp_path: Path, demo_hashes: dict[str, str]
) -> AsyncIterator[tuple[Any, dict[str, Any], str]]:
    """The demo identity provider (acme), served: (settings, credentials, URL)."""
    idp_db = f"sqlite+aiosqlite:///{tmp_path / 'identity.db'}"
    settings, creds, app = await start_idp(nats_url, idp_db, tmp_path, demo_hashes)
    async with serve_idp(app, settings.port) as url:
        yield settings, creds, url


@pytest.fixture
async def connector(
    nats_url: str, database_url: str, idp: tuple[Any, dict[str, Any], str]
) -> AsyncIterator[Any]:
    """The connector trusting identity's published keys."""
    run = uuid.uuid4().hex[:8]
    async with httpx.AsyncClient() as http:
        verifier = TokenVerifier(RemoteJwks(http), idp[2], "partnermesh", cache_size=0)
        async with run_service(
            "connector",
            ConnectorSettings,
            models.metadata,
            lambda rt: setattr(rt, "connector", handlers.register(rt)),
            nats_url=nats_url,
            database_url=database_url,
            verifier=verifier,
            webhook_consumer=f"connector-webhooks-{run}",
            alliance_consumer=f"connector-alliances-{run}",
            **FAST,
        ) as rt:
            yield rt


async def _person(issuer: str, who: str, password: str, scope: str) -> str:
    async with httpx.AsyncClient(timeout=10) as browser:
        tokens = await login(browser, issuer, "mesh-cli", who, password, CLI_REDIRECT, scope)
    return str(tokens["access_token"])


async def test_an_exchanged_token_calls_across_until_the_alliance_ends(
    nc: Client,
    tokens: TokenFactory,
    connector: Any,
    idp: tuple[Any, dict[str, Any], str],
) -> None:
    settings, creds, url = idp
    ally = Alliance(nc, tokens, connector)
    acme = f"{url}/eco/acme"
    await commands.create_ecosystem(
        settings, ally.b, "Globex", ("gl-parts", "Globex Parts"), "gina", "globex-password-1"
    )
    olivia = await _person(acme, "olivia", seed.PASSWORD, "openid admin")
    async with httpx.AsyncClient(timeout=10) as http:
        rule = {
            "client": "portal",
            "from_ecosystems": [ally.b],
            "roles": ["member"],
            "scopes": ["connector:invoke", "connector:read"],
        }
        resp = await http.put(
            f"{acme}/admin/exchange-rules",
            json={"rules": [*seed.EXCHANGE_RULES, rule]},
            headers={"Authorization": f"Bearer {olivia}"},
        )
        assert resp.status_code == 200, resp.text
        gina = await _person(
            f"{url}/eco/{ally.b}", "gina", "globex-password-1", "openid connector:invoke"
        )
        portal = creds["clients"]["portal"]["client_secret"]
        resp = await http.post(
            f"{acme}/token",
            data={"grant_type": EXCHANGE, "subject_token": gina, "subject_token_type": AT},
            auth=("portal", portal),
        )
        assert resp.status_code == 200, resp.text
        exchanged = resp.json()["access_token"]

    fatima = await _person(acme, "fatima", seed.PASSWORD, "openid connector:admin")
    olivia = await _person(acme, "olivia", seed.PASSWORD, "openid admin")
    state = BackendState()
    async with serve_app(backend_app(state)) as backend:
        at_acme: dict[str, Any] = {"eco": "acme"}
        await call(nc, c.SET_ALLOWLIST, {**at_acme, "entries": ["127.0.0.1/32"]}, olivia)
        body = {**at_acme, "partner": "fabrikam", "name": "erp", "base_url": backend}
        await call(nc, c.REGISTER_BACKEND, body, fatima)
        body = {**at_acme, "partner": "fabrikam", "backend": "erp", "name": "stock"}
        await call(
            nc, c.DECLARE_OPERATION, {**body, "method": "GET", "path": "/items/{id}"}, fatima
        )
        await ally.change(AllianceStatus.ACTIVE)
        grant = {**at_acme, "operation": OP, "grantee": "gl-parts", "grantee_eco": ally.b}
        await call(nc, c.CREATE_GRANT, grant, fatima)

        invoke = {**at_acme, "operation": OP, "input": {"id": "7"}}
        reply = await call(nc, c.INVOKE, invoke, exchanged)
        assert reply.status == 200 and reply.output["id"] == "7"
        # her own token, at acme's route, is not acme's
        await refused(call(nc, c.INVOKE, invoke, gina), ErrorCode.FORBIDDEN)
        await ally.change(AllianceStatus.ENDED)
        await refused(call(nc, c.INVOKE, invoke, exchanged), ErrorCode.FORBIDDEN, "no active")
