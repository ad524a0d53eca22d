"""Fixtures of the profile tests: a real profile service, an ecosystem per test, real events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from contracts import headers
from contracts.claims import Role
from contracts.envelope import EventBase
from contracts.policy import Operation
from contracts.subjects import EVENT_STREAM, event_subject
from contracts.v1.identity import PartnerData, PartnerRegistered, PersonData, PersonRegistered
from mesh.client import call
from mesh.runtime import ServiceRuntime
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support import infra
from tests.support.services import run_service
from tests.support.tokens import TestKeys, TokenFactory

DURABLES = ("profile-identity", "profile-matching", "profile-collaboration")


@pytest.fixture(scope="module", params=infra.database_engines())
async def profile_database(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_databases: infra.PgDatabases | None,
) -> AsyncIterator[str]:
    """One database per test module and engine (tests isolate by ecosystem)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('profile') / 'profile.db'}"
        return
    assert pg_databases, "postgres engine selected without a server"
    url, name = await pg_databases.take()
    try:
        yield url
    finally:
        await pg_databases.give_back(url, name)


async def _quiet_durables(nats_url: str, timeout: float = 5.0) -> None:
    """Wait until no pull request of a stopped profile consumer is still open on the server.

    An open pull request of a stopped process would take the next events and leave
    them unacknowledged until the ack wait runs out.
    """
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        for durable in DURABLES:
            while asyncio.get_running_loop().time() < deadline:
                try:
                    if (await js.consumer_info(EVENT_STREAM, durable)).num_waiting == 0:
                        break
                except NotFoundError:
                    break
                await asyncio.sleep(0.05)
    finally:
        await nc.drain()


@pytest.fixture(scope="module")
async def profile(
    nats_url: str, profile_database: str, test_keys: TestKeys
) -> AsyncIterator[ServiceRuntime]:
    """A real profile service (NATS endpoints, consumers, outbox relay) per module and engine.

    Stopped when its module ends, so no other test meets its consumers.
    """
    await _quiet_durables(nats_url)
    async with run_service(
        "profile",
        ProfileSettings,
        models.metadata,
        handlers.register,
        nats_url=nats_url,
        database_url=profile_database,
        verifier=test_keys.verifier(),
    ) as rt:
        yield rt
    await _quiet_durables(nats_url)


class Eco:
    """One fresh ecosystem per test: people, tokens, event publishing and settling."""

    def __init__(self, nc: Client, tokens: TokenFactory, rt: ServiceRuntime) -> None:
        self.rt = rt
        self.name = f"eco{uuid.uuid4().hex[:8]}"
        self.nc = nc
        self.js = nc.jetstream()
        self.tokens = tokens
        self.people: dict[str, tuple[str, list[Role]]] = {}

    def token(self, who: str, **overrides: Any) -> str:
        partner, roles = self.people[who]
        claims: dict[str, Any] = {"eco": self.name, "partner": partner, "roles": roles, "sub": who}
        claims.update(overrides)
        return self.tokens.mint(**claims)

    async def publish(self, event: EventBase, dedupe: bool = True) -> int:
        """Publish an event on JetStream the way the owning service's outbox relay does."""
        hdrs = {headers.MSG_ID: event.id} if dedupe else None
        ack = await self.js.publish(
            event_subject(event.ecosystem, event.type),
            event.model_dump_json().encode(),
            headers=hdrs,
        )
        return ack.seq

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until every profile consumer has acknowledged everything published so far."""
        deadline = asyncio.get_running_loop().time() + timeout
        for durable in DURABLES:
            while True:
                try:
                    info = await self.js.consumer_info(EVENT_STREAM, durable)
                    if info.num_pending == 0 and info.num_ack_pending == 0:
                        break
                except NotFoundError:
                    pass  # the consumer task has not created it yet
                assert asyncio.get_running_loop().time() < deadline, f"{durable} did not settle"
                await asyncio.sleep(0.02)

    async def register(self, who: str, partner: str, *roles: Role, name: str = "") -> None:
        self.people[who] = (partner, list(roles) or [Role.MEMBER])
        await self.publish(
            PartnerRegistered(
                ecosystem=self.name,
                data=PartnerData(partner=partner, name=partner.title()),
            )
        )
        await self.publish(
            PersonRegistered(
                ecosystem=self.name,
                data=PersonData(person=who, partner=partner, name=name or who.title()),
            )
        )

    async def last_event(self, event_type: type[EventBase], timeout: float = 10.0) -> Any:
        """The newest event of ``event_type`` in this ecosystem, once the outbox relayed it."""
        subject = event_subject(self.name, event_type.model_fields["type"].default)
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.rt.relay.pending():
            await asyncio.sleep(0.02)
        while True:
            try:
                msg = await self.js.get_last_msg(EVENT_STREAM, subject)
                assert msg.data is not None
                return event_type.model_validate_json(msg.data)
            except NotFoundError:
                assert asyncio.get_running_loop().time() < deadline, f"no {subject}"
                await asyncio.sleep(0.05)

    async def call(self, op: Operation, who: str | None, **body: Any) -> Any:
        token = self.token(who) if who else None
        return await call(self.nc, op, {"eco": self.name, **body}, token)


@pytest.fixture
async def eco(nc: Client, tokens: TokenFactory, profile: ServiceRuntime) -> Eco:
    """A fresh ecosystem on the running profile service."""
    return Eco(nc, tokens, profile)


Publisher = Callable[[EventBase], Awaitable[int]]
