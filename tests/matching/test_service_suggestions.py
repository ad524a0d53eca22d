"""Suggestions over real NATS: events feed the index; claims decide who may ask."""

import json
from collections.abc import Awaitable
from typing import Any

import pytest

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from contracts.v1 import matching as m
from contracts.v1.collaboration import ContentCreated, ContentData
from contracts.v1.profile import CompanyProfileUpdated, CompanyPublic
from mesh.client import request_raw
from mesh.errors import MeshError
from tests.matching.conftest import Mesh, until


async def denied(coro: Awaitable[object]) -> ErrorCode:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value.code


class TestPersonSuggestions:
    async def test_complement_first_with_reasons(self, seeded: Mesh) -> None:
        reply = await seeded.call(m.PERSON_SUGGESTIONS, seeded.token("alice"), person="alice")
        top = reply.suggestions[0]
        assert top.id == "bob" and top.partner == "west"
        assert top.reciprocal > 0 and top.a_to_b > 0 and top.b_to_a > 0
        need = next(r for r in top.reasons if r.kind == "need_offer")
        assert (need.concept, need.terms_a, need.terms_b) == (
            "freight",
            ["freight forwarding"],
            ["cargo transport"],
        )
        assert "erin" not in [s.id for s in reply.suggestions]  # same partner as alice

    async def test_same_partner_on_request(self, seeded: Mesh) -> None:
        reply = await seeded.call(
            m.PERSON_SUGGESTIONS, seeded.token("alice"), person="alice", include_same_partner=True
        )
        assert "erin" in [s.id for s in reply.suggestions]

    async def test_profile_update_is_reflected(self, seeded: Mesh) -> None:
        await seeded.person("bob", "west", ["recycling"], ["solar installations"])

        async def gone() -> bool:
            reply = await seeded.call(m.PERSON_SUGGESTIONS, seeded.token("alice"), person="alice")
            return "bob" not in [s.id for s in reply.suggestions]

        await until(gone)

    async def test_brokers_may_look(self, seeded: Mesh) -> None:
        reply = await seeded.call(m.PERSON_SUGGESTIONS, seeded.broker(), person="carol")
        assert reply.suggestions[0].id == "dave"

    async def test_denials(self, seeded: Mesh) -> None:
        c = seeded.call
        op = m.PERSON_SUGGESTIONS
        assert await denied(c(op, None, person="alice")) is ErrorCode.UNAUTHENTICATED
        assert (
            await denied(c(op, seeded.token("alice", expires_in=-120), person="alice"))
            is ErrorCode.UNAUTHENTICATED
        )
        assert (
            await denied(c(op, seeded.token("alice", eco="other"), person="alice"))
            is ErrorCode.FORBIDDEN
        )
        no_scope = seeded.token("alice", scope=Scope.PROFILE_READ.value)
        assert await denied(c(op, no_scope, person="alice")) is ErrorCode.FORBIDDEN
        # Someone else's suggestions are private: 404, whether or not they exist.
        assert await denied(c(op, seeded.token("bob"), person="alice")) is ErrorCode.NOT_FOUND
        assert (
            await denied(c(op, seeded.token("alice", partner="west"), person="alice"))
            is ErrorCode.NOT_FOUND
        )
        assert (
            await denied(c(op, seeded.token("zed", partner="x"), person="zed"))
            is ErrorCode.NOT_FOUND
        )

    async def test_invalid_filters_are_validation_errors(self, seeded: Mesh) -> None:
        body = json.dumps({"eco": seeded.eco, "person": "alice", "k": 500}).encode()
        raw = request_raw(seeded.nc, m.PERSON_SUGGESTIONS.subject, body, seeded.token("alice"))
        assert await denied(raw) is ErrorCode.VALIDATION_FAILED

    async def test_social_ties_from_collaboration(self, seeded: Mesh) -> None:
        data = ContentData(
            content_id="c1",
            kind="post",
            author="alice",
            author_partner="north",
            thread="t1",
            text="hi @bob",
            mentions=["bob"],
        )
        await seeded.publish(ContentCreated(ecosystem=seeded.eco, data=data))
        await until(lambda: "bob" in seeded.svc.store.eco(seeded.eco).social.adj.get("alice", {}))
        reply = await seeded.call(m.PERSON_SUGGESTIONS, seeded.token("alice"), person="alice")
        top = reply.suggestions[0]
        assert top.id == "bob" and top.social > 0
        assert any(r.kind == "social" for r in top.reasons)


class TestPartnerSuggestions:
    async def company(self, mesh: Any, partner: str, needs: list[str], offers: list[str]) -> None:
        data = CompanyPublic(partner=partner, name=partner.title(), needs=needs, offers=offers)
        await mesh.publish(CompanyProfileUpdated(ecosystem=mesh.eco, partner=partner, data=data))

    async def test_companies_match_and_partner_binding_holds(self, mesh: Any) -> None:
        await self.company(mesh, "north", ["cnc machining"], ["warehousing"])
        await self.company(mesh, "west", ["storage space"], ["precision milling"])
        await self.company(mesh, "east", ["recycling"], ["haulage"])
        await until(lambda: len(mesh.svc.store.eco(mesh.eco).companies) == 3)
        admin = mesh.token("nadia", roles=(Role.PARTNER_ADMIN, Role.MEMBER), partner="north")
        reply = await mesh.call(m.PARTNER_SUGGESTIONS, admin, partner="north")
        assert [s.id for s in reply.suggestions] == ["west"]
        assert (
            await denied(mesh.call(m.PARTNER_SUGGESTIONS, admin, partner="west"))
            is ErrorCode.FORBIDDEN
        )
        assert (await mesh.call(m.PARTNER_SUGGESTIONS, mesh.broker(), partner="west")).suggestions[
            0
        ].id == "north"
        assert (
            await denied(mesh.call(m.PARTNER_SUGGESTIONS, mesh.broker(), partner="nope"))
            is ErrorCode.NOT_FOUND
        )
