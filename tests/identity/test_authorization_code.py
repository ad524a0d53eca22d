"""Authorization code + PKCE through the real login and consent pages, ID tokens, userinfo."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import update

from identity.cli.devclient import LoginFailed, login
from identity.cli.seed import PASSWORD
from identity.domain.crypto import digest, pkce_pair
from identity.store import models
from mesh.db import Database
from mesh.tokens import RemoteJwks, TokenVerifier
from tests.identity.conftest import CLI_REDIRECT, PORTAL_REDIRECT, IdP
from tests.support.identity import refresh_grant
from tests.support.text import first_group


def _hidden(html: str) -> dict[str, str]:
    """The hidden fields of a page's form, as a browser would submit them."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return {k: unescape(v) for k, v in found}


async def _code(
    idp: IdP,
    browser: httpx.AsyncClient,
    client_id: str,
    redirect: str,
    username: str = "noah",
    scope: str = "openid profile:read",
    challenge: str | None = None,
    **extra: Any,
) -> str:
    """Sign in through the pages and return the authorization code."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect,
        "scope": scope,
        "state": "s1",
        **extra,
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    resp = await browser.get(f"{idp.issuer}/authorize", params=params)
    if resp.status_code == 302 and "/login" in resp.headers["location"]:
        page = await browser.get(idp.url + resp.headers["location"])
        resp = await browser.post(
            f"{idp.issuer}/login",
            data={**_hidden(page.text), "username": username, "password": PASSWORD},
        )
        assert resp.status_code == 303, resp.text
        resp = await browser.get(idp.url + resp.headers["location"])
    if resp.status_code == 200 and 'name="decision"' in resp.text:
        action = first_group(r'action="([^"]+)"', resp.text).replace("&amp;", "&")
        resp = await browser.post(
            idp.url + action, data={**_hidden(resp.text), "decision": "allow"}
        )
    assert resp.status_code == 302, (resp.request.url, resp.text[-300:])
    query = parse_qs(urlsplit(resp.headers["location"]).query)
    assert query["state"] == ["s1"]
    return query["code"][0]


class TestDevClientLogin:
    async def test_mesh_cli_login_gives_verifiable_person_tokens(self, idp: IdP) -> None:
        tokens = await idp.person_tokens("nadia")
        async with httpx.AsyncClient() as http:
            verifier = TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=0)
            claims = await verifier.verify(tokens["access_token"])
        assert claims.partner == "northwind" and set(claims.roles) == {"partner_admin", "member"}
        assert claims.client_id == "mesh-cli" and claims.has_scope("connector:admin")
        assert not claims.has_scope("admin") and not claims.has_scope("broker:curate")
        assert tokens["refresh_token"] and tokens["id_token"]

    async def test_operator_gets_admin_scope_and_broker_gets_curate(self, idp: IdP) -> None:
        olivia = jwt.decode(
            (await idp.person_tokens("olivia"))["access_token"], options={"verify_signature": False}
        )
        bruno = jwt.decode(
            (await idp.person_tokens("bruno"))["access_token"], options={"verify_signature": False}
        )
        assert "admin" in olivia["scope"].split() and "partner" in olivia
        assert "broker:curate" in bruno["scope"].split() and "admin" not in bruno["scope"].split()

    async def test_one_http_client_signs_in_several_people(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            subs = []
            for username in ("noah", "chloe", "noah"):
                tokens = await login(
                    browser,
                    idp.issuer,
                    "mesh-cli",
                    username,
                    PASSWORD,
                    CLI_REDIRECT,
                    "openid profile:read",
                )
                subs.append(
                    jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"]
                )
        assert subs[0] != subs[1] and subs[0] == subs[2]

    async def test_wrong_password_fails(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            with pytest.raises(LoginFailed):
                await login(
                    browser,
                    idp.issuer,
                    "mesh-cli",
                    "chloe",
                    "wrong-password-x",
                    CLI_REDIRECT,
                    "openid",
                )


class TestIdToken:
    async def test_id_token_carries_nonce_and_at_hash(self, idp: IdP) -> None:
        verifier, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            code = await _code(
                idp,
                browser,
                "mesh-cli",
                CLI_REDIRECT,
                scope="openid profile",
                challenge=challenge,
                nonce="n-123",
            )
            resp = await browser.post(
                f"{idp.issuer}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": CLI_REDIRECT,
                    "client_id": "mesh-cli",
                    "code_verifier": verifier,
                },
            )
        body = resp.json()
        jwks = (await idp.http.get(f"{idp.issuer}/jwks")).json()
        kid = jwt.get_unverified_header(body["id_token"])["kid"]
        key = jwt.PyJWK.from_dict(next(k for k in jwks["keys"] if k["kid"] == kid))
        claims = jwt.decode(
            body["id_token"], key.key, ["RS256"], audience="mesh-cli", issuer=idp.issuer
        )
        assert claims["nonce"] == "n-123" and claims["at_hash"] and claims["auth_time"]
        assert claims["name"] == "Noah Nguyen" and claims["partner"] == "northwind"

    async def test_userinfo(self, idp: IdP) -> None:
        tokens = await idp.person_tokens("carlos", "openid profile email")
        resp = await idp.http.get(
            f"{idp.issuer}/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert resp.status_code == 200
        assert resp.json()["email"] == "carlos@contoso.example"
        bad = await idp.http.get(
            f"{idp.issuer}/userinfo", headers={"Authorization": "Bearer x.y.z"}
        )
        assert bad.status_code == 401 and "invalid_token" in bad.headers["www-authenticate"]


class TestCodeFailures:
    async def _exchange(
        self,
        idp: IdP,
        code: str,
        verifier: str | None = None,
        redirect: str = CLI_REDIRECT,
        client: str = "mesh-cli",
    ) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": client,
        }
        if verifier:
            data["code_verifier"] = verifier
        return await idp.http.post(f"{idp.issuer}/token", data=data)

    async def test_code_reuse_is_invalid_grant_and_revokes_its_refresh_token(
        self, idp: IdP
    ) -> None:
        verifier, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            code = await _code(idp, browser, "mesh-cli", CLI_REDIRECT, challenge=challenge)
        first = await self._exchange(idp, code, verifier)
        assert first.status_code == 200
        again = await self._exchange(idp, code, verifier)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        refresh = await refresh_grant(idp.http, idp.issuer, first.json()["refresh_token"])
        assert refresh.json()["error"] == "invalid_grant"

    async def test_wrong_redirect_uri_at_token_is_invalid_grant(self, idp: IdP) -> None:
        verifier, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            code = await _code(idp, browser, "mesh-cli", CLI_REDIRECT, challenge=challenge)
        resp = await self._exchange(idp, code, verifier, redirect="http://127.0.0.1:8099/other")
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"

    async def test_pkce_mismatch_is_invalid_grant(self, idp: IdP) -> None:
        _verifier, challenge = pkce_pair()
        other, _ = pkce_pair()
        async with httpx.AsyncClient() as browser:
            code = await _code(idp, browser, "mesh-cli", CLI_REDIRECT, challenge=challenge)
        resp = await self._exchange(idp, code, other)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"

    async def test_missing_verifier_is_invalid_request(self, idp: IdP) -> None:
        _verifier, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            code = await _code(idp, browser, "mesh-cli", CLI_REDIRECT, challenge=challenge)
        resp = await self._exchange(idp, code)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"

    async def test_public_client_without_pkce_is_refused_at_authorize(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            resp = await browser.get(
                f"{idp.issuer}/authorize",
                params={
                    "response_type": "code",
                    "client_id": "mesh-cli",
                    "redirect_uri": CLI_REDIRECT,
                    "scope": "openid",
                    "state": "s1",
                },
            )
        assert resp.status_code == 302
        query = parse_qs(urlsplit(resp.headers["location"]).query)
        assert query["error"] == ["invalid_request"] and query["state"] == ["s1"]

    async def test_unregistered_redirect_uri_is_not_redirected_to(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            resp = await browser.get(
                f"{idp.issuer}/authorize",
                params={
                    "response_type": "code",
                    "client_id": "mesh-cli",
                    "scope": "openid",
                    "redirect_uri": "http://evil.example/cb",
                    "state": "s1",
                },
            )
        assert resp.status_code == 400
        assert "evil.example" not in resp.headers.get("location", "")

    async def test_prompt_none_without_session_is_login_required(self, idp: IdP) -> None:
        _v, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            resp = await browser.get(
                f"{idp.issuer}/authorize",
                params={
                    "response_type": "code",
                    "client_id": "mesh-cli",
                    "redirect_uri": CLI_REDIRECT,
                    "scope": "openid",
                    "state": "s1",
                    "prompt": "none",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
            )
        assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["login_required"]

    async def test_denied_consent_is_access_denied(self, idp: IdP) -> None:
        _v, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            params = {
                "response_type": "code",
                "client_id": "mesh-cli",
                "redirect_uri": CLI_REDIRECT,
                "scope": "openid forum:read",
                "state": "s1",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "prompt": "consent",
            }
            resp = await browser.get(f"{idp.issuer}/authorize", params=params)
            page = await browser.get(idp.url + resp.headers["location"])
            resp = await browser.post(
                f"{idp.issuer}/login",
                data={**_hidden(page.text), "username": "felix", "password": PASSWORD},
            )
            resp = await browser.get(idp.url + resp.headers["location"])
            assert 'name="decision"' in resp.text
            action = first_group(r'action="([^"]+)"', resp.text).replace("&amp;", "&")
            resp = await browser.post(
                idp.url + action, data={**_hidden(resp.text), "decision": "deny"}
            )
        assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["access_denied"]

    async def test_consent_post_without_csrf_token_is_refused(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            resp = await browser.post(
                f"{idp.issuer}/authorize?client_id=mesh-cli", data={"decision": "allow"}
            )
        assert resp.status_code == 403


class TestEs256IdTokens:
    async def test_client_that_allows_es256_gets_es256_id_tokens(self, idp: IdP) -> None:
        olivia = (await idp.person_tokens("olivia"))["access_token"]
        created = await idp.http.post(
            f"{idp.issuer}/admin/clients",
            headers={"Authorization": f"Bearer {olivia}"},
            json={
                "client_id": "es-app",
                "name": "ES app",
                "partner": "acme-hq",
                "grant_types": ["authorization_code"],
                "scopes": ["openid", "profile"],
                "redirect_uris": ["http://127.0.0.1:8099/es"],
                "first_party": True,
                "id_token_alg": "ES256",
            },
        )
        assert created.status_code == 201, created.text
        async with httpx.AsyncClient() as browser:
            code = await _code(
                idp, browser, "es-app", "http://127.0.0.1:8099/es", scope="openid profile"
            )
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://127.0.0.1:8099/es",
            },
            auth=("es-app", created.json()["client_secret"]),
        )
        body = resp.json()
        header = jwt.get_unverified_header(body["id_token"])
        assert header["alg"] == "ES256"
        jwks = (await idp.http.get(f"{idp.issuer}/jwks")).json()["keys"]
        key = jwt.PyJWK.from_dict(next(k for k in jwks if k["kid"] == header["kid"]))
        claims = jwt.decode(
            body["id_token"], key.key, ["ES256"], audience="es-app", issuer=idp.issuer
        )
        assert claims["name"] == "Noah Nguyen"
        # the access token follows the ecosystem's algorithm, not the client's ID-token choice
        assert jwt.get_unverified_header(body["access_token"])["alg"] == "ES256"

    async def test_unknown_id_token_alg_is_refused(self, idp: IdP) -> None:
        olivia = (await idp.person_tokens("olivia"))["access_token"]
        resp = await idp.http.post(
            f"{idp.issuer}/admin/clients",
            headers={"Authorization": f"Bearer {olivia}"},
            json={"client_id": "hs-app", "name": "x", "id_token_alg": "HS256"},
        )
        assert resp.status_code == 422


class TestExpiryAndMaxAge:
    async def test_expired_code_is_invalid_grant(self, idp: IdP) -> None:
        verifier, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            code = await _code(idp, browser, "mesh-cli", CLI_REDIRECT, challenge=challenge)
        # let the code's lifetime pass, as the clock would
        db = Database(idp.settings.database_url, models.metadata)
        try:
            async with db.transaction() as s:
                await s.execute(
                    update(models.AuthCode)
                    .where(models.AuthCode.code_hash == digest(code))
                    .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
                )
        finally:
            await db.dispose()
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CLI_REDIRECT,
                "client_id": "mesh-cli",
                "code_verifier": verifier,
            },
        )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"

    async def test_max_age_zero_forces_a_fresh_login(self, idp: IdP) -> None:
        _v, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": "mesh-cli",
            "redirect_uri": CLI_REDIRECT,
            "scope": "openid",
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        async with httpx.AsyncClient() as browser:
            await _code(idp, browser, "mesh-cli", CLI_REDIRECT, challenge=challenge)
            again = await browser.get(f"{idp.issuer}/authorize", params=params)
            assert again.status_code in (200, 302) and "/login" not in again.headers.get(
                "location", ""
            )
            stale = await browser.get(f"{idp.issuer}/authorize", params={**params, "max_age": "0"})
            assert stale.status_code == 302 and "/login" in stale.headers["location"]


class TestConfidentialClient:
    async def test_portal_code_flow_with_basic_auth(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            code = await _code(
                idp,
                browser,
                "portal",
                PORTAL_REDIRECT,
                username="chloe",
                scope="openid forum:read forum:write",
            )
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": PORTAL_REDIRECT,
            },
            auth=("portal", idp.secret("portal")),
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["scope"] == "forum:read forum:write openid"

    async def test_portal_code_with_wrong_secret_is_invalid_client(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            code = await _code(idp, browser, "portal", PORTAL_REDIRECT, username="chloe")
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": PORTAL_REDIRECT,
            },
            auth=("portal", "wrong"),
        )
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
