"""Identity brokering against a second running instance of this provider (the corporate IdP),
and claims-gated admission."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from identity.cli.seed import PASSWORD
from identity.domain.crypto import pkce_pair
from tests.identity.conftest import CLI_REDIRECT, IdP
from tests.support.identity import serve_idp, start_idp
from tests.support.text import first_group


def _hidden(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return {k: unescape(v) for k, v in found}


@pytest.fixture(scope="module")
async def corporate(
    nats_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
    idp_database: str,
) -> AsyncIterator[IdP]:
    """A second, independent provider instance playing a partner company's corporate IdP
    (one per database engine of the provider under test)."""
    db = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('corp') / 'corp.db'}"
    settings, creds, app = await start_idp(nats_url, db, tmp_path_factory.mktemp("cw"), demo_hashes)
    async with serve_idp(app, settings.port) as url, httpx.AsyncClient(timeout=10) as http:
        yield IdP(url, settings, creds, http)


async def _admin(idp: IdP, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return await idp.http.request(
        method, f"{idp.issuer}/admin{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture(scope="module")
async def federation(idp: IdP, corporate: IdP) -> str:
    """The corporate IdP knows our callback as a client; we know it as an upstream."""
    corp_admin = (await corporate.person_tokens("olivia"))["access_token"]
    callback_base = f"{idp.issuer}/broker"
    for alias in ("corp", "club"):
        client = await _admin(
            corporate,
            corp_admin,
            "POST",
            "/clients",
            {
                "client_id": f"mesh-{alias}",
                "name": "partnermesh",
                "auth_method": "client_secret_basic",
                "grant_types": ["authorization_code"],
                "scopes": ["openid", "profile", "email"],
                "redirect_uris": [f"{callback_base}/{alias}/callback"],
                "first_party": True,
            },
        )
        assert client.status_code == 201, client.text
        admin = (await idp.person_tokens("olivia"))["access_token"]
        mapping = (
            {
                "partner": "northwind",
                "roles": {
                    "claim": "roles",
                    "map": {"partner_admin": "partner_admin"},
                    "default": ["member"],
                },
            }
            if alias == "corp"
            else {
                "partner": {
                    "claim": "partner",
                    "map": {"contoso": "contoso", "northwind": "northwind"},
                }
            }
        )
        up = await _admin(
            idp,
            admin,
            "POST",
            "/upstreams",
            {
                "alias": alias,
                "name": f"{alias} SSO",
                "issuer": corporate.issuer,
                "client_id": f"mesh-{alias}",
                "client_secret": client.json()["client_secret"],
                "mapping": mapping,
            },
        )
        assert up.status_code == 201, up.text
    return str(admin)


async def _broker_login(
    idp: IdP, corporate: IdP, browser: httpx.AsyncClient, alias: str, username: str
) -> httpx.Response:
    """Through our login page's company button, the corporate login form, and back."""
    resp = await browser.get(
        f"{idp.issuer}/broker/{alias}/start", params={"return_to": f"/eco/{idp.eco}/account"}
    )
    assert resp.status_code == 302 and resp.headers["location"].startswith(corporate.issuer)
    resp = await browser.get(resp.headers["location"])
    page = await browser.get(corporate.url + resp.headers["location"])
    resp = await browser.post(
        f"{corporate.issuer}/login",
        data={**_hidden(page.text), "username": username, "password": PASSWORD},
    )
    resp = await browser.get(corporate.url + resp.headers["location"])
    assert resp.headers["location"].startswith(f"{idp.issuer}/broker/{alias}/callback")
    return await browser.get(resp.headers["location"])


async def _mesh_cli_token(idp: IdP, browser: httpx.AsyncClient) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    resp = await browser.get(
        f"{idp.issuer}/authorize",
        params={
            "response_type": "code",
            "client_id": "mesh-cli",
            "redirect_uri": CLI_REDIRECT,
            "scope": "openid profile:read",
            "state": "x",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    if resp.status_code == 200:  # consent
        action = first_group(r'action="([^"]+)"', resp.text).replace("&amp;", "&")
        resp = await browser.post(
            idp.url + action, data={**_hidden(resp.text), "decision": "allow"}
        )
    code = parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]
    token: dict[str, Any] = (
        await browser.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CLI_REDIRECT,
                "client_id": "mesh-cli",
                "code_verifier": verifier,
            },
        )
    ).json()
    return token


class TestBrokering:
    async def test_login_page_offers_the_company_provider(self, idp: IdP, federation: str) -> None:
        page = await idp.http.get(f"{idp.issuer}/login")
        assert "corp SSO" in page.text

    async def test_corporate_person_becomes_a_partner_member_with_mapped_roles(
        self, idp: IdP, corporate: IdP, federation: str
    ) -> None:
        async with httpx.AsyncClient() as browser:
            done = await _broker_login(idp, corporate, browser, "corp", "nadia")
            assert done.status_code == 303, done.text
            tokens = await _mesh_cli_token(idp, browser)
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        assert claims["iss"] == idp.issuer and claims["partner"] == "northwind"
        assert set(claims["roles"]) == {"partner_admin", "member"}
        people = (await _admin(idp, federation, "GET", "/people?partner=northwind")).json()
        assert "corp.nadia" in [p["username"] for p in people]

    async def test_forged_state_is_refused(self, idp: IdP, federation: str) -> None:
        async with httpx.AsyncClient() as browser:
            resp = await browser.get(
                f"{idp.issuer}/broker/corp/callback", params={"code": "x", "state": "forged"}
            )
        assert resp.status_code == 403

    async def test_unknown_upstream_is_404(self, idp: IdP, federation: str) -> None:
        assert (await idp.http.get(f"{idp.issuer}/broker/nope/start")).status_code == 404


class TestClaimsGatedAdmission:
    async def test_only_people_whose_claims_pass_the_rule_are_admitted(
        self, idp: IdP, corporate: IdP, federation: str
    ) -> None:
        resp = await _admin(
            idp,
            federation,
            "PUT",
            "/policy",
            {
                "membership_policy": "claims",
                "admission_rule": {"claim": "partner", "in": ["contoso"]},
            },
        )
        assert resp.status_code == 200, resp.text
        try:
            async with httpx.AsyncClient() as browser:
                refused = await _broker_login(idp, corporate, browser, "club", "noah")  # northwind
                assert refused.status_code == 403 and "admission" in refused.text
            async with httpx.AsyncClient() as browser:
                admitted = await _broker_login(idp, corporate, browser, "club", "chloe")  # contoso
                assert admitted.status_code == 303
                tokens = await _mesh_cli_token(idp, browser)
            claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
            assert claims["partner"] == "contoso" and claims["roles"] == ["member"]
            signup = await idp.http.get(f"{idp.issuer}/signup")
            assert signup.status_code == 403
        finally:
            await _admin(idp, federation, "PUT", "/policy", {"membership_policy": "invite"})

    async def test_policy_needs_a_rule(self, idp: IdP, federation: str) -> None:
        resp = await _admin(idp, federation, "PUT", "/policy", {"membership_policy": "claims"})
        assert resp.status_code == 422
