"""The federated directory: allied people and companies found only on the fields they
shared with allies, with their brand; totals, pages and sorting across ecosystems; and
nothing across once the alliance is not active. SQLite and PostgreSQL."""

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
# owner's people: (partner, name, profile); only flagged fields may cross.
OWNER: dict[str, tuple[str, str, dict[str, Any]]] = {
    "anna": (
        "northwind",
        "Anna Berg",
        {
            "headline": "Cold chain lead",
            "skills": ["Zeppelin"],  # ecosystem-visible, not flagged: never found across
            "industries": ["Logistics"],
            "bio": "Quasar audits.",  # connections + flagged
            "regions": ["Nordics"],  # company + flagged: never across
            "visibility": {"bio": "connections", "regions": "company"},
            "allied": {"headline": True, "industries": True, "bio": True, "regions": True},
        },
    ),
    "carl": (
        "contoso",
        "Carl Weber",
        {"headline": "Cold chain auditor", "allied": {"headline": True}},
    ),
    "noah": ("northwind", "Noah Smit", {"headline": "Cold chain broker"}),  # flagged nothing
}
VIEWER: dict[str, tuple[str, str, dict[str, Any]]] = {
    "bob": ("globex", "Bob Chan", {"headline": "Cold chain buyer"}),
    "bea": ("globex", "Bea Ng", {}),
}


async def _people(eco: Eco, people: dict[str, tuple[str, str, dict[str, Any]]]) -> None:
    for who, (partner, name, _) in people.items():
        await eco.register(who, partner, name=name)
    await eco.settle()
    for who, (_, _, profile) in people.items():
        if profile:
            await eco.call(c.UPDATE_PERSON, who, person=who, **profile)


@pytest.fixture
async def world(
    nc: Client, tokens: TokenFactory, profile: ServiceRuntime
) -> AsyncIterator[tuple[Eco, Eco, Alliance]]:
    owner, viewer, alliance = await two_ecosystems(nc, tokens, profile)
    await _people(owner, OWNER)
    await _people(viewer, VIEWER)
    yield owner, viewer, alliance


async def found(alliance: Alliance, who: str = "bob", **query: Any) -> c.DirectoryPage:
    page: c.DirectoryPage = await alliance.viewer.call(c.DIRECTORY, who, **query)
    return page


def ids(page: c.DirectoryPage) -> list[tuple[str, str]]:
    return [(e.ecosystem, e.id) for e in page.entries]


class TestFederatedSearch:
    async def test_allied_people_are_listed_with_their_brand(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, viewer, alliance = world
        await alliance.set(ACTIVE)
        own = await found(alliance, sort="name")
        assert ids(own) == [(viewer.name, "bea"), (viewer.name, "bob")]
        assert own.total == 2 and all(e.ecosystem_name is None for e in own.entries)
        page = await found(alliance, allied=True, sort="name")
        assert ids(page) == [
            (owner.name, "anna"),
            (viewer.name, "bea"),
            (viewer.name, "bob"),
            (owner.name, "carl"),
        ]
        assert page.total == 4 and page.total_exact
        anna = page.entries[0]
        assert (anna.name, anna.ecosystem_name, anna.partner) == ("Anna Berg", BRAND, "northwind")
        assert (anna.summary, anna.industries) == ("Cold chain lead", ["Logistics"])
        assert anna.skills == [] and anna.regions == [] and anna.image is None
        assert page.entries[1].ecosystem_name == "Viewer Co"  # own brand, from the alliance

    async def test_search_matches_only_fields_shared_with_allies(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, viewer, alliance = world
        await alliance.set(ACTIVE)
        chain = await found(alliance, allied=True, q="cold chain", sort="relevance")
        assert set(ids(chain)) == {
            (owner.name, "anna"),
            (viewer.name, "bob"),
            (owner.name, "carl"),
        }  # noah says "cold chain" too, but shared nothing
        assert chain.total == 3
        # Zeppelin is anna's public skill at home, not shared: no match across, by word or facet.
        home = await owner.call(c.DIRECTORY, "noah", q="zeppelin")
        assert ids(home) == [(owner.name, "anna")]
        assert (await found(alliance, allied=True, q="zeppelin")).total == 0
        assert (await found(alliance, allied=True, skill="Zeppelin")).total == 0
        # Nordics is flagged but company-visible; quasar is flagged but connections-visible.
        for word in ("nordics", "quasar"):
            assert (await found(alliance, allied=True, q=word)).total == 0
        assert (await found(alliance, allied=True, region="Nordics")).total == 0
        logistics = await found(alliance, allied=True, industry="Logistics")
        assert ids(logistics) == [(owner.name, "anna")]

    async def test_a_connection_across_finds_connections_fields(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, _, alliance = world
        await alliance.set(ACTIVE)
        await alliance.connect("bob", "anna")
        assert ids(await found(alliance, allied=True, q="quasar")) == [(owner.name, "anna")]
        assert (await found(alliance, "bea", allied=True, q="quasar")).total == 0
        assert (await found(alliance, allied=True, q="nordics")).total == 0  # company only

    async def test_pages_and_totals_run_across_ecosystems(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        _, _, alliance = world
        await alliance.set(ACTIVE)
        everyone = ids(await found(alliance, allied=True, sort="name"))
        for sort in ("name", "recent", "relevance"):
            pages = [
                await found(alliance, allied=True, sort=sort, page=n, page_size=3) for n in (1, 2)
            ]
            assert [p.total for p in pages] == [4, 4]
            assert [len(p.entries) for p in pages] == [3, 1]
            seen = ids(pages[0]) + ids(pages[1])
            assert sorted(seen) == sorted(everyone), sort
        words = [await found(alliance, allied=True, q="chain", page=n, page_size=2) for n in (1, 2)]
        assert [w.total for w in words] == [3, 3]
        assert len({*ids(words[0]), *ids(words[1])}) == 3


class TestFederatedDenials:
    async def test_nothing_across_without_an_active_alliance(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, viewer, alliance = world
        home = [(viewer.name, "bea"), (viewer.name, "bob")]
        assert ids(await found(alliance, allied=True, sort="name")) == home  # no alliance
        for status in (AllianceStatus.PROPOSED, ACTIVE, AllianceStatus.SUSPENDED):
            await alliance.set(status)
            page = await found(alliance, allied=True, sort="name")
            across = [e for e in page.entries if e.ecosystem == owner.name]
            assert bool(across) is (status is ACTIVE), status
        await alliance.set(AllianceStatus.ENDED)
        ended = await found(alliance, allied=True, q="cold chain")
        assert ids(ended) == [(viewer.name, "bob")] and ended.total == 1

    async def test_terms_decide_people_or_companies(self, world: tuple[Eco, Eco, Alliance]) -> None:
        owner, viewer, alliance = world
        await owner.register("ada", "northwind", Role.PARTNER_ADMIN)
        await owner.register("cid", "contoso", Role.PARTNER_ADMIN)
        await owner.settle()
        await owner.call(
            c.UPDATE_COMPANY,
            "ada",
            partner="northwind",
            description="Reefer fleet",
            capabilities=["Reefers"],
            allied={"description": True},
        )
        await owner.call(c.UPDATE_COMPANY, "cid", partner="contoso", description="Moulds")
        await alliance.set(ACTIVE, owner_shares=Sharing.COMPANIES)
        people = await found(alliance, allied=True)
        assert {e.ecosystem for e in people.entries} == {viewer.name}
        companies = await found(alliance, kind="company", allied=True, q="reefer")
        assert ids(companies) == [(owner.name, "northwind")]
        assert companies.entries[0].skills == []  # capabilities were not shared
        assert (await found(alliance, kind="company", allied=True, q="moulds")).total == 0
        assert (await found(alliance, kind="company", allied=True, skill="Reefers")).total == 0
        await alliance.set(ACTIVE, owner_shares=Sharing.NOTHING)
        nothing = await found(alliance, kind="company", allied=True, q="reefer")
        assert nothing.total == 0

    async def test_two_allies_are_searched_in_one_page_order(
        self, world: tuple[Eco, Eco, Alliance]
    ) -> None:
        owner, viewer, alliance = world
        await alliance.set(ACTIVE)
        third = Eco(viewer.nc, viewer.tokens, viewer.rt)
        await _people(
            third,
            {"ali": ("umbrella", "Ali Zed", {"headline": "Chain", "allied": {"headline": True}})},
        )
        second = Alliance(third, viewer)
        await second.set(ACTIVE)
        page = await found(alliance, allied=True, sort="name", page_size=2)
        assert ids(page) == [(third.name, "ali"), (owner.name, "anna")] and page.total == 5
        assert page.entries[0].ecosystem_name == BRAND  # each owner is branded alike here
        brands = {e.ecosystem for e in (await found(alliance, allied=True, q="chain")).entries}
        assert brands == {owner.name, viewer.name, third.name}
        await second.set(AllianceStatus.ENDED)
        assert (await found(alliance, allied=True)).total == 4
