"""Fixtures of the collaboration tests: a real service on the test NATS, people of a
fresh ecosystem with real signed tokens, and readers of what reached JetStream."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from nats.aio.client import Client

from contracts.claims import Role
from contracts.envelope import EventBase
from contracts.policy import Operation
from contracts.registry import decode_event
from contracts.subjects import EVENT_STREAM
from mesh.client import call, request_raw
from mesh.runtime import ServiceRuntime
from services.collaboration import handlers, models
from services.collaboration.settings import CollaborationSettings
from tests.support import infra
from tests.support.services import run_service
from tests.support.tokens import TestKeys, TokenFactory

PEOPLE: dict[str, tuple[str | None, tuple[Role, ...]]] = {
    "olivia": ("acme-hq", (Role.OPERATOR, Role.MEMBER)),
    "bruno": ("acme-hq", (Role.BROKER, Role.MEMBER)),
    "nadia": ("northwind", (Role.PARTNER_ADMIN, Role.MEMBER)),
    "noah": ("northwind", (Role.MEMBER,)),
    "carlos": ("contoso", (Role.PARTNER_ADMIN, Role.MEMBER)),
    "chloe": ("contoso", (Role.MEMBER,)),
    "fatima": ("fabrikam", (Role.PARTNER_ADMIN, Role.MEMBER)),
    "felix": ("fabrikam", (Role.MEMBER,)),
}


@dataclass
class Mesh:
    """Calls operations as the people of one fresh ecosystem, over real NATS."""

    nc: Client
    tokens: TokenFactory
    eco: str
    rt: ServiceRuntime

    _minted: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, who: str, eco: str | None = None, **claims: Any) -> str:
        """A real token of ``who`` (minting is slow, so plain ones are reused)."""
        key, plain = (who, eco or self.eco), not claims
        if plain and key in self._minted:
            return self._minted[key]
        partner, roles = PEOPLE.get(who, ("elsewhere", (Role.MEMBER,)))
        claims = {
            "partner": partner, "roles": roles, "preferred_username": who, "name": who.title(),
            **claims,
        }  # fmt: skip
        token = self.tokens.mint(eco=key[1], sub=who, **claims)
        if plain:
            self._minted[key] = token
        return token

    async def call(self, op: Operation, who: str | None, **fields: Any) -> Any:
        """Call ``op`` as ``who`` (None: without a token); ``eco`` defaults to this one's."""
        fields.setdefault("eco", self.eco)
        token = self.token(who) if who else None
        return await call(self.nc, op, fields, token)

    async def raw(self, op: Operation, who: str, **fields: Any) -> Any:
        """Send fields as they are (no client-side validation), to prove the service refuses."""
        fields.setdefault("eco", self.eco)
        data = await request_raw(self.nc, op.subject, json.dumps(fields).encode(), self.token(who))
        return op.reply.model_validate_json(data)

    async def call_as(self, op: Operation, token: str, **fields: Any) -> Any:
        fields.setdefault("eco", self.eco)
        return await call(self.nc, op, fields, token)

    async def events(self) -> list[EventBase]:
        """Every event of this ecosystem that reached JetStream, once the outbox is empty."""
        await until(lambda: _drained(self.rt))
        js = self.nc.jetstream()
        subjects = f"pm.v1.evt.{self.eco}.>"
        info = await js.stream_info(EVENT_STREAM, subjects_filter=subjects)
        expected = sum((info.state.subjects or {}).values())
        sub = await js.subscribe(subjects, ordered_consumer=True)
        try:
            found = [decode_event((await sub.next_msg(timeout=10)).data) for _ in range(expected)]
        finally:
            await sub.unsubscribe()
        return found


async def _drained(rt: ServiceRuntime) -> bool:
    return await rt.relay.pending() == 0


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait for an asynchronous effect (relay, consumer) to show; fail after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the expected effect did not happen in time")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session", params=infra.database_engines())
async def collaboration_database(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin_url: str | None,
) -> AsyncIterator[str]:
    """One database per engine for the whole run: every test works in its own ecosystem."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('collaboration') / 'c.db'}"
        return
    assert postgres_admin_url is not None
    url, name = await infra.create_pg_database(postgres_admin_url)
    try:
        yield url
    finally:
        await infra.drop_pg_database(postgres_admin_url, name)


@pytest.fixture(scope="session")
async def collaboration(
    nats_url: str, collaboration_database: str, test_keys: TestKeys
) -> AsyncIterator[ServiceRuntime]:
    """A real collaboration service on the test NATS, shared by the tests of one engine."""
    async with run_service(
        "collaboration",
        CollaborationSettings,
        models.metadata,
        handlers.register,
        nats_url=nats_url,
        database_url=collaboration_database,
        verifier=test_keys.verifier(),
    ) as rt:
        yield rt


@pytest.fixture
def mesh(nc: Client, tokens: TokenFactory, collaboration: ServiceRuntime) -> Mesh:
    """The people of a fresh ecosystem (its own name, so events of other tests stay apart)."""
    return Mesh(nc, tokens, f"eco{uuid.uuid4().hex[:10]}", collaboration)
