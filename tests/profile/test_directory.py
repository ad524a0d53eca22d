"""Directory search: full text, filters, pages and sorting, visibility; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.claims import Role
from contracts.errors import ErrorCode
from contracts.v1 import profile as c
from mesh.client import request_raw
from mesh.errors import MeshError
from services.profile import search_repository
from tests.profile.conftest import Eco

PEOPLE: dict[str, tuple[str, str, dict[str, Any]]] = {
    "anna": (
        "northwind",
        "Anna Berg",
        {
            "headline": "Cold chain logistics lead",
            "industries": ["Logistics"],
            "regions": ["Nordics"],
            "skills": ["Routing", "Cold chain"],
            "bio": "Twenty years of refrigerated logistics and cold chain audits.",
        },
    ),
    "noah": (
        "northwind",
        "Noah Smit",
        {
            "headline": "Customs broker",
            "industries": ["Logistics"],
            "regions": ["Benelux"],
            "skills": ["Customs"],
        },
    ),
    "carl": (
        "contoso",
        "Carl Weber",
        {
            "headline": "Injection moulding engineer",
            "industries": ["Manufacturing"],
            "regions": ["DACH"],
            "skills": ["Moulding"],
        },
    ),
    "cleo": (
        "contoso",
        "Cleo Marin",
        {
            "headline": "Welding automation",
            "industries": ["Manufacturing"],
            "regions": ["Nordics"],
            "skills": ["Welding"],
            "bio": "Zeppelin enthusiast.",
            "visibility": {"regions": "private", "bio": "company"},
        },
    ),
    "fred": (
        "fabrikam",
        "Fred Olsen",
        {
            "headline": "Forecasting analyst",
            "industries": ["Analytics"],
            "regions": ["Nordics"],
            "skills": ["Forecasting", "Dashboards"],
        },
    ),
}


async def _directory(eco: Eco) -> None:
    for who, (partner, name, _) in PEOPLE.items():
        await eco.register(who, partner, Role.MEMBER, name=name)
    eco.people["bruno"] = ("acme-hq", [Role.MEMBER, Role.BROKER])
    eco.people["nadia"] = ("northwind", [Role.MEMBER, Role.PARTNER_ADMIN])
    await eco.settle()
    for who, (_, _, fields) in PEOPLE.items():
        await eco.call(c.UPDATE_PERSON, who, person=who, **fields)


async def ids(eco: Eco, who: str = "fred", **query: Any) -> list[str]:
    page = await eco.call(c.DIRECTORY, who, **query)
    return [e.id for e in page.entries]


class TestFullText:
    async def test_words_match_through_stems(self, eco: Eco) -> None:
        await _directory(eco)
        assert set(await ids(eco, q="logistics")) == {"anna", "noah"}
        assert await ids(eco, q="cold chains") == ["anna"]
        assert await ids(eco, q="welding automation") == ["cleo"]
        assert await ids(eco, q="marin") == ["cleo"]  # names are searchable

    async def test_the_last_word_matches_as_a_prefix(self, eco: Eco) -> None:
        await _directory(eco)
        assert await ids(eco, q="foreca") == ["fred"]
        assert await ids(eco, q="inject mould") == ["carl"]

    async def test_relevance_puts_the_stronger_match_first(self, eco: Eco) -> None:
        await _directory(eco)
        assert (await ids(eco, q="logistics", sort="relevance"))[0] == "anna"

    async def test_no_match_is_an_empty_page(self, eco: Eco) -> None:
        await _directory(eco)
        page = await eco.call(c.DIRECTORY, "fred", q="submarine")
        assert (page.total, page.entries) == (0, [])


class TestFilters:
    async def test_industry_region_skill_partner(self, eco: Eco) -> None:
        await _directory(eco)
        assert await ids(eco, industry="manufacturing", sort="name") == ["carl", "cleo"]
        assert await ids(eco, skill="cold chain") == ["anna"]
        assert await ids(eco, partner="northwind", sort="name") == ["anna", "noah"]
        assert await ids(eco, q="engineer", industry="Manufacturing") == ["carl"]
        assert await ids(eco, industry="Logistics", region="Benelux") == ["noah"]

    async def test_verified_filter(self, eco: Eco) -> None:
        await _directory(eco)
        await eco.call(c.VERIFY_PERSON, "bruno", person="carl", note="met at the fair")
        assert await ids(eco, verified=True) == ["carl"]
        assert "carl" not in await ids(eco, verified=False)
        entry = (await eco.call(c.DIRECTORY, "fred", q="moulding")).entries[0]
        assert entry.verified is True

    async def test_pages_and_sorting(self, eco: Eco) -> None:
        await _directory(eco)
        first = await eco.call(c.DIRECTORY, "fred", sort="name", page_size=2)
        second = await eco.call(c.DIRECTORY, "fred", sort="name", page_size=2, page=2)
        third = await eco.call(c.DIRECTORY, "fred", sort="name", page_size=2, page=3)
        assert first.total == second.total == third.total == 5
        names = [e.name for p in (first, second, third) for e in p.entries]
        assert names == ["Anna Berg", "Carl Weber", "Cleo Marin", "Fred Olsen", "Noah Smit"]
        await eco.call(c.UPDATE_PERSON, "noah", person="noah", headline="Customs lead")
        assert (await ids(eco, sort="recent"))[0] == "noah"

    async def test_the_count_stops_past_the_page_and_says_so(
        self, eco: Eco, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await _directory(eco)
        assert (await eco.call(c.DIRECTORY, "fred", sort="name", page_size=2)).total_exact
        monkeypatch.setattr(search_repository, "COUNT_CAP", 1)  # the service runs in-process
        first = await eco.call(c.DIRECTORY, "fred", sort="name", page_size=2)
        assert (first.total, first.total_exact) == (3, False)
        assert [e.name for e in first.entries] == ["Anna Berg", "Carl Weber"]
        last = await eco.call(c.DIRECTORY, "fred", sort="name", page_size=2, page=3)
        assert (last.total, last.total_exact) == (5, True)
        assert [e.name for e in last.entries] == ["Noah Smit"]

    async def test_bad_query_is_a_validation_error(self, eco: Eco) -> None:
        await _directory(eco)
        for bad in ({"page": 0}, {"page_size": 500}, {"sort": "random"}, {"kind": "robot"}):
            payload = json.dumps({"eco": eco.name, **bad}).encode()
            with pytest.raises(MeshError) as err:
                await request_raw(eco.nc, c.DIRECTORY.subject, payload, eco.token("fred"))
            assert err.value.code is ErrorCode.VALIDATION_FAILED


class TestVisibility:
    async def test_hidden_fields_neither_match_nor_show(self, eco: Eco) -> None:
        await _directory(eco)
        # cleo's region is private, her bio is for her company only
        assert "cleo" not in await ids(eco, "fred", region="Nordics")
        assert "cleo" in await ids(eco, "cleo", region="Nordics")
        assert await ids(eco, "fred", q="zeppelin") == []
        assert await ids(eco, "carl", q="zeppelin") == ["cleo"]  # colleague
        assert await ids(eco, "cleo", q="zeppelin") == ["cleo"]
        entry = (await eco.call(c.DIRECTORY, "fred", q="welding")).entries[0]
        assert entry.regions == [] and entry.summary == "Welding automation"
        own = (await eco.call(c.DIRECTORY, "cleo", q="welding")).entries[0]
        assert own.regions == ["Nordics"]

    async def test_all_words_may_come_from_fields_of_one_tier(self, eco: Eco) -> None:
        await _directory(eco)
        # "zeppelin" is in a company-only field, "welding" in a public one
        assert await ids(eco, "carl", q="welding zeppelin") == ["cleo"]
        assert await ids(eco, "fred", q="welding zeppelin") == []

    async def test_words_in_every_order_find_the_same_entries_per_viewer(self, eco: Eco) -> None:
        """On PostgreSQL name order reads the tiers apart (the name-order index drives);
        otherwise the full-text index drives: the same entries either way, each seen in
        the viewer's own tier."""
        await _directory(eco)
        for sort in ("name", "relevance", "recent"):
            assert await ids(eco, "fred", q="zeppelin", sort=sort) == []
            assert await ids(eco, "carl", q="zeppelin", sort=sort) == ["cleo"]  # colleague
            assert await ids(eco, "cleo", q="welding zeppelin", sort=sort) == ["cleo"]  # own
            assert sorted(await ids(eco, "fred", q="logistics", sort=sort)) == ["anna", "noah"]
        assert await ids(eco, "fred", q="logistics", sort="name") == ["anna", "noah"]
        second = await eco.call(c.DIRECTORY, "fred", q="log", sort="name", page_size=1, page=2)
        assert (second.total, [e.id for e in second.entries]) == (2, ["noah"])


class TestCompanies:
    async def test_company_directory(self, eco: Eco) -> None:
        await _directory(eco)
        await eco.call(
            c.UPDATE_COMPANY,
            "nadia",
            partner="northwind",
            description="Refrigerated carrier",
            capabilities=["Cold chain", "Cross-docking"],
            industries=["Logistics"],
            certifications=["GDP"],
            visibility={"certifications": "company"},
        )
        found = await eco.call(c.DIRECTORY, "fred", kind="company", q="carrier")
        assert [e.id for e in found.entries] == ["northwind"]
        assert found.entries[0].skills == ["Cold chain", "Cross-docking"]
        assert await ids(eco, kind="company", skill="cross-docking") == ["northwind"]
        assert await ids(eco, "fred", kind="company", q="gdp") == []
        assert await ids(eco, "noah", kind="company", q="gdp") == ["northwind"]
