"""Profiles: stubs from identity events, per-field visibility across viewers, edits and denials."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nats.aio.client import Client

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from contracts.policy import Operation
from contracts.v1 import profile as c
from contracts.v1.matching import IntroductionConnected, IntroductionData
from mesh.client import call, request_raw
from mesh.errors import MeshError
from mesh.runtime import ServiceRuntime
from tests.profile.conftest import Eco
from tests.support.tokens import TokenFactory

LEVELS = {
    "headline": "ecosystem",
    "bio": "private",
    "skills": "company",
    "needs": "connections",
}


async def _people(eco: Eco) -> None:
    """anna (northwind admin), noah (northwind), carl (contoso), cleo (contoso, connected)."""
    await eco.register("anna", "northwind", Role.MEMBER, Role.PARTNER_ADMIN, name="Anna Berg")
    await eco.register("noah", "northwind")
    await eco.register("carl", "contoso", Role.MEMBER, Role.PARTNER_ADMIN)
    await eco.register("cleo", "contoso")
    await eco.register("bruno", "acme-hq", Role.MEMBER, Role.BROKER)
    await eco.publish(
        IntroductionConnected(
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
    )
    await eco.settle()
    await eco.call(
        c.UPDATE_PERSON,
        "anna",
        person="anna",
        headline="Cold chain lead",
        bio="Between jobs soon",
        skills=["routing"],
        needs=["forecasting"],
        visibility=LEVELS,
    )


async def _denied(
    eco: Eco,
    op: Operation,
    who: str | None,
    code: ErrorCode,
    token: str | None = None,
    **body: Any,
) -> MeshError:
    with pytest.raises(MeshError) as err:
        if token is not None:
            await call(eco.nc, op, {"eco": eco.name, **body}, token)
        else:
            await eco.call(op, who, **body)
    assert err.value.code is code, err.value
    return err.value


class TestStubs:
    async def test_people_and_companies_exist_before_they_fill_anything_in(self, eco: Eco) -> None:
        await eco.register("anna", "northwind", name="Anna Berg")
        await eco.settle()
        view = await eco.call(c.GET_PERSON, "anna", person="anna")
        assert (view.name, view.partner, view.company_name) == (
            "Anna Berg",
            "northwind",
            "Northwind",
        )
        assert view.headline == "" and view.skills == []
        company = await eco.call(c.GET_COMPANY, "anna", partner="northwind")
        assert company.name == "Northwind"
        created = await eco.last_event(c.PersonProfileUpdated)
        assert created.data.person == "anna" and created.data.name == "Anna Berg"

    async def test_unknown_person_and_company_are_404(self, eco: Eco) -> None:
        await eco.register("anna", "northwind")
        await eco.settle()
        await _denied(eco, c.GET_PERSON, "anna", ErrorCode.NOT_FOUND, person="ghost")
        await _denied(eco, c.PERSON_CARD, "anna", ErrorCode.NOT_FOUND, person="ghost")
        await _denied(eco, c.GET_COMPANY, "anna", ErrorCode.NOT_FOUND, partner="ghost-co")


class TestFieldVisibility:
    async def test_each_viewer_sees_exactly_their_levels(self, eco: Eco) -> None:
        await _people(eco)
        seen = {}
        for viewer in ("anna", "noah", "cleo", "carl", "bruno"):
            view = await eco.call(c.GET_PERSON, viewer, person="anna")
            seen[viewer] = {f for f in LEVELS if getattr(view, f) is not None}
        assert seen["anna"] == {"headline", "bio", "skills", "needs"}
        assert seen["noah"] == {"headline", "skills", "needs"}  # colleague
        assert seen["cleo"] == {"headline", "needs"}  # connected through an introduction
        assert seen["carl"] == {"headline"}  # cleo's colleague, not connected
        assert seen["bruno"] == {"headline"}  # a broker sees no more than anyone else

    async def test_only_the_owner_sees_the_visibility_settings(self, eco: Eco) -> None:
        await _people(eco)
        own = await eco.call(c.GET_PERSON, "anna", person="anna")
        assert own.visibility["bio"] == "private"
        other = await eco.call(c.GET_PERSON, "noah", person="anna")
        assert other.visibility is None

    async def test_card_headline_follows_visibility(self, eco: Eco) -> None:
        await _people(eco)
        await eco.call(c.UPDATE_PERSON, "anna", person="anna", visibility={"headline": "company"})
        assert (await eco.call(c.PERSON_CARD, "noah", person="anna")).headline == "Cold chain lead"
        assert (await eco.call(c.PERSON_CARD, "carl", person="anna")).headline is None

    async def test_company_fields_by_tier(self, eco: Eco) -> None:
        await _people(eco)
        await eco.call(
            c.UPDATE_COMPANY,
            "anna",
            partner="northwind",
            description="Cold chain carrier",
            certifications=["GDP"],
            size="51-200",
            offers=["cross-docking"],
            visibility={"certifications": "connections", "size": "company", "offers": "private"},
        )
        shown = {}
        for viewer in ("anna", "noah", "cleo", "carl"):
            view = await eco.call(c.GET_COMPANY, viewer, partner="northwind")
            shown[viewer] = {
                f
                for f in ("description", "certifications", "size", "offers")
                if getattr(view, f) is not None
            }
        assert shown["anna"] == {"description", "certifications", "size", "offers"}  # admin
        assert shown["noah"] == {"description", "certifications", "size"}
        assert shown["cleo"] == {"description", "certifications"}  # connected with anna
        assert shown["carl"] == {"description"}


class TestEdits:
    async def test_patch_keeps_omitted_fields(self, eco: Eco) -> None:
        await _people(eco)
        view = await eco.call(c.UPDATE_PERSON, "anna", person="anna", regions=["Nordics"])
        assert view.regions == ["Nordics"] and view.headline == "Cold chain lead"

    async def test_nobody_edits_someone_elses_profile(self, eco: Eco) -> None:
        await _people(eco)
        for who in ("noah", "carl", "bruno"):
            await _denied(
                eco, c.UPDATE_PERSON, who, ErrorCode.FORBIDDEN, person="anna", headline="hacked"
            )
        token = eco.tokens.mint(eco=eco.name, partner="northwind", roles=[Role.OPERATOR], sub="op")
        await _denied(
            eco,
            c.UPDATE_PERSON,
            None,
            ErrorCode.FORBIDDEN,
            token=token,
            person="anna",
            headline="hacked",
        )
        assert (await eco.call(c.GET_PERSON, "anna", person="anna")).headline == "Cold chain lead"

    async def test_only_the_partners_admin_edits_the_company(self, eco: Eco) -> None:
        await _people(eco)
        await _denied(
            eco, c.UPDATE_COMPANY, "noah", ErrorCode.FORBIDDEN, partner="northwind", description="x"
        )  # member, not admin
        await _denied(
            eco, c.UPDATE_COMPANY, "carl", ErrorCode.FORBIDDEN, partner="northwind", description="x"
        )  # admin of another partner
        op = eco.tokens.mint(eco=eco.name, partner=None, roles=[Role.OPERATOR], sub="op")
        await _denied(
            eco,
            c.UPDATE_COMPANY,
            None,
            ErrorCode.FORBIDDEN,
            token=op,
            partner="northwind",
            description="x",
        )
        view = await eco.call(c.UPDATE_COMPANY, "anna", partner="northwind", description="ok")
        assert view.description == "ok"

    async def test_bad_input_is_refused_and_changes_nothing(self, eco: Eco) -> None:
        await _people(eco)
        token = eco.token("anna")
        bad: list[dict[str, Any]] = [
            {"person": "anna", "visibility": {"bio": "friends"}},
            {"person": "anna", "links": [{"label": "x", "url": "javascript:alert(1)"}]},
            {"person": "anna", "skills": ["x" * 81]},
            {"person": "anna", "nickname": "extra field"},
        ]
        for body in bad:
            payload = {"eco": eco.name, "headline": "changed", **body}
            with pytest.raises(MeshError) as err:
                await request_raw(
                    eco.nc, c.UPDATE_PERSON.subject, json.dumps(payload).encode(), token
                )
            assert err.value.code is ErrorCode.VALIDATION_FAILED
        assert (await eco.call(c.GET_PERSON, "anna", person="anna")).headline == "Cold chain lead"


class TestDenials:
    async def test_policy_denials(self, eco: Eco) -> None:
        await _people(eco)
        mint = eco.tokens.mint
        cases = [
            (None, ErrorCode.UNAUTHENTICATED),
            (mint(eco="other", partner="northwind", sub="anna"), ErrorCode.FORBIDDEN),
            (
                mint(eco=eco.name, partner="northwind", sub="anna", expires_in=-120),
                ErrorCode.UNAUTHENTICATED,
            ),
            (
                mint(eco=eco.name, partner="northwind", sub="anna", scope=Scope.FORUM_READ.value),
                ErrorCode.FORBIDDEN,
            ),
        ]
        for token, code in cases:
            for op, body in (
                (c.GET_PERSON, {"person": "anna"}),
                (c.PERSON_CARD, {"person": "anna"}),
                (c.UPDATE_PERSON, {"person": "anna", "headline": "x"}),
                (c.DIRECTORY, {}),
            ):
                with pytest.raises(MeshError) as err:
                    await call(eco.nc, op, {"eco": eco.name, **body}, token)
                assert err.value.code is code, (op.name, code)

    async def test_another_ecosystems_people_are_not_found(
        self, eco: Eco, nc: Client, tokens: TokenFactory, profile: ServiceRuntime
    ) -> None:
        await _people(eco)
        other = Eco(nc, tokens, profile)
        await other.register("olga", "globex")
        await other.settle()
        await _denied(other, c.GET_PERSON, "olga", ErrorCode.NOT_FOUND, person="anna")
        page = await other.call(c.DIRECTORY, "olga", q="cold chain")
        assert page.total == 0
