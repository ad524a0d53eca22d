"""Ecosystems through the admin API: the platform ecosystem's operators create, list, read,
update and disable them; an ecosystem's own operators manage only their own."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from nats.aio.client import Client
from sqlalchemy import select

from identity.cli.devclient import login
from identity.domain.crypto import Sealer
from identity.store import models
from mesh.db import Database
from mesh.tokens import RemoteJwks, TokenVerifier
from tests.identity.conftest import CLI_REDIRECT, IdP
from tests.support.events import first_event
from tests.support.identity import refresh_grant
from tests.support.tokens import TokenFactory

GINA_PASSWORD = "globex-operator-pw"


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    """This module's provider names the demo ecosystem as the platform ecosystem."""
    return {"platform_ecosystem": "acme"}


@pytest.fixture(scope="module")
async def olivia(idp: IdP) -> str:
    """A platform operator's access token (acme operator, scope admin)."""
    return str((await idp.person_tokens("olivia"))["access_token"])


async def _call(
    idp: IdP, token: str | None, method: str, path: str = "", body: Any = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await idp.http.request(
        method, f"{idp.url}/admin/ecosystems{path}", json=body, headers=headers
    )


async def _own(idp: IdP, token: str, method: str, eco: str, body: Any = None) -> httpx.Response:
    return await idp.http.request(
        method,
        f"{idp.url}/eco/{eco}/admin/ecosystem",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def _slug() -> str:
    return f"eco-{uuid.uuid4().hex[:8]}"


def _new(slug: str, **extra: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": f"Brand {slug}",
        "partner": {"slug": f"{slug}-hq", "name": "Brand HQ"},
        "operator": {"username": "gina", "name": "Gina", "password": GINA_PASSWORD},
        **extra,
    }


async def _login(idp: IdP, eco: str, username: str, password: str, scope: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as browser:
        return await login(
            browser, f"{idp.url}/eco/{eco}", "mesh-cli", username, password, CLI_REDIRECT, scope
        )


async def _signed_by_acme(idp: IdP, **claims: Any) -> str:
    """A token signed with acme's real active key (to make one that has expired)."""
    db = Database(idp.settings.database_url, models.metadata)
    try:
        async with db.sessions() as s:
            rows = (
                (
                    await s.execute(
                        select(models.SigningKey).where(
                            models.SigningKey.eco == "acme",
                            models.SigningKey.state == "active",
                            models.SigningKey.alg == "RS256",
                        )
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await db.dispose()
    row = rows[-1]
    pem = Sealer(idp.settings.key_encryption_secret).open(row.private_enc, row.kid.encode())
    key = serialization.load_pem_private_key(pem, None)
    return jwt.encode(claims, key, "RS256", headers={"kid": row.kid, "typ": "at+jwt"})  # type: ignore[arg-type]


async def _audit(nc: Client, eco: str, action: str, target: str, timeout: float = 10.0) -> Any:
    def wanted(event: Any) -> bool:
        return bool(event.data.action == action and event.data.target == target)

    subject = f"pm.v1.evt.{eco}.identity.audit"
    return await first_event(nc, subject, wanted, f"{action} event for {target}", timeout)


@pytest.fixture(scope="module")
async def globex(idp: IdP, olivia: str) -> dict[str, Any]:
    """Another brand's ecosystem, created through the API, and its operator's token."""
    resp = await _call(idp, olivia, "POST", body=_new("globex"))
    assert resp.status_code == 201, resp.text
    gina = await _login(idp, "globex", "gina", GINA_PASSWORD, "openid admin")
    return {"doc": resp.json(), "gina": gina["access_token"]}


class TestWhoMayManageEcosystems:
    ROUTES: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
        ("POST", "", _new("denied")),
        ("GET", "", None),
        ("GET", "/globex", None),
    )
    ROUTES += (("PATCH", "/globex", {"name": "x"}), ("DELETE", "/globex", None))

    async def _all_refused(
        self, idp: IdP, token: str | None, status: int, code: str, check: bool = True
    ) -> None:
        for method, path, body in self.ROUTES:
            resp = await _call(idp, token, method, path, body)
            assert resp.status_code == status, (method, path, resp.text)
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.json()["code"] == code
        if check:  # nothing was created, nothing disabled
            listing = await _call(idp, (await idp.person_tokens("olivia"))["access_token"], "GET")
            docs = {e["slug"]: e for e in listing.json()}
            assert "denied" not in docs and docs["globex"]["disabled"] is False

    async def test_anonymous_and_forged_are_unauthenticated(
        self, idp: IdP, tokens: TokenFactory, globex: dict[str, Any]
    ) -> None:
        await self._all_refused(idp, None, 401, "unauthenticated")
        forged = tokens.mint(eco="acme", roles=["operator"], scope="admin")  # another signer
        await self._all_refused(idp, forged, 401, "unauthenticated")

    async def test_expired_platform_operator_token_is_unauthenticated(
        self, idp: IdP, olivia: str, globex: dict[str, Any]
    ) -> None:
        real = jwt.decode(olivia, options={"verify_signature": False})
        now = int(time.time())
        expired = await _signed_by_acme(
            idp, **{**real, "iat": now - 3600, "exp": now - 600, "jti": uuid.uuid4().hex}
        )
        await self._all_refused(idp, expired, 401, "unauthenticated")
        fresh = await _signed_by_acme(
            idp, **{**real, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex}
        )
        assert (await _call(idp, fresh, "GET")).status_code == 200, "same key, unexpired: ok"

    async def test_revoked_platform_operator_token_is_unauthenticated(
        self, idp: IdP, globex: dict[str, Any]
    ) -> None:
        token = (await idp.person_tokens("olivia"))["access_token"]
        assert (await _call(idp, token, "GET")).status_code == 200
        revoked = await idp.http.post(
            f"{idp.issuer}/revoke",
            data={"token": token, "token_type_hint": "access_token", "client_id": "mesh-cli"},
        )
        assert revoked.status_code == 200
        await self._all_refused(idp, token, 401, "unauthenticated")

    async def test_another_ecosystems_operator_is_forbidden(
        self, idp: IdP, globex: dict[str, Any]
    ) -> None:
        await self._all_refused(idp, globex["gina"], 403, "forbidden")

    async def test_partner_admin_broker_member_and_backend_are_forbidden(
        self, idp: IdP, globex: dict[str, Any]
    ) -> None:
        for username in ("nadia", "bruno", "noah"):
            await self._all_refused(
                idp, (await idp.person_tokens(username))["access_token"], 403, "forbidden"
            )
        backend = (await idp.cc("northwind-backend")).json()["access_token"]
        await self._all_refused(idp, backend, 403, "forbidden")

    async def test_platform_operator_without_admin_scope_is_forbidden(
        self, idp: IdP, globex: dict[str, Any]
    ) -> None:
        token = (await idp.person_tokens("olivia", "openid profile directory:read"))["access_token"]
        await self._all_refused(idp, token, 403, "forbidden")

    async def test_without_a_platform_ecosystem_nobody_may(
        self, idp: IdP, olivia: str, globex: dict[str, Any]
    ) -> None:
        idp.settings.platform_ecosystem = ""
        try:
            await self._all_refused(idp, olivia, 403, "forbidden", check=False)
        finally:
            idp.settings.platform_ecosystem = "acme"
        assert (await _call(idp, olivia, "GET")).status_code == 200

    async def test_own_operators_manage_only_their_own_ecosystem(
        self, idp: IdP, olivia: str, globex: dict[str, Any]
    ) -> None:
        own = await _own(idp, globex["gina"], "PATCH", "globex", {"name": "Globex Brands"})
        assert own.status_code == 200 and own.json()["name"] == "Globex Brands"
        assert (await _own(idp, globex["gina"], "GET", "acme")).status_code == 401
        assert (await _own(idp, olivia, "PATCH", "globex", {"name": "Mine"})).status_code == 401
        nadia = (await idp.person_tokens("nadia"))["access_token"]
        assert (await _own(idp, nadia, "PATCH", "acme", {"name": "Mine"})).status_code == 403
        disable = await _own(idp, globex["gina"], "PATCH", "globex", {"disabled": True})
        assert disable.status_code == 422, "disabling is for the platform's operators"


class TestCreate:
    async def test_new_ecosystem_serves_discovery_jwks_and_issues_tokens(
        self, idp: IdP, olivia: str, nc: Client
    ) -> None:
        slug = _slug()
        resp = await _call(idp, olivia, "POST", body=_new(slug, access_ttl=600))
        assert resp.status_code == 201, resp.text
        doc = resp.json()
        issuer = f"{idp.url}/eco/{slug}"
        assert (doc["slug"], doc["issuer"], doc["access_ttl"]) == (slug, issuer, 600)
        assert doc["disabled"] is False and doc["operator"]["username"] == "gina"

        meta = await idp.http.get(doc["discovery"])
        assert meta.status_code == 200 and meta.json()["issuer"] == issuer
        keys = (await idp.http.get(meta.json()["jwks_uri"])).json()["keys"]
        assert {k["alg"] for k in keys} == {"RS256", "ES256"}

        tokens = await _login(idp, slug, "gina", GINA_PASSWORD, "openid admin")
        assert tokens["expires_in"] == 600
        async with httpx.AsyncClient() as http:
            verifier = TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=0)
            claims = await verifier.verify(tokens["access_token"])
        assert (claims.eco, claims.partner) == (slug, f"{slug}-hq")
        assert {"operator", "member"} <= {str(r) for r in claims.roles}
        own = await _own(idp, tokens["access_token"], "GET", slug)
        assert own.status_code == 200 and own.json()["name"] == f"Brand {slug}"

        created = await _audit(nc, slug, "admin.ecosystem.created", slug)
        olivia_sub = jwt.decode(olivia, options={"verify_signature": False})["sub"]
        assert created.data.actor == olivia_sub

    async def test_operator_without_password_gets_an_invitation(
        self, idp: IdP, olivia: str
    ) -> None:
        slug = _slug()
        body = _new(slug, operator={"username": "ivy", "email": "ivy@example.com"})
        resp = await _call(idp, olivia, "POST", body=body)
        assert resp.status_code == 201, resp.text
        url = resp.json()["operator_signup_url"]
        assert url.startswith(f"{idp.url}/eco/{slug}/signup?invitation=")
        assert (await idp.http.get(url)).status_code == 200
        assert "operator" not in resp.json()

    async def test_listed_and_read_by_platform_operators(
        self, idp: IdP, olivia: str, globex: dict[str, Any]
    ) -> None:
        listed = await _call(idp, olivia, "GET")
        assert listed.status_code == 200
        slugs = [e["slug"] for e in listed.json()]
        assert "acme" in slugs and "globex" in slugs and slugs == sorted(slugs)
        one = await _call(idp, olivia, "GET", "/globex")
        assert one.status_code == 200 and one.json()["issuer"] == f"{idp.url}/eco/globex"
        missing = await _call(idp, olivia, "GET", "/nowhere")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"

    async def test_duplicate_is_a_conflict(
        self, idp: IdP, olivia: str, globex: dict[str, Any]
    ) -> None:
        for slug in ("globex", "acme"):
            resp = await _call(idp, olivia, "POST", body=_new(slug))
            assert resp.status_code == 409, resp.text
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.json()["code"] == "conflict"

    @pytest.mark.parametrize(
        ("change", "status"),
        [
            ({"slug": "Bad_Slug"}, 422),
            ({"name": ""}, 422),
            ({"access_ttl": 5}, 422),
            ({"membership_policy": "everyone"}, 422),
            ({"operator": {"username": "bad name!", "password": GINA_PASSWORD}}, 422),
            ({"operator": {"username": "gina", "password": "short"}}, 422),
            ({"partner": None}, 422),  # an operator without a partner
            ({"surprise": True}, 422),
            # refused inside the transaction, after the ecosystem row was written:
            ({"membership_policy": "claims"}, 422),  # claims-gated needs an admission rule
            ({"default_partner": "no-such-partner"}, 404),
        ],
    )
    async def test_bad_input_is_a_problem_and_writes_nothing(
        self,
        idp: IdP,
        olivia: str,
        change: dict[str, str]
        | dict[str, int]
        | dict[str, dict[str, str]]
        | dict[str, None]
        | dict[str, bool],
        status: int,
    ) -> None:
        slug = _slug()
        resp = await _call(idp, olivia, "POST", body={**_new(slug), **change})
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert "traceback" not in resp.text.lower()
        assert (await _call(idp, olivia, "GET", f"/{slug}")).status_code == 404
        meta = await idp.http.get(f"{idp.url}/eco/{slug}/.well-known/openid-configuration")
        assert meta.status_code == 404
        db = Database(idp.settings.database_url, models.metadata)
        try:
            async with db.sessions() as s:
                keys = await s.execute(
                    select(models.SigningKey).where(models.SigningKey.eco == slug)
                )
                people = await s.execute(select(models.Person).where(models.Person.eco == slug))
                assert not keys.scalars().all() and not people.scalars().all()
        finally:
            await db.dispose()


class TestUpdateAndDisable:
    async def test_platform_operator_updates_settings(self, idp: IdP, olivia: str) -> None:
        slug = _slug()
        assert (await _call(idp, olivia, "POST", body=_new(slug))).status_code == 201
        resp = await _call(
            idp,
            olivia,
            "PATCH",
            f"/{slug}",
            {
                "name": "Renamed",
                "access_ttl": 300,
                "refresh_ttl": 3600,
                "membership_policy": "open",
                "default_partner": f"{slug}-hq",
            },
        )
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        assert (doc["name"], doc["access_ttl"], doc["refresh_ttl"]) == ("Renamed", 300, 3600)
        assert (doc["membership_policy"], doc["default_partner"]) == ("open", f"{slug}-hq")
        bad = await _call(idp, olivia, "PATCH", f"/{slug}", {"refresh_ttl": 1})
        assert bad.status_code == 422
        unknown = await _call(idp, olivia, "PATCH", "/nowhere", {"name": "x"})
        assert unknown.status_code == 404

    async def test_disabled_ecosystem_issuer_is_gone_until_enabled(
        self, idp: IdP, olivia: str, nc: Client
    ) -> None:
        slug = _slug()
        assert (await _call(idp, olivia, "POST", body=_new(slug))).status_code == 201
        tokens = await _login(idp, slug, "gina", GINA_PASSWORD, "openid admin")
        issuer = f"{idp.url}/eco/{slug}"

        resp = await _call(idp, olivia, "DELETE", f"/{slug}")
        assert resp.status_code == 200 and resp.json()["disabled"] is True
        for path in ("/.well-known/openid-configuration", "/jwks", "/admin/ecosystem"):
            got = await idp.http.get(
                issuer + path, headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            assert got.status_code == 404, path
        refresh = await refresh_grant(idp.http, issuer, tokens["refresh_token"])
        assert refresh.status_code == 404
        listed = {e["slug"]: e for e in (await _call(idp, olivia, "GET")).json()}
        assert listed[slug]["disabled"] is True
        jti = jwt.decode(tokens["access_token"], options={"verify_signature": False})["jti"]
        revoked = await _revoked_event(nc, slug, jti)
        assert revoked.data.reason == "ecosystem_disabled"
        # and every token of the ecosystem up to now, recorded or not (client credentials)
        [whole] = revoked.data.subjects
        assert (
            whole.sub is None
            and whole.before
            > jwt.decode(tokens["access_token"], options={"verify_signature": False})["iat"]
        )
        assert whole.until - whole.before == 24 * 3600
        await _audit(nc, slug, "admin.ecosystem.disabled", slug)

        again = await _call(idp, olivia, "PATCH", f"/{slug}", {"disabled": False})
        assert again.status_code == 200 and again.json()["disabled"] is False
        meta = await idp.http.get(f"{issuer}/.well-known/openid-configuration")
        assert meta.status_code == 200
        # its refresh tokens stayed revoked
        refresh = await refresh_grant(idp.http, issuer, tokens["refresh_token"])
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"

    async def test_platform_ecosystem_cannot_be_disabled(self, idp: IdP, olivia: str) -> None:
        for method, body in (("DELETE", None), ("PATCH", {"disabled": True})):
            resp = await _call(idp, olivia, method, "/acme", body)
            assert resp.status_code == 409 and resp.json()["code"] == "conflict"
        assert (await idp.http.get(f"{idp.issuer}/jwks")).status_code == 200

    async def test_disabling_an_unknown_ecosystem_is_not_found(self, idp: IdP, olivia: str) -> None:
        resp = await _call(idp, olivia, "DELETE", "/nowhere")
        assert resp.status_code == 404 and resp.json()["code"] == "not_found"


async def _revoked_event(nc: Client, eco: str, jti: str, timeout: float = 10.0) -> Any:
    def wanted(event: Any) -> bool:
        return jti in [t.jti for t in event.data.tokens]

    subject = f"pm.v1.evt.{eco}.identity.token_revoked"
    return await first_event(nc, subject, wanted, f"token_revoked event for {jti}", timeout)
