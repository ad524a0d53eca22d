"""Events: what the profile service publishes, and replays of what it consumes."""

from __future__ import annotations

import asyncio

from sqlalchemy import Table, func, select

from contracts.claims import Role
from contracts.envelope import EventBase
from contracts.subjects import EVENT_STREAM, event_subject
from contracts.v1 import profile as c
from contracts.v1.identity import PersonData, PersonRegistered
from contracts.v1.matching import IntroductionConnected, IntroductionData
from mesh.errors import MeshError
from mesh.runtime import ServiceRuntime
from services.profile.models import connections, persons
from tests.profile.conftest import Eco


async def published(eco: Eco, event_type: type[EventBase]) -> int:
    """How many events of ``event_type`` this ecosystem has in the stream."""
    subject = event_subject(eco.name, event_type.model_fields["type"].default)
    info = await eco.js.stream_info(EVENT_STREAM, subjects_filter=subject)
    return (info.state.subjects or {}).get(subject, 0)


async def relayed(profile: ServiceRuntime) -> None:
    """Wait until the outbox relay has published everything committed so far."""
    while await profile.relay.pending():
        await asyncio.sleep(0.02)


async def count(profile: ServiceRuntime, table: Table, eco: Eco) -> int:
    query = select(func.count()).select_from(table).where(table.c.eco == eco.name)
    async with profile.db.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


class TestPublished:
    async def test_person_updates_carry_public_fields_only(self, eco: Eco) -> None:
        await eco.register("anna", "northwind")
        await eco.settle()
        await eco.call(
            c.UPDATE_PERSON,
            "anna",
            person="anna",
            headline="Cold chain lead",
            bio="Secret plans",
            needs=["Forecasting"],
            visibility={"bio": "private", "needs": "connections"},
        )
        event = await eco.last_event(c.PersonProfileUpdated)
        assert event.data.headline == "Cold chain lead"
        assert event.data.bio == "" and event.data.needs == []
        assert event.subject == "anna" and event.partner == "northwind"

    async def test_company_updates_carry_public_fields_only(self, eco: Eco) -> None:
        await eco.register("anna", "northwind", Role.MEMBER, Role.PARTNER_ADMIN)
        await eco.settle()
        await eco.call(
            c.UPDATE_COMPANY,
            "anna",
            partner="northwind",
            description="Carrier",
            size="51-200",
            visibility={"size": "company"},
        )
        event = await eco.last_event(c.CompanyProfileUpdated)
        assert event.data.description == "Carrier" and event.data.size is None

    async def test_a_refused_edit_publishes_nothing(
        self, eco: Eco, profile: ServiceRuntime
    ) -> None:
        await eco.register("anna", "northwind")
        await eco.register("carl", "contoso")
        await eco.settle()
        await relayed(profile)
        before = await published(eco, c.PersonProfileUpdated)
        try:
            await eco.call(c.UPDATE_PERSON, "carl", person="anna", headline="x")
        except MeshError:  # the refusal itself is tested in test_profiles
            pass
        await eco.call(c.GET_PERSON, "carl", person="anna")
        await relayed(profile)
        assert await published(eco, c.PersonProfileUpdated) == before


class TestReplays:
    async def test_registrations_replayed_twice_change_nothing(
        self, eco: Eco, profile: ServiceRuntime
    ) -> None:
        registered = PersonRegistered(
            ecosystem=eco.name, data=PersonData(person="anna", partner="northwind", name="Anna")
        )
        eco.people["anna"] = ("northwind", [Role.MEMBER])
        await eco.publish(registered)
        await eco.settle()
        await relayed(profile)
        events_before = await published(eco, c.PersonProfileUpdated)
        view = await eco.call(c.GET_PERSON, "anna", person="anna")
        for _ in range(2):
            await eco.publish(registered, dedupe=False)
            await eco.publish(
                registered.model_copy(update={"id": registered.id + "x"}), dedupe=False
            )
            await eco.settle()
        await relayed(profile)
        assert await count(profile, persons, eco) == 1
        assert await eco.call(c.GET_PERSON, "anna", person="anna") == view
        assert await published(eco, c.PersonProfileUpdated) == events_before

    async def test_a_renamed_person_is_followed(self, eco: Eco) -> None:
        await eco.register("anna", "northwind", name="Anna Berg")
        await eco.register("anna", "northwind", name="Anna Lind")
        await eco.settle()
        assert (await eco.call(c.GET_PERSON, "anna", person="anna")).name == "Anna Lind"

    async def test_connections_replayed_twice_change_nothing(
        self, eco: Eco, profile: ServiceRuntime
    ) -> None:
        await eco.register("anna", "northwind")
        await eco.register("cleo", "contoso")
        connected = IntroductionConnected(
            ecosystem=eco.name,
            data=IntroductionData(
                introduction="i1",
                a="anna",
                a_partner="northwind",
                b="cleo",
                b_partner="contoso",
                status="connected",
            ),
        )
        await eco.publish(connected)
        await eco.settle()
        for _ in range(2):
            await eco.publish(connected, dedupe=False)
            await eco.publish(connected.model_copy(update={"id": connected.id + "x"}), dedupe=False)
        await eco.settle()
        assert await count(profile, connections, eco) == 2  # one row per direction
        await eco.call(
            c.UPDATE_PERSON,
            "anna",
            person="anna",
            needs=["Welding"],
            visibility={"needs": "connections"},
        )
        assert (await eco.call(c.GET_PERSON, "cleo", person="anna")).needs == ["Welding"]
