"""Native apps sign in as RFC 8252 says: authorization code + PKCE in the system browser, the
response on a loopback port the app picked at run time (or a claimed https redirect), tokens
bound to the app's DPoP key, and refresh tokens only that key can use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from identity.cli.seed import PASSWORD
from identity.domain.crypto import pkce_pair
from identity.oauth.redirects import redirect_allowed
from tests.identity.conftest import IdP
from tests.identity.test_authorization_code import _hidden
from tests.identity.test_dpop import claims_of, refresh
from tests.support.dpop import DPoPKey
from tests.support.text import first_group

APP = "acme-mobile"
CLAIMED = "https://app.example.com/callback"
REGISTERED = ["http://127.0.0.1/callback", "http://[::1]/callback", CLAIMED]


@pytest.fixture(scope="module")
async def operator(idp: IdP) -> dict[str, str]:
    """An operator's Authorization header for the admin API."""
    token = (await idp.person_tokens("olivia"))["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def native_app(idp: IdP, operator: dict[str, str]) -> str:
    """The app as its operator registers it (README, "Signing in from a native app")."""
    resp = await idp.http.post(
        f"{idp.issuer}/admin/clients",
        headers=operator,
        json={
            "client_id": APP,
            "name": "Acme mobile",
            "application_type": "native",
            "auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scopes": ["openid", "profile", "profile:read", "directory:read"],
            "redirect_uris": REGISTERED,
            "dpop_bound_access_tokens": True,
        },
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["application_type"] == "native" and resp.json()["client_secret"] is None
    return APP


class LoopbackListener:
    """What the app runs while the user signs in: one HTTP request on 127.0.0.1:<any port>."""

    def __init__(self) -> None:
        self.received: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> LoopbackListener:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        if not self.received.done():
            self.received.set_result(line.split()[1])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\nSigned in: back to the app.")
        await writer.drain()
        writer.close()


async def sign_in(idp: IdP, redirect_uri: str, key: DPoPKey, browser: httpx.AsyncClient) -> str:
    """The system browser: authorize (PKCE S256, dpop_jkt), log in, consent, follow the
    redirect to the app. Returns the PKCE verifier; the code reaches the app's listener."""
    verifier, challenge = pkce_pair()
    resp = await browser.get(
        f"{idp.issuer}/authorize",
        params={
            "response_type": "code",
            "client_id": APP,
            "redirect_uri": redirect_uri,
            "scope": "openid profile:read directory:read",
            "state": "st-1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "dpop_jkt": key.jkt,
        },
    )
    assert resp.status_code == 302 and "/login" in resp.headers["location"], resp.text
    page = await browser.get(idp.url + resp.headers["location"])
    resp = await browser.post(
        f"{idp.issuer}/login",
        data={**_hidden(page.text), "username": "nadia", "password": PASSWORD},
    )
    assert resp.status_code == 303, resp.text
    resp = await browser.get(idp.url + resp.headers["location"])
    if resp.status_code == 200 and 'name="decision"' in resp.text:
        action = first_group(r'action="([^"]+)"', resp.text).replace("&amp;", "&")
        resp = await browser.post(
            idp.url + action, data={**_hidden(resp.text), "decision": "allow"}
        )
    assert resp.status_code == 302, resp.text[-300:]
    assert resp.headers["location"].startswith(redirect_uri + "?")
    landed = await browser.get(resp.headers["location"])  # the browser lands on the app
    assert landed.status_code == 200
    return verifier


async def redeem(
    idp: IdP, code: str, verifier: str, redirect_uri: str, key: DPoPKey | None
) -> httpx.Response:
    url = f"{idp.issuer}/token"
    return await idp.http.post(
        url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "client_id": APP,
            "code_verifier": verifier,
        },
        headers={"DPoP": key.proof("POST", url)} if key else {},
    )


@pytest.fixture
async def signed_in(
    idp: IdP, native_app: str
) -> AsyncIterator[tuple[DPoPKey, dict[str, Any], str]]:
    """A whole sign-in of the app on a fresh loopback port: (key, token reply, redirect)."""
    key = DPoPKey()
    async with LoopbackListener() as app, httpx.AsyncClient(timeout=10) as browser:
        verifier = await sign_in(idp, app.redirect_uri, key, browser)
        query = parse_qs(urlsplit(await asyncio.wait_for(app.received, 10)).query)
        assert query["state"] == ["st-1"]
        resp = await redeem(idp, query["code"][0], verifier, app.redirect_uri, key)
        assert resp.status_code == 200, resp.text
        yield key, resp.json(), app.redirect_uri


class TestNativeSignIn:
    async def test_loopback_code_pkce_dpop_end_to_end(
        self, idp: IdP, signed_in: tuple[DPoPKey, dict[str, Any], str]
    ) -> None:
        key, tokens, _ = signed_in
        assert tokens["token_type"] == "DPoP"
        claims = claims_of(tokens["access_token"])
        assert claims["client_id"] == APP and claims["cnf"] == {"jkt": key.jkt}
        assert claims["partner"] == "northwind"
        url = f"{idp.issuer}/userinfo"
        who = await idp.http.get(url, headers=key.headers("GET", url, tokens["access_token"]))
        assert who.status_code == 200 and who.json()["partner"] == "northwind"
        # The refresh token is the app's key's alone.
        stolen = await refresh(idp, tokens["refresh_token"], DPoPKey(), client=APP)
        assert stolen.status_code == 400 and "access_token" not in stolen.json()
        bare = await refresh(idp, tokens["refresh_token"], None, client=APP)
        assert bare.status_code == 400 and "access_token" not in bare.json()
        again = await refresh(idp, tokens["refresh_token"], key, client=APP)
        assert again.status_code == 200, again.text
        assert claims_of(again.json()["access_token"])["cnf"] == {"jkt": key.jkt}
        assert again.json()["refresh_token"] != tokens["refresh_token"]  # rotated

    async def test_each_sign_in_may_use_another_port(self, idp: IdP, native_app: str) -> None:
        ports = set()
        for _ in range(2):
            async with LoopbackListener() as app:
                ports.add(app.port)
                resp = await idp.http.get(
                    f"{idp.issuer}/authorize", params=_authorize(app.redirect_uri)
                )
                assert resp.status_code == 302 and "/login" in resp.headers["location"]
        assert len(ports) == 2

    async def test_ipv6_loopback_and_claimed_https_redirects(
        self, idp: IdP, native_app: str
    ) -> None:
        for uri in ("http://[::1]:49152/callback", CLAIMED):
            resp = await idp.http.get(f"{idp.issuer}/authorize", params=_authorize(uri))
            assert resp.status_code == 302 and "/login" in resp.headers["location"], uri

    async def test_code_redeemed_with_another_redirect_is_invalid_grant(
        self, idp: IdP, native_app: str
    ) -> None:
        key = DPoPKey()
        async with LoopbackListener() as app, httpx.AsyncClient(timeout=10) as browser:
            verifier = await sign_in(idp, app.redirect_uri, key, browser)
            code = parse_qs(urlsplit(await asyncio.wait_for(app.received, 10)).query)["code"][0]
        other_port = f"http://127.0.0.1:{app.port + 1}/callback"
        resp = await redeem(idp, code, verifier, other_port, key)
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"

    async def test_code_redeemed_without_a_proof_gives_no_token(
        self, idp: IdP, native_app: str
    ) -> None:
        key = DPoPKey()
        async with LoopbackListener() as app, httpx.AsyncClient(timeout=10) as browser:
            verifier = await sign_in(idp, app.redirect_uri, key, browser)
            code = parse_qs(urlsplit(await asyncio.wait_for(app.received, 10)).query)["code"][0]
        resp = await redeem(idp, code, verifier, app.redirect_uri, None)
        assert resp.status_code == 400 and "access_token" not in resp.json()


def _authorize(redirect_uri: str, client_id: str = APP) -> dict[str, str]:
    _verifier, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid profile:read",
        "state": "st-2",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


REFUSED = [
    "http://localhost:50000/callback",  # a name, not the loopback IP (RFC 8252 §8.3)
    "http://127.0.0.2:50000/callback",  # another address
    "http://127.0.0.1:50000/other",  # another path
    "http://127.0.0.1:50000/callback?x=1",  # another query
    "https://127.0.0.1:50000/callback",  # https loopback is not what was registered
    "http://evil@127.0.0.1:50000/callback",  # user info
    "http://127.0.0.1:50000/callback#f",  # a fragment
    "http://127.0.0.1:99999/callback",  # no such port
    "https://app.example.com:8443/callback",  # a claimed https redirect matches exactly
    "https://app.example.com/callback/x",
]


class TestRedirectDenials:
    @pytest.mark.parametrize("uri", REFUSED)
    async def test_native_app_cannot_stretch_its_redirects(
        self, idp: IdP, native_app: str, uri: str
    ) -> None:
        resp = await idp.http.get(f"{idp.issuer}/authorize", params=_authorize(uri))
        assert resp.status_code == 400, resp.text
        assert "location" not in resp.headers

    async def test_web_client_loopback_redirect_keeps_its_port(self, idp: IdP) -> None:
        """mesh-cli is registered as a web client with http://127.0.0.1:8099/callback."""
        resp = await idp.http.get(
            f"{idp.issuer}/authorize",
            params=_authorize("http://127.0.0.1:8100/callback", "mesh-cli"),
        )
        assert resp.status_code == 400 and "location" not in resp.headers
        exact = await idp.http.get(
            f"{idp.issuer}/authorize",
            params=_authorize("http://127.0.0.1:8099/callback", "mesh-cli"),
        )
        assert exact.status_code == 302

    @pytest.mark.parametrize(
        "fields",
        [
            {"application_type": "native", "auth_method": "client_secret_basic"},
            {"application_type": "desktop", "auth_method": "none"},
        ],
    )
    async def test_registration_refuses_confidential_native_apps_and_unknown_types(
        self, idp: IdP, operator: dict[str, str], fields: dict[str, str]
    ) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/admin/clients",
            headers=operator,
            json={
                "client_id": "bad-app",
                "name": "Bad app",
                "grant_types": ["authorization_code"],
                "scopes": ["openid"],
                "redirect_uris": ["http://127.0.0.1/callback"],
                **fields,
            },
        )
        assert resp.status_code in (400, 422), resp.text
        listed = await idp.http.get(f"{idp.issuer}/admin/clients", headers=operator)
        assert "bad-app" not in {c["client_id"] for c in listed.json()}


class TestRedirectRule:
    """The rule itself, as a table."""

    @pytest.mark.parametrize(
        ("requested", "native", "allowed"),
        [
            ("http://127.0.0.1:1234/callback", True, True),
            ("http://127.0.0.1/callback", True, True),
            ("http://[::1]:1234/callback", True, True),
            ("http://127.0.0.1:1234/callback", False, False),
            ("http://127.0.0.1/callback", False, True),  # exact
            ("http://localhost:1234/callback", True, False),
            ("http://[::1]:1234/other", True, False),
            ("http://127.0.0.1:0x10/callback", True, False),
            ("http://127.1:1234/callback", True, False),
        ],
    )
    def test_table(self, requested: str, native: bool, allowed: bool) -> None:
        registered = ["http://127.0.0.1/callback", "http://[::1]/callback"]
        assert redirect_allowed(requested, registered, native=native) is allowed
