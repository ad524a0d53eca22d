"""Refresh tokens tied to the login session (offline_access only for clients registered
for it), and OpenID Connect Back-Channel Logout 1.0 end to end: a real identity posts
logout tokens to a real portal, which ends its sessions; the portal refuses logout tokens
it must not trust."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request, Response
from sqlalchemy import CursorResult, MetaData, text

from identity.cli import commands, seed
from identity.cli.devclient import _form, login
from identity.domain.crypto import Sealer
from identity.domain.sessions import BACKCHANNEL_EVENT
from mesh.db import Database
from portal.app import create_app as create_portal
from portal.settings import PortalSettings
from tests.identity.conftest import CLI_REDIRECT, IdP
from tests.support import infra
from tests.support.identity import refresh_grant

OFFLINE = "openid profile directory:read offline_access"


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    """Logout tokens may go to loopback (the portal and the test's RPs), picked up fast;
    expired sessions are ended within half a second."""
    return {
        "backchannel_allowed_networks": ["127.0.0.1"],
        "backchannel_poll_s": 0.2,
        "session_sweep_s": 0.5,
    }


async def _sql(database_url: str, statement: str, **params: Any) -> list[Any]:
    db = Database(database_url, MetaData())
    try:
        async with db.transaction() as s:
            result = await s.execute(text(statement), params)
            assert isinstance(result, CursorResult)  # a textual statement's result
            return list(result.all()) if result.returns_rows else []
    finally:
        await db.dispose()


async def _signed_in(idp: IdP, username: str, scope: str, client: str = "mesh-cli", **kw: Any):  # type: ignore[no-untyped-def]
    """A browser (cookies) signed in at identity, and the tokens its client got."""
    browser = httpx.AsyncClient(timeout=10)
    redirect = kw.pop("redirect_uri", CLI_REDIRECT)
    tokens = await login(
        browser, idp.issuer, client, username, seed.PASSWORD, redirect, scope, **kw
    )
    return browser, tokens


async def _logout_at_identity(idp: IdP, browser: httpx.AsyncClient) -> None:
    """The person signs out on identity's own logout page (no hint: the confirmation form)."""
    page = await browser.get(f"{idp.issuer}/logout")
    action, fields = _form(page.text)
    done = await browser.post(urljoin(str(page.url), action), data=fields)
    assert done.status_code == 200 and "signed out" in done.text


async def _eventually(check: Callable[[], Any], seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


class TestSessionRefresh:
    async def test_refresh_after_logout_is_refused(self, idp: IdP) -> None:
        browser, tokens = await _signed_in(idp, "noah", "openid directory:read")
        assert "offline_access" not in tokens["scope"].split()
        again = await refresh_grant(idp.http, idp.issuer, tokens["refresh_token"])
        assert again.status_code == 200, again.text
        await _logout_at_identity(idp, browser)
        after = await refresh_grant(idp.http, idp.issuer, again.json()["refresh_token"])
        assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
        # the access token issued with it is revoked as well
        seen = await idp.http.post(
            f"{idp.issuer}/introspect",
            data={"token": again.json()["access_token"]},
            auth=("northwind-backend", idp.secret("northwind-backend")),
        )
        assert seen.json() == {"active": False}
        await browser.aclose()

    async def test_refresh_after_session_expiry_is_refused(
        self, idp: IdP, idp_database: str
    ) -> None:
        browser, tokens = await _signed_in(idp, "chloe", "openid directory:read")
        sid = browser.cookies.get("pm_session")
        assert sid
        await _sql(
            idp_database,
            "UPDATE id_sessions SET expires_at = :past WHERE person_id = "
            "(SELECT id FROM id_people WHERE username = 'chloe')",
            past=_past(),
        )
        after = await refresh_grant(idp.http, idp.issuer, tokens["refresh_token"])
        assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
        await browser.aclose()

    async def test_offline_access_refresh_survives_logout(self, idp: IdP) -> None:
        browser, tokens = await _signed_in(idp, "felix", OFFLINE)
        assert "offline_access" in tokens["scope"].split()
        await _logout_at_identity(idp, browser)
        after = await refresh_grant(idp.http, idp.issuer, tokens["refresh_token"])
        assert after.status_code == 200, after.text
        assert "offline_access" in after.json()["scope"].split()
        await browser.aclose()

    async def test_consent_page_shows_offline_access(self, idp: IdP) -> None:
        async with httpx.AsyncClient(timeout=10, follow_redirects=True) as browser:
            page = await browser.get(
                f"{idp.issuer}/authorize",
                params={
                    "response_type": "code",
                    "client_id": "mesh-cli",
                    "redirect_uri": CLI_REDIRECT,
                    "scope": OFFLINE,
                    "state": "s",
                    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                    "code_challenge_method": "S256",
                },
            )
            action, fields = _form(page.text)
            consent = await browser.post(
                urljoin(str(page.url), action),
                data={**fields, "username": "bruno", "password": seed.PASSWORD},
            )
        assert 'name="decision"' in consent.text
        assert "<code>offline_access</code> (stays signed in after you sign out)" in consent.text

    async def test_client_not_registered_for_offline_access_does_not_get_it(self, idp: IdP) -> None:
        clients = await (await _operator(idp)).get(f"{idp.issuer}/admin/clients")
        portal = next(c for c in clients.json() if c["client_id"] == "portal")
        browser, tokens = await _signed_in(
            idp,
            "fatima",
            OFFLINE,
            client="portal",
            redirect_uri=portal["redirect_uris"][0],
            client_secret=idp.secret("portal"),
        )
        assert "offline_access" not in tokens["scope"].split()
        assert "directory:read" in tokens["scope"].split()
        await _logout_at_identity(idp, browser)
        after = await httpx.AsyncClient(timeout=10).post(
            f"{idp.issuer}/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=("portal", idp.secret("portal")),
        )
        assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
        await browser.aclose()


def _past() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(minutes=1)


# --- back-channel logout to a real portal --------------------------------------------


@pytest.fixture(scope="module")
async def portal(
    idp: IdP,
    idp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
) -> AsyncIterator[dict[str, Any]]:
    """The real portal on a free port; the demo seed moved to its address (redirect and
    back-channel logout URIs follow it, as under ``--port-offset``)."""
    port = infra.free_port()
    url = f"http://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("portal")
    sealer = Sealer(idp.settings.key_encryption_secret)
    await commands._with_db(idp.settings, seed.seed, sealer, demo_hashes, False, url)
    idp.rt.rows.forget("acme")
    database = f"sqlite+aiosqlite:///{workdir / 'portal.db'}"
    settings = PortalSettings(
        port=port,
        public_url=url,
        identity_url=idp.url,
        gateway_url="http://127.0.0.1:9",
        client_secret=idp.secret("portal"),
        database_url=database,
        environment="test",
    )
    async with infra.serve_app(create_portal(settings), port):
        yield {"url": url, "db": database, "secret": settings.client_secret}


async def _portal_sign_in(portal: dict[str, Any], username: str) -> httpx.AsyncClient:
    """A browser signed in to the portal through identity's login page."""
    browser = httpx.AsyncClient(timeout=10)
    page = await browser.get(f"{portal['url']}/auth/login", follow_redirects=True)
    action, fields = _form(page.text)
    resp = await browser.post(
        urljoin(str(page.url), action),
        data={**fields, "username": username, "password": seed.PASSWORD},
    )
    for _ in range(5):  # to the portal's callback, which opens the session
        location = resp.headers.get("location")
        if not location or urljoin(str(resp.url), location).startswith(f"{portal['url']}/"):
            break
        resp = await browser.get(urljoin(str(resp.url), location))
    callback = urljoin(str(resp.url), resp.headers["location"])
    assert callback.startswith(f"{portal['url']}/auth/callback"), callback
    assert "code" in parse_qs(urlsplit(callback).query)
    done = await browser.get(callback)
    assert done.status_code == 303, done.text[:300]
    return browser


async def _portal_sessions(portal: dict[str, Any], name: str) -> list[Any]:
    return await _sql(portal["db"], "SELECT idp_sid FROM portal_sessions WHERE name = :n", n=name)


class TestBackChannelLogout:
    async def test_discovery_advertises_it(self, idp: IdP) -> None:
        meta = (await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")).json()
        assert meta["backchannel_logout_supported"] is True
        assert meta["backchannel_logout_session_supported"] is True

    async def test_seed_follows_the_portal_address(self, idp: IdP, portal: dict[str, Any]) -> None:
        clients = await (await _operator(idp)).get(f"{idp.issuer}/admin/clients")
        row = next(c for c in clients.json() if c["client_id"] == "portal")
        assert row["backchannel_logout_uri"] == f"{portal['url']}/auth/backchannel-logout"
        assert row["backchannel_logout_session_required"] is True

    async def test_logout_at_identity_ends_the_portal_session(
        self, idp: IdP, portal: dict[str, Any]
    ) -> None:
        browser = await _portal_sign_in(portal, "noah")
        rows = await _portal_sessions(portal, "Noah Nguyen")
        assert len(rows) == 1 and rows[0][0]  # the session knows identity's sid
        await _logout_at_identity(idp, browser)
        gone = await _eventually(lambda: _none(_portal_sessions(portal, "Noah Nguyen")))
        assert gone, "the portal session outlived the logout at identity"
        await browser.aclose()

    async def test_an_expired_session_ends_the_portal_session(
        self, idp: IdP, idp_database: str, portal: dict[str, Any]
    ) -> None:
        browser = await _portal_sign_in(portal, "fatima")
        assert len(await _portal_sessions(portal, "Fatima Farouk")) == 1
        await _sql(
            idp_database,
            "UPDATE id_sessions SET expires_at = :past WHERE person_id = "
            "(SELECT id FROM id_people WHERE username = 'fatima')",
            past=_past(),
        )
        gone = await _eventually(lambda: _none(_portal_sessions(portal, "Fatima Farouk")))
        assert gone, "the portal session outlived the expired session at identity"
        await browser.aclose()

    async def test_disabling_a_person_ends_their_portal_session(
        self, idp: IdP, portal: dict[str, Any]
    ) -> None:
        browser = await _portal_sign_in(portal, "carlos")
        assert len(await _portal_sessions(portal, "Carlos Castillo")) == 1
        admin = await _operator(idp)
        people = (await admin.get(f"{idp.issuer}/admin/people")).json()
        carlos = next(p for p in people if p["username"] == "carlos")
        person_url = f"{idp.issuer}/admin/people/{carlos['id']}"
        resp = await admin.patch(person_url, json={"active": False})
        assert resp.status_code == 200
        gone = await _eventually(lambda: _none(_portal_sessions(portal, "Carlos Castillo")))
        assert gone, "the portal session outlived the person's disabling"
        await browser.aclose()


async def _none(rows: Any) -> bool:
    return not await rows


async def _operator(idp: IdP) -> httpx.AsyncClient:
    tokens = await idp.person_tokens("olivia", "openid admin")
    return httpx.AsyncClient(
        timeout=10, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )


# --- what the portal refuses -------------------------------------------------------------


@pytest.fixture(scope="module")
async def signer(idp: IdP) -> Any:
    """identity's own RS256 signing key (the portal trusts what it signs)."""
    return await idp.rt.tx(lambda tx: idp.rt.keys.signer(tx, "acme", "RS256"))


def _logout_token(signer: Any, idp: Any, **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": idp.issuer,
        "aud": "portal",
        "iat": now,
        "exp": now + 120,
        "jti": uuid.uuid4().hex,
        "sub": "nobody",
        "sid": "0123456789abcdef",
        "events": {BACKCHANNEL_EVENT: {}},
    }
    header = {"kid": signer.kid, "typ": changes.pop("typ", "logout+jwt")}
    key = changes.pop("key", signer.key)
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return jwt.encode(claims, key, "RS256", headers=header)


class TestPortalRefuses:
    async def _post(self, portal: dict[str, Any], token: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(
                f"{portal['url']}/auth/backchannel-logout", data={"logout_token": token}
            )

    async def test_a_valid_token_is_taken_once(
        self, idp: IdP, portal: dict[str, Any], signer: Any
    ) -> None:
        token = _logout_token(signer, idp)
        assert (await self._post(portal, token)).status_code == 200
        replay = await self._post(portal, token)
        assert replay.status_code == 400 and "replayed" in replay.json()["error_description"]

    @pytest.mark.parametrize(
        "changes",
        [
            {"key": rsa.generate_private_key(public_exponent=65537, key_size=2048)},  # forged
            {"exp": int(time.time()) - 120, "iat": int(time.time()) - 300},  # expired
            {"iat": int(time.time()) - 3600, "exp": int(time.time()) + 60},  # too old
            {"nonce": "n-0S6_WzA2Mj"},
            {"events": None},
            {"events": {"http://example.com/other": {}}},
            {"aud": "someone-else"},
            {"iss": "http://127.0.0.1:1/eco/acme"},
            {"jti": None},
            {"sub": None, "sid": None},
            {"typ": "JWT"},
        ],
        ids=[
            "forged",
            "expired",
            "too-old",
            "nonce",
            "no-events",
            "other-event",
            "aud",
            "iss",
            "no-jti",
            "no-sub-or-sid",
            "typ",
        ],
    )
    async def test_refused(
        self,
        idp: IdP,
        portal: dict[str, Any],
        signer: Any,
        changes: dict[str, Any] | dict[str, str] | dict[str, None] | dict[str, dict[str, Any]],
    ) -> None:
        resp = await self._post(portal, _logout_token(signer, idp, **dict(changes)))
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"

    async def test_no_token_and_garbage(self, portal: dict[str, Any]) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            url = f"{portal['url']}/auth/backchannel-logout"
            assert (await http.post(url, data={})).status_code == 400
            assert (await http.post(url, data={"logout_token": "a.b.c"})).status_code == 400


# --- delivery: what identity sends, retries, the egress guard ----------------------------


class Receiver:
    """A relying party's back-channel logout endpoint that fails its first ``fail`` calls."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.tokens: list[str] = []
        self.app = FastAPI()
        self.app.post("/bcl")(self.receive)

    async def receive(self, request: Request) -> Response:
        self.tokens.append(str((await request.form()).get("logout_token")))
        return Response(status_code=503 if len(self.tokens) <= self.fail else 200)


class TestDelivery:
    async def test_logout_token_retried_until_taken(self, idp: IdP) -> None:
        receiver = Receiver(fail=1)
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(infra.serve_app(receiver.app))
            admin = await _operator(idp)
            client = await admin.post(
                f"{idp.issuer}/admin/clients",
                json={
                    "client_id": "bcl-rp",
                    "name": "an RP",
                    "auth_method": "none",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "scopes": ["openid"],
                    "redirect_uris": [CLI_REDIRECT],
                    "backchannel_logout_uri": f"{url}/bcl",
                    "first_party": True,
                },
            )
            assert client.status_code == 201, client.text
            browser, tokens = await _signed_in(idp, "bruno", "openid", client="bcl-rp")
            id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
            await _logout_at_identity(idp, browser)
            assert await _eventually(lambda: _count(receiver, 2))
        first, second = receiver.tokens[:2]
        unverified: jwt.types.Options = {"verify_signature": False}
        assert (
            jwt.decode(first, options=unverified)["jti"]
            == jwt.decode(second, options=unverified)["jti"]
        )  # the same logout, retried
        header = jwt.get_unverified_header(second)
        claims = jwt.decode(second, options={"verify_signature": False})
        assert header["typ"] == "logout+jwt" and header["kid"]
        assert claims["events"] == {BACKCHANNEL_EVENT: {}} and "nonce" not in claims
        assert claims["sid"] == id_claims["sid"] and claims["sub"] == id_claims["sub"]
        assert claims["aud"] == "bcl-rp" and claims["iss"] == idp.issuer
        assert 0 < claims["exp"] - claims["iat"] <= 120
        await browser.aclose()

    async def test_private_addresses_are_never_called(self, idp: IdP, idp_database: str) -> None:
        admin = await _operator(idp)
        client = await admin.post(
            f"{idp.issuer}/admin/clients",
            json={
                "client_id": "bcl-metadata",
                "name": "points at cloud metadata",
                "auth_method": "none",
                "grant_types": ["authorization_code"],
                "scopes": ["openid"],
                "redirect_uris": [CLI_REDIRECT],
                "backchannel_logout_uri": "http://169.254.169.254/latest/meta-data",
                "first_party": True,
            },
        )
        assert client.status_code == 201, client.text
        browser, _tokens = await _signed_in(idp, "nadia", "openid", client="bcl-metadata")
        await _logout_at_identity(idp, browser)

        async def refused() -> bool:
            rows = await _sql(
                idp_database,
                "SELECT last_error FROM id_logout_deliveries WHERE client_id = 'bcl-metadata'",
            )
            return bool(rows) and "EgressRefused" in str(rows[0][0] or "")

        assert await _eventually(refused)
        await browser.aclose()

    async def test_a_bad_backchannel_uri_is_refused_at_registration(self, idp: IdP) -> None:
        admin = await _operator(idp)
        resp = await admin.post(
            f"{idp.issuer}/admin/clients",
            json={
                "client_id": "bcl-bad",
                "name": "bad",
                "auth_method": "none",
                "grant_types": ["authorization_code"],
                "scopes": ["openid"],
                "redirect_uris": [CLI_REDIRECT],
                "backchannel_logout_uri": "ftp://example.com/x#frag",
            },
        )
        assert resp.status_code == 422


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.tokens) >= n
