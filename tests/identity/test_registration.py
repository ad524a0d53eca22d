"""Dynamic Client Registration (RFC 7591) gated by a partner admin's initial access tokens,
and client management (RFC 7592)."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from tests.identity.conftest import IdP

IAT = "{iss}/admin/partners/{partner}/initial-access-tokens"
LIMITS = {
    "max_clients": 2,
    "scopes": ["directory:read", "profile:read", "openid"],
    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    "redirect_hosts": ["app.northwind.example", "127.0.0.1"],
}
APP = {
    "client_name": "Northwind planner",
    "redirect_uris": ["https://app.northwind.example/cb"],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid directory:read",
}


async def _bearer(idp: IdP, username: str, scope: str) -> dict[str, str]:
    tokens = await idp.person_tokens(username, scope)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture(scope="module")
async def nadia(idp: IdP) -> dict[str, str]:
    """Northwind's partner admin, with the scope for wiring the partner's back-ends."""
    return await _bearer(idp, "nadia", "openid connector:admin")


async def _issue(
    idp: IdP, headers: dict[str, str], partner: str = "northwind", **limits: Any
) -> httpx.Response:
    return await idp.http.post(
        IAT.format(iss=idp.issuer, partner=partner), json={**LIMITS, **limits}, headers=headers
    )


async def _register(idp: IdP, iat: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {iat}"} if iat else {}
    return await idp.http.post(f"{idp.issuer}/register", json=body, headers=headers)


class TestInitialAccessTokens:
    async def test_partner_admin_issues_lists_and_revokes(
        self, idp: IdP, nadia: dict[str, str]
    ) -> None:
        resp = await _issue(idp, nadia)
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["token"] and body["partner"] == "northwind" and body["max_clients"] == 2
        listed = await idp.http.get(IAT.format(iss=idp.issuer, partner="northwind"), headers=nadia)
        assert body["id"] in [t["id"] for t in listed.json()]
        assert all("token" not in t for t in listed.json())  # the secret is shown once
        url = IAT.format(iss=idp.issuer, partner="northwind") + f"/{body['id']}"
        assert (await idp.http.delete(url, headers=nadia)).status_code == 204
        refused = await _register(idp, body["token"], APP)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"

    async def test_who_may_not(self, idp: IdP, nadia: dict[str, str]) -> None:
        assert (await _issue(idp, {})).status_code == 401
        member = await _bearer(idp, "noah", "openid connector:read")
        assert (await _issue(idp, member)).status_code == 403
        assert (await _issue(idp, nadia, partner="contoso")).status_code == 403
        operator = await _bearer(idp, "olivia", "openid admin")
        assert (await _issue(idp, operator, partner="contoso")).status_code == 201
        # another partner's admin neither lists nor revokes northwind's tokens
        mine = (await _issue(idp, nadia)).json()["id"]
        carlos = await _bearer(idp, "carlos", "openid connector:admin")
        tokens_url = IAT.format(iss=idp.issuer, partner="northwind")
        assert (await idp.http.get(tokens_url, headers=carlos)).status_code == 403
        assert (await idp.http.delete(f"{tokens_url}/{mine}", headers=carlos)).status_code == 403
        # nor through their own partner's path
        theirs = IAT.format(iss=idp.issuer, partner="contoso") + f"/{mine}"
        assert (await idp.http.delete(theirs, headers=carlos)).status_code == 404
        assert (await idp.http.get(tokens_url, headers=nadia)).json()[-1]["revoked"] is False

    async def test_limits_an_admin_cannot_grant(self, idp: IdP, nadia: dict[str, str]) -> None:
        assert (await _issue(idp, nadia, scopes=["admin"])).status_code == 422
        exchange = ["urn:ietf:params:oauth:grant-type:token-exchange"]
        assert (await _issue(idp, nadia, grant_types=exchange)).status_code == 422
        assert (await _issue(idp, nadia, redirect_hosts=["https://x.example/"])).status_code == 422
        assert (await _issue(idp, nadia, max_clients=0)).status_code == 422


class TestRegistration:
    @pytest.fixture
    async def iat(self, idp: IdP, nadia: dict[str, str]) -> str:
        """A fresh initial access token of northwind with LIMITS."""
        return str((await _issue(idp, nadia)).json()["token"])

    async def test_discovery(self, idp: IdP) -> None:
        meta = (await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")).json()
        assert meta["registration_endpoint"] == f"{idp.issuer}/register"

    async def test_registered_client_belongs_to_the_partner(self, idp: IdP, iat: str) -> None:
        body = {**APP, "grant_types": ["client_credentials"], "redirect_uris": []}
        body.pop("scope")
        resp = await _register(idp, iat, {**body, "scope": "directory:read"})
        assert resp.status_code == 201, resp.text
        client = resp.json()
        assert client["client_id"].startswith("dyn-") and client["client_secret"]
        assert client["registration_access_token"]
        assert client["registration_client_uri"] == f"{idp.issuer}/register/{client['client_id']}"
        assert client["partner"] == "northwind" and client["client_secret_expires_at"] == 0
        token = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "directory:read"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert token.status_code == 200, token.text
        claims = jwt.decode(token.json()["access_token"], options={"verify_signature": False})
        assert claims["partner"] == "northwind" and claims["sub"] == client["client_id"]

    async def test_without_or_with_a_wrong_token(self, idp: IdP) -> None:
        for iat in (None, "not-a-token"):
            resp = await _register(idp, iat, APP)
            assert resp.status_code == 401 and resp.json()["error"] == "invalid_token"
            assert resp.headers["www-authenticate"].startswith("Bearer")

    async def test_beyond_the_limits(self, idp: IdP, iat: str) -> None:
        scope = await _register(idp, iat, {**APP, "scope": "openid connector:admin"})
        assert scope.status_code == 400 and scope.json()["error"] == "invalid_client_metadata"
        grant = await _register(
            idp, iat, {**APP, "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}
        )
        assert grant.json()["error"] == "invalid_client_metadata"
        host = await _register(idp, iat, {**APP, "redirect_uris": ["https://evil.example/cb"]})
        assert host.status_code == 400 and host.json()["error"] == "invalid_redirect_uri"
        plain = await _register(
            idp, iat, {**APP, "redirect_uris": ["http://app.northwind.example/cb"]}
        )
        assert plain.json()["error"] == "invalid_redirect_uri"
        fragment = await _register(
            idp, iat, {**APP, "redirect_uris": ["https://app.northwind.example/cb#x"]}
        )
        assert fragment.json()["error"] == "invalid_redirect_uri"
        none = await _register(idp, iat, {**APP, "redirect_uris": []})
        assert none.json()["error"] == "invalid_redirect_uri"
        method = await _register(idp, iat, {**APP, "token_endpoint_auth_method": "magic"})
        assert method.json()["error"] == "invalid_client_metadata"
        public_cc = await _register(
            idp,
            iat,
            {**APP, "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"},
        )
        assert public_cc.json()["error"] == "invalid_client_metadata"
        garbage = await idp.http.post(
            f"{idp.issuer}/register", content=b"[1,2", headers={"Authorization": f"Bearer {iat}"}
        )
        assert garbage.status_code == 400 and garbage.json()["error"] == "invalid_client_metadata"
        # none of these used up the token: it still registers its two clients, not three
        assert (await _register(idp, iat, APP)).status_code == 201
        assert (await _register(idp, iat, APP)).status_code == 201
        third = await _register(idp, iat, APP)
        assert third.status_code == 403 and third.json()["error"] == "insufficient_scope"


class TestManagement:
    @pytest.fixture
    async def client(self, idp: IdP, nadia: dict[str, str]) -> dict[str, Any]:
        """A client registered through a fresh initial access token."""
        iat = (await _issue(idp, nadia)).json()["token"]
        resp = await _register(idp, iat, APP)
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    def _auth(self, client: dict[str, Any], token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or client['registration_access_token']}"}

    async def test_read(self, idp: IdP, client: dict[str, Any]) -> None:
        resp = await idp.http.get(client["registration_client_uri"], headers=self._auth(client))
        assert resp.status_code == 200
        assert resp.json()["redirect_uris"] == APP["redirect_uris"]
        assert "client_secret" not in resp.json()

    async def test_wrong_or_missing_token_or_another_client(
        self, idp: IdP, client: dict[str, Any]
    ) -> None:
        uri = client["registration_client_uri"]
        assert (await idp.http.get(uri)).status_code == 401
        assert (await idp.http.get(uri, headers=self._auth(client, "nope"))).status_code == 401
        other = f"{idp.issuer}/register/portal"  # not dynamically registered
        assert (await idp.http.get(other, headers=self._auth(client))).status_code == 401
        assert (await idp.http.delete(uri)).status_code == 401

    async def test_update(self, idp: IdP, client: dict[str, Any]) -> None:
        uri, auth = client["registration_client_uri"], self._auth(client)
        new = {**APP, "client_id": client["client_id"], "redirect_uris": ["http://127.0.0.1/cb"]}
        resp = await idp.http.put(uri, json=new, headers=auth)
        assert resp.status_code == 200, resp.text
        assert resp.json()["redirect_uris"] == ["http://127.0.0.1/cb"]
        beyond = {**new, "redirect_uris": ["https://evil.example/cb"]}
        refused = await idp.http.put(uri, json=beyond, headers=auth)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
        wrong_id = await idp.http.put(uri, json={**new, "client_id": "other"}, headers=auth)
        assert wrong_id.json()["error"] == "invalid_client_metadata"
        assert (await idp.http.get(uri, headers=auth)).json()["redirect_uris"] == [
            "http://127.0.0.1/cb"
        ]

    async def test_delete(self, idp: IdP, client: dict[str, Any]) -> None:
        uri, auth = client["registration_client_uri"], self._auth(client)
        assert (await idp.http.delete(uri, headers=auth)).status_code == 204
        assert (await idp.http.get(uri, headers=auth)).status_code == 401
        token = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=(client["client_id"], client["client_secret"]),
        )
        assert token.status_code == 401 and token.json()["error"] == "invalid_client"
