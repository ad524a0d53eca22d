"""Profiles across an alliance: per-field consent, allied reads and cards, and every
denial (no alliance, not active, terms, fields not flagged, narrower visibility);
SQLite and PostgreSQL, alliance states fed as identity's real events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client

from contracts.claims import Role
from contracts.v1 import profile as c
from contracts.v1.alliances import AllianceStatus, Sharing
from mesh.runtime import ServiceRuntime
from tests.profile.alliance_support import BRAND, Alliance, two_ecosystems
from tests.profile.conftest import Eco
from tests.support.tokens import TokenFactory

ACTIVE = AllianceStatus.ACTIVE
FLAGS = {"headline": True, "bio": True, "regions": True, "needs": True}
ANNA: dict[str, Any] = {
    "headline": "Cold chain lead",  # ecosystem, flagged: crosses
    "skills": ["Routing"],  # ecosystem, not flagged: stays home
    "bio": "Reefer audits.",  # connections, flagged: crosses to connections across
    "regions": ["Nordics"],  # company, flagged: never crosses
    "needs": ["Drivers"],  # private, flagged: never crosses
    "visibility": {"bio": "connections", "regions": "company", "needs": "private"},
    "allied": FLAGS,
}


@pytest.fixture
async def world(
    nc: Client, tokens: TokenFactory, profile: ServiceRuntime
) -> AsyncIterator[tuple[Eco, Eco, Alliance]]:
    """acme-like owner (anna flagged fields, noah flagged none) and a viewer ecosystem."""
    owner, viewer, alliance = await two_ecosystems(nc, tokens, profile)
    await owner.register("anna", "northwind", name="Anna Berg")
    await owner.register("noah", "northwind", name="Noah Smit")
    await viewer.register("bob", "globex")
    await viewer.register("bea", "globex")
    await owner.settle()
    await owner.call(c.UPDATE_PERSON, "anna", person="anna", **ANNA)
    await owner.call(c.UPDATE_PERSON, "noah", person="noah", headline="Customs broker")
    yield owner, viewer, alliance


class TestConsent:
    async def test_the_owner_sets_and_sees_the_flags_others_do_not(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, _, _ = world
        mine = await owner.call(c.GET_PERSON, "anna", person="anna")
        assert mine.allied == FLAGS
        partial = await owner.call(
            c.UPDATE_PERSON, "anna", person="anna", allied={"skills": True, "needs": False}
        )
        assert partial.allied == {**FLAGS, "skills": True, "needs": False}
        assert partial.headline == "Cold chain lead"  # fields untouched
        assert (await owner.call(c.GET_PERSON, "noah", person="anna")).allied is None

    async def test_events_name_the_public_fields_shared_with_allies(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, _, _ = world
        event = await owner.last_event(c.PersonProfileUpdated)
        assert event.subject == "noah" and event.data.allied_fields == []
        await owner.call(c.UPDATE_PERSON, "anna", person="anna", bio="Still reefers.")
        anna = await owner.last_event(c.PersonProfileUpdated)
        assert anna.subject == "anna"
        assert anna.data.allied_fields == ["headline"]  # bio, regions, needs: not public

    async def test_company_flags_are_for_its_partner_admins(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, _, _ = world
        await owner.register("ada", "northwind", Role.PARTNER_ADMIN)
        await owner.settle()
        view = await owner.call(
            c.UPDATE_COMPANY,
            "ada",
            partner="northwind",
            description="Cold chain carrier",
            allied={"description": True},
        )
        assert view.allied == {"description": True}
        assert (await owner.call(c.GET_COMPANY, "anna", partner="northwind")).allied is None
        event = await owner.last_event(c.CompanyProfileUpdated)
        assert event.data.allied_fields == ["description"]


class TestAlliedPerson:
    async def test_an_allied_viewer_sees_exactly_the_flagged_public_fields(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, viewer, alliance = world
        await alliance.set(ACTIVE)
        seen = await alliance.read(c.ALLY_PERSON, "bob", person="anna")
        assert (seen.name, seen.company_name) == ("Anna Berg", "Northwind")
        assert (seen.ecosystem, seen.ecosystem_name) == (owner.name, BRAND)
        assert seen.headline == "Cold chain lead"
        hidden = ("skills", "bio", "regions", "needs", "links", "visibility", "allied")
        assert {f: getattr(seen, f) for f in hidden} == dict.fromkeys(hidden)
        card = await alliance.read(c.ALLY_PERSON_CARD, "bob", person="anna")
        assert (card.headline, card.company_name, card.ecosystem_name) == (
            "Cold chain lead",
            "Northwind",
            BRAND,
        )
        assert card.cloud.terms == [] and card.avatar is None
        assert viewer.name != owner.name

    async def test_connections_across_open_connections_fields_never_narrower(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        _, _, alliance = world
        await alliance.set(ACTIVE)
        await alliance.connect("bob", "anna")
        seen = await alliance.read(c.ALLY_PERSON, "bob", person="anna")
        assert (seen.headline, seen.bio) == ("Cold chain lead", "Reefer audits.")
        assert seen.regions is None and seen.needs is None and seen.skills is None
        other = await alliance.read(c.ALLY_PERSON, "bea", person="anna")
        assert other.bio is None  # bea is not connected
        # Connections stay facts, but open nothing while the alliance is suspended.
        await alliance.set(AllianceStatus.SUSPENDED)
        await alliance.refused(c.ALLY_PERSON, "bob", "no active alliance", person="anna")
        await alliance.set(ACTIVE)
        again = await alliance.read(c.ALLY_PERSON, "bob", person="anna")
        assert again.bio == "Reefer audits."

    async def test_a_field_unflagged_later_stops_crossing(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, _, alliance = world
        await alliance.set(ACTIVE)
        await owner.call(c.UPDATE_PERSON, "anna", person="anna", allied={"skills": True})
        assert (await alliance.read(c.ALLY_PERSON, "bob", person="anna")).skills == ["Routing"]
        await owner.call(c.UPDATE_PERSON, "anna", person="anna", allied={"skills": False})
        assert (await alliance.read(c.ALLY_PERSON, "bob", person="anna")).skills is None
        await owner.call(
            c.UPDATE_PERSON, "anna", person="anna", allied=dict.fromkeys(c.PERSON_FIELDS, False)
        )
        await alliance.refused(c.ALLY_PERSON, "bob", "person not found", person="anna")


class TestDenials:
    async def test_no_alliance_and_every_inactive_state_hide_everything(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        _, _, alliance = world
        expected = "has no active alliance with"
        for op in (c.ALLY_PERSON, c.ALLY_PERSON_CARD):
            await alliance.refused(op, "bob", expected, person="anna")
        await alliance.refused(c.ALLY_COMPANY, "bob", expected, partner="northwind")
        for status in (AllianceStatus.PROPOSED, ACTIVE, AllianceStatus.SUSPENDED):
            await alliance.set(status)
            if status is ACTIVE:
                assert (await alliance.read(c.ALLY_PERSON, "bob", person="anna")).headline
                continue
            await alliance.refused(c.ALLY_PERSON, "bob", expected, person="anna")
            await alliance.refused(c.ALLY_PERSON_CARD, "bob", expected, person="anna")
        await alliance.set(AllianceStatus.ENDED)
        await alliance.refused(c.ALLY_PERSON, "bob", expected, person="anna")

    async def test_a_rejected_proposal_shares_nothing(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        _, _, alliance = world
        await alliance.set(AllianceStatus.PROPOSED)
        await alliance.set(AllianceStatus.REJECTED)
        await alliance.refused(c.ALLY_PERSON, "bob", "no active alliance", person="anna")

    async def test_a_third_ecosystem_and_the_other_direction_see_nothing(
        self, world: tuple[Eco, Eco, Alliance], nc: Client, tokens: TokenFactory
    ) -> None:
        owner, viewer, alliance = world
        await alliance.set(ACTIVE)  # the viewer's side shares nothing with the owner
        stranger = Eco(nc, tokens, owner.rt)
        await stranger.register("sam", "initech")
        await stranger.settle()
        outsider = Alliance(owner, stranger)
        await outsider.refused(c.ALLY_PERSON, "sam", "no active alliance", person="anna")
        await viewer.call(c.UPDATE_PERSON, "bob", person="bob", allied={"headline": True})
        back = Alliance(viewer, owner)
        back.id, back.version = alliance.id, alliance.version
        await back.refused(c.ALLY_PERSON, "anna", "does not share its people", person="bob")

    async def test_terms_sharing_companies_only_or_nothing(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, _, alliance = world
        await owner.register("ada", "northwind", Role.PARTNER_ADMIN)
        await owner.settle()
        await owner.call(
            c.UPDATE_COMPANY,
            "ada",
            partner="northwind",
            description="Cold chain carrier",
            capabilities=["Reefers"],
            size="50-200",
            visibility={"size": "private"},
            allied={"description": True, "size": True},
        )
        await alliance.set(ACTIVE, owner_shares=Sharing.COMPANIES)
        for op in (c.ALLY_PERSON, c.ALLY_PERSON_CARD):
            await alliance.refused(op, "bob", "does not share its people", person="anna")
        company = await alliance.read(c.ALLY_COMPANY, "bob", partner="northwind")
        assert (company.description, company.ecosystem_name) == ("Cold chain carrier", BRAND)
        assert company.capabilities is None and company.size is None  # unflagged / private
        assert company.allied is None and company.visibility is None
        card = await alliance.read(c.ALLY_COMPANY_CARD, "bob", partner="northwind")
        assert card.description == "Cold chain carrier" and card.cloud.terms == []
        await alliance.set(ACTIVE, owner_shares=Sharing.NOTHING)
        for op in (c.ALLY_COMPANY, c.ALLY_COMPANY_CARD):
            await alliance.refused(op, "bob", "does not share its companies", partner="northwind")

    async def test_profiles_that_flagged_nothing_or_do_not_exist(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        _, _, alliance = world
        await alliance.set(ACTIVE)
        for person in ("noah", "nobody"):
            await alliance.refused(c.ALLY_PERSON, "bob", "person not found", person=person)
            await alliance.refused(c.ALLY_PERSON_CARD, "bob", "person not found", person=person)
        # The company registered but flagged nothing.
        await alliance.refused(c.ALLY_COMPANY, "bob", "company not found", partner="northwind")
        await alliance.refused(c.ALLY_COMPANY_CARD, "bob", "company not found", partner="acme")

    async def test_a_company_opens_connections_fields_to_people_connected_with_its_people(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, _, alliance = world
        await owner.register("ada", "northwind", Role.PARTNER_ADMIN)
        await owner.settle()
        await owner.call(
            c.UPDATE_COMPANY,
            "ada",
            partner="northwind",
            description="Cold chain carrier",
            offers=["Reefer capacity"],
            visibility={"offers": "connections"},
            allied={"description": True, "offers": True},
        )
        await alliance.set(ACTIVE, owner_shares=Sharing.COMPANIES)
        assert (await alliance.read(c.ALLY_COMPANY, "bob", partner="northwind")).offers is None
        await alliance.connect("bob", "anna")  # anna works for northwind
        company = await alliance.read(c.ALLY_COMPANY, "bob", partner="northwind")
        assert company.offers == ["Reefer capacity"]
        assert (await alliance.read(c.ALLY_COMPANY, "bea", partner="northwind")).offers is None
        page = await alliance.viewer.call(
            c.DIRECTORY, "bob", kind="company", allied=True, q="reefer"
        )
        assert [(e.ecosystem, e.id) for e in page.entries] == [(owner.name, "northwind")]
        other = await alliance.viewer.call(
            c.DIRECTORY, "bea", kind="company", allied=True, q="reefer"
        )
        assert other.total == 0
