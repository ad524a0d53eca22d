"""Broker verification: badges on profiles and cards, revocation, audit rows and events."""

from __future__ import annotations

import pytest

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from contracts.v1 import profile as c
from mesh.client import call
from mesh.errors import MeshError
from tests.profile.conftest import Eco


async def _setup(eco: Eco) -> None:
    await eco.register("bruno", "acme-hq", Role.MEMBER, Role.BROKER)
    await eco.register("olivia", "acme-hq", Role.MEMBER, Role.OPERATOR)
    await eco.register("anna", "northwind", Role.MEMBER, Role.PARTNER_ADMIN)
    await eco.register("carl", "contoso", Role.MEMBER)
    await eco.settle()


class TestVerification:
    async def test_badge_shows_on_profile_card_and_directory(self, eco: Eco) -> None:
        await _setup(eco)
        view = await eco.call(c.VERIFY_PERSON, "bruno", person="anna", note="Met in Oslo")
        assert view.badge.verified and view.badge.by == "bruno"
        assert view.badge.note == "Met in Oslo" and view.badge.at is not None
        seen_by_carl = await eco.call(c.GET_PERSON, "carl", person="anna")
        assert seen_by_carl.badge == view.badge
        card = await eco.call(c.PERSON_CARD, "carl", person="anna")
        assert card.badge.verified and card.badge.note == "Met in Oslo"
        company = await eco.call(c.VERIFY_COMPANY, "bruno", partner="northwind", note="Audited")
        assert company.badge.verified
        assert (await eco.call(c.COMPANY_CARD, "carl", partner="northwind")).badge.verified

    async def test_revocation_removes_the_badge(self, eco: Eco) -> None:
        await _setup(eco)
        await eco.call(c.VERIFY_PERSON, "bruno", person="anna", note="ok")
        view = await eco.call(c.REVOKE_PERSON, "bruno", person="anna", note="left the company")
        assert view.badge == c.Badge()
        assert not (await eco.call(c.PERSON_CARD, "carl", person="anna")).badge.verified
        with pytest.raises(MeshError) as err:
            await eco.call(c.REVOKE_PERSON, "bruno", person="anna")
        assert err.value.code is ErrorCode.CONFLICT

    async def test_every_verification_and_revocation_is_audited(self, eco: Eco) -> None:
        await _setup(eco)
        await eco.call(c.VERIFY_PERSON, "bruno", person="anna", note="first")
        await eco.call(c.REVOKE_PERSON, "bruno", person="anna", note="second")
        await eco.call(c.VERIFY_COMPANY, "bruno", partner="contoso", note="third")
        log = await eco.call(c.AUDIT, "olivia")
        assert [(e.action, e.target_kind, e.target, e.note, e.actor) for e in log.entries] == [
            ("verified", "company", "contoso", "third", "bruno"),
            ("revoked", "person", "anna", "second", "bruno"),
            ("verified", "person", "anna", "first", "bruno"),
        ]
        event = await eco.last_event(c.ProfileVerified)
        assert event.data == c.VerificationData(
            target_kind="company", target="contoso", verified=True, broker="bruno", note="third"
        )
        updated = await eco.last_event(c.CompanyProfileUpdated)
        assert updated.data.partner == "contoso" and updated.data.verified is True


class TestDenials:
    @pytest.mark.parametrize("who", ["anna", "carl", "olivia"])
    async def test_only_brokers_verify(self, eco: Eco, who: str) -> None:
        await _setup(eco)
        for op, body in (
            (c.VERIFY_PERSON, {"person": "carl"}),
            (c.VERIFY_COMPANY, {"partner": "contoso"}),
        ):
            with pytest.raises(MeshError) as err:
                await eco.call(op, who, **body)
            assert err.value.code is ErrorCode.FORBIDDEN
        assert not (await eco.call(c.GET_PERSON, "carl", person="carl")).badge.verified
        assert (await eco.call(c.AUDIT, "bruno")).entries == []

    async def test_broker_token_needs_its_scope_and_ecosystem(self, eco: Eco) -> None:
        await _setup(eco)
        mint = eco.tokens.mint
        roles = [Role.MEMBER, Role.BROKER]
        for token in (
            mint(
                eco=eco.name,
                partner="acme-hq",
                roles=roles,
                sub="bruno",
                scope=Scope.PROFILE_WRITE.value,
            ),
            mint(eco="elsewhere", partner="acme-hq", roles=roles, sub="bruno"),
        ):
            with pytest.raises(MeshError) as err:
                await call(eco.nc, c.VERIFY_PERSON, {"eco": eco.name, "person": "carl"}, token)
            assert err.value.code is ErrorCode.FORBIDDEN

    async def test_members_cannot_read_the_audit(self, eco: Eco) -> None:
        await _setup(eco)
        with pytest.raises(MeshError) as err:
            await eco.call(c.AUDIT, "anna")
        assert err.value.code is ErrorCode.FORBIDDEN

    async def test_verifying_someone_unknown_is_404(self, eco: Eco) -> None:
        await _setup(eco)
        with pytest.raises(MeshError) as err:
            await eco.call(c.VERIFY_PERSON, "bruno", person="ghost")
        assert err.value.code is ErrorCode.NOT_FOUND
