"""A call across an alliance agreed at identity, with identity's real tokens: the allied
ecosystem's partner back-end exchanges its token at acme's token endpoint (RFC 8693) and
the connector serves it the operation fabrikam granted to its partner, until the
alliance ends."""

from __future__ import annotations

import asyncio
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
from mesh.errors import MeshError
from mesh.tokens import RemoteJwks, TokenVerifier
from services.connector import handlers, models
from services.connector.alliances import store
from services.connector.settings import ConnectorSettings
from tests.connector.backends import BackendState, backend_app
from tests.connector.conftest import FAST
from tests.connector.test_alliances import refused
from tests.identity.alliance_support import OPERATOR_SCOPE, World, add_backend
from tests.identity.conftest import IdP
from tests.support.identity import serve_idp, start_idp
from tests.support.infra import serve_app
from tests.support.services import run_service

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


async def _recorded(rt: Any, alliance: str, status: AllianceStatus) -> None:
    """Wait until the connector's projection holds ``alliance`` at ``status`` (identity's
    outbox relay publishes the change; the connector-alliances consumer records it)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with rt.db.sessions() as s:
            held = await store.get(s, alliance)
        if held is not None and held.status is status:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{alliance} not {status}"
        await asyncio.sleep(0.05)


async def test_a_partner_back_end_calls_across_until_the_alliance_ends(
    nc: Client, connector: Any, idp: tuple[Any, dict[str, Any], str]
) -> None:
    """acme and a second ecosystem agree an alliance at identity whose terms let fabrikam
    grant across; the second ecosystem's partner back-end exchanges its own token at
    acme (as ``<client>@<its ecosystem>``) and calls what fabrikam granted it."""
    settings, creds, url = idp
    b = f"globex{uuid.uuid4().hex[:6]}"
    await commands.create_ecosystem(
        settings, b, "Globex", ("gl-parts", "Globex Parts"), "gina", "globex-password-1"
    )
    world = World(
        IdP(url, settings, creds, httpx.AsyncClient(timeout=10)),
        {
            "acme": await _person(f"{url}/eco/acme", "olivia", seed.PASSWORD, OPERATOR_SCOPE),
            b: await _person(f"{url}/eco/{b}", "gina", "globex-password-1", OPERATOR_SCOPE),
        },
    )
    try:
        backend_client = await add_backend(world, b, "gl-parts")
        acme_terms = {"roles": ["member"], "scopes": ["connector:invoke"]}
        terms = {"acme": {**acme_terms, "connector_partners": ["fabrikam"]}, b: {}}
        alliance = await world.active("acme", b, terms)
        await _recorded(connector, alliance, AllianceStatus.ACTIVE)

        fatima = await _person(f"{url}/eco/acme", "fatima", seed.PASSWORD, "connector:admin")
        olivia = await _person(f"{url}/eco/acme", "olivia", seed.PASSWORD, "admin")
        state = BackendState()
        async with serve_app(backend_app(state)) as backend:
            await _declare_and_grant(nc, olivia, fatima, backend, b)
            own = await world.client_token(b, backend_client)
            resp = await world.exchange("acme", f"{backend_client}@{b}", own)
            assert resp.status_code == 200, resp.text
            exchanged = resp.json()["access_token"]
            invoke = {"eco": "acme", "operation": OP, "input": {"id": "7"}}
            reply = await call(nc, c.INVOKE, invoke, exchanged)
            assert reply.status == 200 and reply.output["id"] == "7"
            gina = await _person(f"{url}/eco/{b}", "gina", "globex-password-1", "connector:read")
            theirs = await call(nc, c.AUDIT, {"eco": b}, gina)  # the ally's operator
            assert [(r.id, r.owner_eco, r.caller_eco) for r in theirs.items] == [
                (reply.audit_id, "acme", b)
            ]
            # the back-end's own token is not acme's
            await refused(call(nc, c.INVOKE, invoke, own), ErrorCode.FORBIDDEN)

            assert (await world.act("acme", alliance, "end")).status_code == 200
            await _recorded(connector, alliance, AllianceStatus.ENDED)
            with pytest.raises(MeshError) as err:  # cut off by identity, or by the connector
                await call(nc, c.INVOKE, invoke, exchanged)
            assert err.value.code in (ErrorCode.FORBIDDEN, ErrorCode.UNAUTHENTICATED)
            assert sum(state.hits.values()) == 1, "the refused call never reached the back-end"
    finally:
        await world.idp.http.aclose()


async def _declare_and_grant(nc: Client, olivia: str, fatima: str, backend: str, b: str) -> None:
    at_acme: dict[str, Any] = {"eco": "acme"}
    await call(nc, c.SET_ALLOWLIST, {**at_acme, "entries": ["127.0.0.1/32"]}, olivia)
    body = {**at_acme, "partner": "fabrikam", "name": "erp", "base_url": backend}
    await call(nc, c.REGISTER_BACKEND, body, fatima)
    body = {**at_acme, "partner": "fabrikam", "backend": "erp", "name": "stock"}
    await call(nc, c.DECLARE_OPERATION, {**body, "method": "GET", "path": "/items/{id}"}, fatima)
    grant = {**at_acme, "operation": OP, "grantee": "gl-parts", "grantee_eco": b}
    await call(nc, c.CREATE_GRANT, grant, fatima)
