"""Fixtures for the matching service: a real service on real NATS and a real database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from contracts import headers
from contracts.claims import Role
from contracts.envelope import EventBase
from contracts.registry import decode_event
from contracts.subjects import event_subject
from contracts.v1.profile import PersonProfileUpdated, PersonPublic
from mesh.client import call
from services.matching import handlers, models
from services.matching.service import Matching
from services.matching.settings import MatchingSettings
from tests.support.services import run_service
from tests.support.tokens import TestKeys, TokenFactory

PEOPLE = {
    # person: (partner, needs, offers)
    "alice": ("north", ["freight forwarding"], ["business intelligence"]),
    "bob": ("west", ["kpi reporting"], ["cargo transport"]),
    "carol": ("east", ["cloud hosting"], ["penetration testing"]),
    "dave": ("south", ["security audits"], ["kubernetes clusters"]),
    "erin": ("north", ["dashboards"], ["haulage"]),
}


@dataclass
class Mesh:
    """The running matching service, with helpers to feed it events and call it."""

    svc: Matching
    js: Any
    nc: Any
    tokens: TokenFactory
    eco: str

    async def publish(self, event: EventBase) -> None:
        subject = event_subject(event.ecosystem, event.type)
        await self.js.publish(
            subject, event.model_dump_json().encode(), headers={headers.MSG_ID: event.id}
        )

    def token(
        self,
        sub: str,
        roles: tuple[Role, ...] = (Role.MEMBER,),
        partner: str | None = "",
        **kw: Any,
    ) -> str:
        if partner == "":
            partner = PEOPLE[sub][0] if sub in PEOPLE else "acme-hq"
        return self.tokens.mint(
            eco=kw.pop("eco", self.eco), sub=sub, partner=partner, roles=roles, **kw
        )

    def broker(self, **kw: Any) -> str:
        return self.token("bruno", roles=(Role.BROKER, Role.MEMBER), partner="acme-hq", **kw)

    async def call(self, op: Any, token: str | None, **body: Any) -> Any:
        return await call(self.nc, op, {"eco": self.eco, **body}, token)

    async def person(
        self, pid: str, partner: str, needs: list[str], offers: list[str], **kw: Any
    ) -> None:
        data = PersonPublic(
            person=pid, partner=partner, name=pid.title(), needs=needs, offers=offers, **kw
        )
        await self.publish(PersonProfileUpdated(ecosystem=self.eco, partner=partner, data=data))

    async def seed(self) -> None:
        for pid, (partner, needs, offers) in PEOPLE.items():
            await self.person(pid, partner, needs, offers, regions=["germany"])
        await until(lambda: len(self.svc.store.eco(self.eco).people) == len(PEOPLE))


async def until(cond: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = cond()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def mesh(
    nats_url: str, database_url: str, test_keys: TestKeys, tokens: TokenFactory, nc: Client
) -> Any:
    """A matching service on the test NATS and a fresh database, in its own ecosystem."""
    holder: dict[str, Matching] = {}

    def register(rt: Any) -> None:
        holder["svc"] = handlers.register(rt)

    async with run_service(
        "matching",
        MatchingSettings,
        models.metadata,
        register,
        nats_url=nats_url,
        database_url=database_url,
        verifier=test_keys.verifier(),
    ):
        yield Mesh(holder["svc"], nc.jetstream(), nc, tokens, f"eco{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def seeded(mesh: Mesh) -> Mesh:
    """The service with five people whose needs and offers pair up (alice↔bob, carol↔dave)."""
    await mesh.seed()
    return mesh


@pytest.fixture
async def events(seeded: Mesh) -> AsyncIterator[list[EventBase]]:
    """Every matching event of the test's ecosystem, as published by the outbox relay."""
    got: list[EventBase] = []

    async def on(msg: Msg) -> None:
        got.append(decode_event(msg.data))

    sub = await seeded.nc.subscribe(f"pm.v1.evt.{seeded.eco}.matching.>", cb=on)
    yield got
    await sub.unsubscribe()
