"""Fixtures of the connector tests: a real connector, real back-ends, people with tokens."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client

from contracts.claims import Role
from contracts.policy import Operation
from contracts.v1 import connector as c
from mesh.client import call
from services.connector import handlers, models
from services.connector.settings import ConnectorSettings
from tests.connector.backends import BackendState, backend_app
from tests.support.infra import serve_app
from tests.support.services import run_service
from tests.support.tokens import TokenFactory

FAST = dict(
    retry_backoff_s=0.01,
    breaker_failures=3,
    breaker_cooldown_s=0.5,
    invoke_timeout_s=2.0,
    delivery_backoff_s=0.05,
    delivery_backoff_max_s=0.4,
    delivery_poll_s=0.1,
    delivery_max_attempts=30,
    flow_poll_s=0.1,
    flow_retry_backoff_s=0.05,
    flow_lease_s=2.0,
    webhook_tolerance_s=300,
)


_TOKENS: dict[str, tuple[str, float]] = {}


class Mesh:
    """Calls connector operations over real NATS as the demo people."""

    def __init__(self, nc: Client, tokens: TokenFactory) -> None:
        self.nc = nc
        self.tokens = tokens

    def token(self, who: str, **overrides: Any) -> str:
        people: dict[str, dict[str, Any]] = {
            "olivia": dict(partner="acme-hq", roles=[Role.OPERATOR, Role.MEMBER]),
            "fatima": dict(partner="fabrikam", roles=[Role.PARTNER_ADMIN, Role.MEMBER]),
            "felix": dict(partner="fabrikam", roles=[Role.MEMBER]),
            "carlos": dict(partner="contoso", roles=[Role.PARTNER_ADMIN, Role.MEMBER]),
            "chloe": dict(partner="contoso", roles=[Role.MEMBER]),
            "nadia": dict(partner="northwind", roles=[Role.PARTNER_ADMIN, Role.MEMBER]),
        }
        claims = {"sub": who, "eco": "acme", **people[who], **overrides}
        key = repr(sorted(claims.items()))
        cached = _TOKENS.get(key)
        if cached is None or cached[1] < time.monotonic():
            # Minting parses the RSA key (slow): reuse a token for a while.
            cached = _TOKENS[key] = (self.tokens.mint(**claims), time.monotonic() + 120)
        return cached[0]

    async def __call__(self, op: Operation, who: str, body: dict[str, Any], **claims: Any) -> Any:
        return await call(
            self.nc, op, {"eco": "acme", **body}, self.token(who, **claims), timeout=10
        )


@pytest.fixture
def mesh(nc: Client, tokens: TokenFactory) -> Mesh:
    """Calls connector operations over NATS as olivia (operator), fatima, carlos, nadia…"""
    return Mesh(nc, tokens)


@pytest.fixture
async def connector(nats_url: str, database_url: str, test_keys: Any) -> AsyncIterator[Any]:
    """A real connector service on the test NATS, with short retry and backoff settings."""

    def wire(rt: Any) -> None:
        rt.connector = handlers.register(rt)

    run = uuid.uuid4().hex[:8]  # durables of their own: no messages parked by a past test
    async with run_service(
        "connector",
        ConnectorSettings,
        models.metadata,
        wire,
        nats_url=nats_url,
        database_url=database_url,
        verifier=test_keys.verifier(),
        webhook_consumer=f"connector-webhooks-{run}",
        alliance_consumer=f"connector-alliances-{run}",
        **FAST,
    ) as rt:
        yield rt


@pytest.fixture
async def backend() -> AsyncIterator[tuple[str, BackendState]]:
    """A real back-end on loopback (uvicorn), with its observable state."""
    state = BackendState()
    async with serve_app(backend_app(state)) as url:
        yield url, state


@pytest.fixture
async def loopback_allowed(mesh: Mesh, connector: Any) -> None:
    """The operator allow-lists 127.0.0.1 (the test back-ends live there)."""
    await mesh(c.SET_ALLOWLIST, "olivia", {"entries": ["127.0.0.1/32"]})


async def register(
    mesh: Mesh,
    url: str,
    name: str = "erp",
    who: str = "fatima",
    partner: str = "fabrikam",
    **fields: Any,
) -> c.BackendReply:
    reply: c.BackendReply = await mesh(
        c.REGISTER_BACKEND, who, {"partner": partner, "name": name, "base_url": url, **fields}
    )
    return reply


async def declare(
    mesh: Mesh,
    name: str,
    path: str,
    method: str = "GET",
    backend: str = "erp",
    who: str = "fatima",
    partner: str = "fabrikam",
    **fields: Any,
) -> c.OperationReply:
    reply: c.OperationReply = await mesh(
        c.DECLARE_OPERATION,
        who,
        {
            "partner": partner,
            "backend": backend,
            "name": name,
            "method": method,
            "path": path,
            **fields,
        },
    )
    return reply
