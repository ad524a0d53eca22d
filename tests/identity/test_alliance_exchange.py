"""Acting across an alliance: a client of globex exchanges globex tokens at acme's token
endpoint (as ``<client>@globex``) while, and only while, the alliance is active; the
token's roles and scopes follow acme's terms; suspending or ending the alliance cuts off
the tokens already exchanged, as a real verifier fed by the real revocation stream sees."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from mesh.errors import MeshError
from mesh.revocation import RevocationFeed
from mesh.tokens import RemoteJwks, TokenVerifier
from tests.identity.alliance_support import (
    AT,
    EXCHANGE,
    PASSWORD,
    World,
    make_world,
    operator_token,
)
from tests.identity.conftest import IdP

BACKEND = "globex-backend@globex"


@pytest.fixture(scope="module")
async def world(idp: IdP) -> World:
    """acme, globex and initech with their operators' tokens and back-ends."""
    return await make_world(idp)


@pytest.fixture
async def verifier(idp: IdP, nc: Client) -> AsyncIterator[TokenVerifier]:
    """A resource server's verifier (JWKS over HTTP) fed by the real revocation stream,
    from this test's start: the module runs once per engine on one NATS with the same
    ecosystem names, and a cut-off another run published in the same second is not this
    deployment's (its identity database never knew it)."""
    async with httpx.AsyncClient(timeout=10) as http:
        v = TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=100)
        feed = RevocationFeed(nc.jetstream(), v.revoked, horizon_s=0.0)
        await feed.start()
        try:
            yield v
        finally:
            await feed.stop()


def _terms(**acme: Any) -> dict[str, Any]:
    return {
        "acme": {"share": "people", "roles": ["member"], "scopes": ["directory:read"], **acme},
        "globex": {"share": "people", "roles": ["member"], "scopes": ["directory:read"]},
    }


async def _refused(verifier: TokenVerifier, token: str, timeout: float = 10.0) -> str:
    """Poll until ``verifier`` refuses ``token`` (the feed applies the cut-off); its reason."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await verifier.verify(token)
        except MeshError as err:
            return err.detail
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the exchanged token was not cut off")
        await asyncio.sleep(0.02)


async def _exchanged(world: World, token: str) -> str:
    resp = await world.exchange("acme", BACKEND, token)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


class TestExchangeAcross:
    async def test_a_partner_back_end_acts_in_the_allied_ecosystem(
        self, world: World, verifier: TokenVerifier
    ) -> None:
        await world.active("acme", "globex", _terms(scopes=["directory:read", "connector:invoke"]))
        own = await world.client_token("globex", "globex-backend")
        claims = await verifier.verify(await _exchanged(world, own))
        assert claims.eco == "acme" and claims.iss == world.url("acme")
        assert claims.fed is not None and claims.fed.eco == "globex"
        assert claims.fed.iss == world.url("globex") and claims.fed.partner == "globex-corp"
        assert claims.partner is None  # no partner of acme: the origin's is in fed
        assert claims.sub == "globex-backend" and claims.client_id == BACKEND
        assert [str(r) for r in claims.roles] == ["member"]  # not the client's partner_admin
        assert claims.scopes == {"directory:read", "connector:invoke"}  # not forum:read

    async def test_a_person_gets_the_terms_roles_never_operator_or_admin(
        self, world: World, verifier: TokenVerifier
    ) -> None:
        await world.active("acme", "globex", _terms(roles=["member", "broker"]))
        gina = world.operators["globex"]  # an operator of globex holding admin there
        claims = await verifier.verify(await _exchanged(world, gina))
        assert sorted(str(r) for r in claims.roles) == ["broker", "member"]
        assert claims.scopes == {"directory:read"} and "admin" not in claims.scope
        asking = await world.exchange("acme", BACKEND, gina, scope="directory:read admin")
        assert asking.status_code == 400 and asking.json()["error"] == "invalid_scope"

    async def test_the_direction_is_the_owners_terms(self, world: World) -> None:
        """acme's terms rule tokens exchanged into acme; globex's those into globex."""
        await world.active("acme", "globex", _terms(scopes=["profile:read"]))
        olivia_own = await world.client_token("acme", "acme-backend")
        resp = await world.exchange("globex", "acme-backend@acme", olivia_own)
        assert resp.status_code == 200, resp.text
        assert resp.json()["scope"] == "directory:read"
        into_acme = await world.exchange(
            "acme", BACKEND, await world.client_token("globex", "globex-backend")
        )
        assert into_acme.json()["scope"] == "profile:read"

    async def test_operators_rules_keep_the_alliances(self, world: World) -> None:
        await world.active("acme", "globex")
        resp = await world.idp.http.put(
            world.url("acme", "/admin/exchange-rules"),
            json={"rules": [{"client": "x", "alliance": "forged", "client_ecosystem": "initech"}]},
            headers={"Authorization": f"Bearer {world.operators['acme']}"},
        )
        assert resp.status_code == 200
        settings = await world.idp.http.get(
            world.url("acme", "/admin/ecosystem"),
            headers={"Authorization": f"Bearer {world.operators['acme']}"},
        )
        rules = settings.json()["exchange_rules"]
        assert [r.get("client_ecosystem") for r in rules] == ["globex"]
        assert (await world.exchange("acme", BACKEND, world.operators["globex"])).is_success
        assert (
            await world.exchange("acme", "initech-backend@initech", world.operators["initech"])
        ).status_code == 401


class TestExchangeRefused:
    @pytest.mark.parametrize("stage", ["never", "proposed", "suspended", "ended", "rejected"])
    async def test_only_an_active_alliance_lets_tokens_across(
        self, world: World, stage: str
    ) -> None:
        await world.end_open("acme", "globex")
        if stage != "never":
            alliance = await world.propose("acme", "globex", _terms())
            if stage in ("suspended", "ended"):
                await world.act("globex", alliance, "accept")
                await world.act("globex", alliance, stage.removesuffix("ed"))
            elif stage == "rejected":
                await world.act("globex", alliance, "reject")
        resp = await world.exchange("acme", BACKEND, world.operators["globex"])
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client", resp.text
        # nor through a client of acme: acme's own rules know no globex tokens
        acme_backend = await world.exchange("acme", "acme-backend", world.operators["globex"])
        assert acme_backend.status_code == 400 and acme_backend.json()["error"] == "invalid_request"

    async def test_a_client_of_the_ally_exchanges_only_its_own_ecosystems_tokens(
        self, world: World
    ) -> None:
        await world.active("acme", "globex")
        acme_token = await world.client_token("acme", "acme-backend")
        resp = await world.exchange("acme", BACKEND, acme_token)
        assert (
            resp.status_code == 400 and "only tokens of globex" in resp.json()["error_description"]
        )

    async def test_only_what_it_could_exchange_at_home(self, world: World, idp: IdP) -> None:
        """globex's back-end may exchange its own partner's people's tokens at globex; a
        person of another globex partner is refused at acme too."""
        await world.active("acme", "globex")
        auth = {"Authorization": f"Bearer {world.operators['globex']}"}
        made = await idp.http.post(
            world.url("globex", "/admin/partners"),
            json={"slug": "globex-other", "name": "O"},
            headers=auth,
        )
        assert made.status_code == 201, made.text
        person = {"username": "gus", "partner": "globex-other", "name": "Gus", "password": PASSWORD}
        made = await idp.http.post(world.url("globex", "/admin/people"), json=person, headers=auth)
        assert made.status_code == 201, made.text
        gus = await operator_token(idp, "globex", "gus", PASSWORD)
        resp = await world.exchange("acme", BACKEND, gus)
        assert resp.status_code == 400, resp.text
        assert "globex's exchange rules" in resp.json()["error_description"]

    async def test_an_allied_client_may_only_exchange(self, world: World) -> None:
        await world.active("acme", "globex")
        secret = world.secrets[BACKEND]
        cc = await world.idp.http.post(
            world.url("acme", "/token"),
            data={"grant_type": "client_credentials"},
            auth=(BACKEND, secret),
        )
        # no token of acme speaks for a client of globex, except an exchanged one
        assert cc.status_code == 401 and cc.json()["error"] == "invalid_client", cc.text
        token = await world.client_token("globex", "globex-backend")
        introspect = await world.idp.http.post(
            world.url("acme", "/introspect"), data={"token": token}, auth=(BACKEND, secret)
        )
        assert introspect.status_code == 401, introspect.text
        bad = await world.idp.http.post(
            world.url("acme", "/token"),
            data={"grant_type": "client_credentials"},
            auth=(BACKEND, "not-the-secret"),
        )
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


class TestCutOff:
    @pytest.mark.parametrize("action", ["suspend", "end"])
    async def test_tokens_exchanged_before_are_refused_at_once(
        self, world: World, verifier: TokenVerifier, action: str
    ) -> None:
        alliance = await world.active("acme", "globex")
        crossed = await _exchanged(world, world.operators["globex"])
        back = await world.exchange(
            "globex", "acme-backend@acme", await world.client_token("acme", "acme-backend")
        )
        other_way = str(back.json()["access_token"])
        assert (await verifier.verify(crossed)).fed is not None
        assert (await verifier.verify(other_way)).eco == "globex"
        own = world.operators["acme"]
        assert (await verifier.verify(own)).eco == "acme"

        allies = world.url("acme", "/alliances")
        reading = await world.idp.http.get(allies, headers={"Authorization": f"Bearer {crossed}"})
        assert reading.status_code == 200 and reading.json()["allies"][0]["ecosystem"] == "globex"

        assert (await world.act("acme", alliance, action)).is_success
        reading = await world.idp.http.get(allies, headers={"Authorization": f"Bearer {crossed}"})
        assert reading.status_code == 401, reading.text  # identity itself refuses it too
        assert "revoked" in await _refused(verifier, crossed)
        assert "revoked" in await _refused(verifier, other_way)  # both directions
        assert (await verifier.verify(own)).eco == "acme"  # acme's own tokens live on
        assert (await verifier.verify(world.operators["globex"])).eco == "globex"
        again = await world.exchange("acme", BACKEND, world.operators["globex"])
        assert again.status_code == 401

    async def test_after_resuming_new_exchanges_live_and_old_ones_stay_cut_off(
        self, world: World, verifier: TokenVerifier
    ) -> None:
        alliance = await world.active("acme", "globex")
        old = await _exchanged(world, world.operators["globex"])
        await world.act("globex", alliance, "suspend")
        await _refused(verifier, old)
        assert (await world.act("globex", alliance, "resume")).json()["status"] == "active"
        new = await _exchanged(world, world.operators["globex"])  # maybe in the same second
        assert (await verifier.verify(new)).fed is not None
        assert "revoked" in await _refused(verifier, old)
        await world.act("acme", alliance, "end")
        assert "revoked" in await _refused(verifier, new)


class TestAlliedPortal:
    async def test_the_allys_portal_client_exchanges_its_peoples_tokens(
        self, world: World, verifier: TokenVerifier
    ) -> None:
        """globex's own ``portal`` (the same client id as acme's) authenticates at acme as
        ``portal@globex`` and exchanges the token of a globex person it signed in."""
        auth = {"Authorization": f"Bearer {world.operators['globex']}"}
        made = await world.idp.http.post(
            world.url("globex", "/admin/clients"),
            json={
                "client_id": "portal",
                "name": "globex portal",
                "partner": "globex-corp",
                "grant_types": ["authorization_code", "refresh_token", EXCHANGE],
                "scopes": ["openid", "directory:read", "profile:read"],
                "redirect_uris": ["http://127.0.0.1:8099/portal"],
            },
            headers=auth,
        )
        assert made.status_code == 201, made.text
        world.secrets["portal@globex"] = made.json()["client_secret"]
        rules = [
            {"client": "globex-backend", "subject_clients": "*", "same_partner": True},
            {"client": "portal", "subject_clients": "*"},
        ]
        put = await world.idp.http.put(
            world.url("globex", "/admin/exchange-rules"), json={"rules": rules}, headers=auth
        )
        assert put.status_code == 200
        await world.active("acme", "globex")
        resp = await world.exchange("acme", "portal@globex", world.operators["globex"])
        assert resp.status_code == 200, resp.text
        claims = await verifier.verify(resp.json()["access_token"])
        assert claims.client_id == "portal@globex" and claims.fed is not None
        assert claims.sub == (await verifier.verify(world.operators["globex"])).sub
        # acme's own portal secret is no good for globex's portal, and the other way round
        wrong = await world.idp.http.post(
            world.url("acme", "/token"),
            data={
                "grant_type": EXCHANGE,
                "subject_token": world.operators["globex"],
                "subject_token_type": AT,
            },
            auth=("portal", world.secrets["portal@globex"]),
        )
        assert wrong.status_code == 401

    async def test_a_cut_off_token_is_not_exchanged_again(self, world: World) -> None:
        """A token globex issued from acme's (fed.eco acme) before a suspension cannot be
        exchanged back into acme after the alliance is resumed (globex's portal, set up
        above, may exchange any globex token)."""
        assert "portal@globex" in world.secrets
        alliance = await world.active("acme", "globex")
        back = await world.exchange(
            "globex", "acme-backend@acme", await world.client_token("acme", "acme-backend")
        )
        in_globex = str(back.json()["access_token"])
        allowed = await world.exchange("acme", "portal@globex", in_globex)
        assert allowed.status_code == 200, allowed.text  # the path itself is open
        await world.act("acme", alliance, "suspend")
        await world.act("acme", alliance, "resume")
        again = await world.exchange("acme", "portal@globex", in_globex)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
        await world.act("acme", alliance, "end")
