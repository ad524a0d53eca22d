"""What a strict relying party (panva's openid-client / oauth4webapi) checks of the
provider, through its real endpoints: fresh logins for ``max_age`` and ``prompt=login``
that end, ``sid`` in ID tokens, discovery that says exactly what is served, ``iss`` on
every authorization response (RFC 9207), ``response_mode=form_post``, refusals of what is
not served (``fragment``, other token types), and userinfo's bare challenge."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import update

from identity.cli.seed import PASSWORD
from identity.store import models
from mesh.db import Database
from tests.identity.conftest import PORTAL_REDIRECT, IdP
from tests.support.text import first_group

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
TOKEN_TYPE = "urn:ietf:params:oauth:token-type:"


def _hidden(html: str) -> dict[str, str]:
    """The hidden fields of a page's form, as a browser would submit them."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return {k: unescape(v) for k, v in found}


class Browser:
    """A person's browser at the provider: follows its pages, counts the sign-ins."""

    def __init__(self, idp: Any, http: httpx.AsyncClient, username: str = "chloe") -> None:
        self.idp, self.http, self.username = idp, http, username
        self.logins = 0
        self.last_return: str | None = None  # where the last sign-in sent the browser

    async def authorize(self, **params: str) -> httpx.Response:
        """From the authorization request to the provider's answer to the client: a
        redirect away from the provider, a form_post page or an error page."""
        query = {
            "response_type": "code",
            "client_id": "portal",
            "redirect_uri": PORTAL_REDIRECT,
            "scope": "openid profile",
            "state": "st",
            **params,
        }
        resp = await self.http.get(f"{self.idp.issuer}/authorize", params=query)
        return await self.follow(resp)

    async def follow(self, resp: httpx.Response) -> httpx.Response:
        for _ in range(8):  # a provider that loops never gets there
            location = resp.headers.get("location", "")
            if resp.status_code in (302, 303) and location.startswith("/eco/"):
                if location.startswith(f"/eco/{self.idp.eco}/login"):
                    resp = await self.sign_in(location)
                else:
                    resp = await self.http.get(self.idp.url + location)
                continue
            return resp
        raise AssertionError("the provider keeps sending the browser round")

    async def sign_in(self, login_location: str) -> httpx.Response:
        page = await self.http.get(self.idp.url + login_location)
        form = {**_hidden(page.text), "username": self.username, "password": PASSWORD}
        resp = await self.http.post(f"{self.idp.issuer}/login", data=form)
        assert resp.status_code == 303, resp.text
        self.logins += 1
        self.last_return = resp.headers["location"]
        return resp


def response_params(resp: httpx.Response) -> dict[str, str]:
    """The authorization response's parameters, from a query redirect to the client."""
    assert resp.status_code == 302, resp.text[-300:]
    location = resp.headers["location"]
    assert location.startswith(PORTAL_REDIRECT + "?"), location
    pairs = parse_qsl(urlsplit(location).query)
    assert len(pairs) == len(dict(pairs)), "a parameter repeated"
    return dict(pairs)


async def redeem(idp: Any, code: str) -> dict[str, Any]:
    resp = await idp.http.post(
        f"{idp.issuer}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": PORTAL_REDIRECT},
        auth=("portal", idp.secret("portal")),
    )
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def id_claims(tokens: dict[str, Any]) -> dict[str, Any]:
    return dict(jwt.decode(tokens["id_token"], options={"verify_signature": False}))


async def age_sessions(idp: Any, seconds: int) -> None:
    """Make every sign-in session look ``seconds`` older, as a slow machine would."""
    db = Database(idp.settings.database_url, models.metadata)
    try:
        async with db.transaction() as s:
            await s.execute(
                update(models.LoginSession).values(
                    auth_time=models.LoginSession.auth_time - seconds
                )
            )
    finally:
        await db.dispose()


@pytest.fixture
async def person(idp: IdP) -> AsyncIterator[Browser]:
    """A fresh browser (no cookies) of chloe's."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield Browser(idp, http)


@pytest.fixture
async def signed_in(person: Browser) -> Browser:
    """chloe's browser, signed in once already."""
    response_params(await person.authorize())
    assert person.logins == 1
    return person


class TestFreshLogin:
    @pytest.mark.parametrize("ask", [{"max_age": "0"}, {"prompt": "login"}])
    async def test_a_fresh_login_gives_a_code_once(
        self, idp: IdP, signed_in: Browser, ask: dict[str, str]
    ) -> None:
        before = int(time.time())
        params = response_params(await signed_in.authorize(**ask))
        assert signed_in.logins == 2  # signed in again, once, and got a code
        claims = id_claims(await redeem(idp, params["code"]))
        assert claims["auth_time"] >= before
        # the same request again (the sign-in's return address): a new sign-in, not a code
        assert signed_in.last_return is not None
        replay = await signed_in.http.get(idp.url + signed_in.last_return)
        assert replay.status_code == 302
        assert replay.headers["location"].startswith(f"/eco/{idp.eco}/login")

    async def test_max_age_1_ends_even_when_the_sign_in_took_longer(
        self, idp: IdP, signed_in: Browser
    ) -> None:
        await age_sessions(idp, 5)  # the session is older than max_age
        resp = await signed_in.http.get(
            f"{idp.issuer}/authorize",
            params={
                "response_type": "code",
                "client_id": "portal",
                "redirect_uri": PORTAL_REDIRECT,
                "scope": "openid",
                "state": "st",
                "max_age": "1",
            },
        )
        location = resp.headers["location"]
        assert location.startswith(f"/eco/{idp.eco}/login")
        back = await signed_in.sign_in(location)
        await age_sessions(idp, 5)  # and the sign-in itself took longer than max_age
        params = response_params(await signed_in.follow(back))
        assert params["code"] and signed_in.logins == 2

    async def test_a_max_age_that_is_no_number_asks_nothing(
        self, idp: IdP, signed_in: Browser
    ) -> None:
        for max_age in ("²", "-1", "1e3", ""):
            params = response_params(await signed_in.authorize(max_age=max_age))
            assert params["code"] and signed_in.logins == 1, max_age

    async def test_a_recent_enough_session_needs_no_sign_in(
        self, idp: IdP, signed_in: Browser
    ) -> None:
        params = response_params(await signed_in.authorize(max_age="3600"))
        assert params["code"] and signed_in.logins == 1

    async def test_a_stale_session_with_prompt_none_is_login_required(
        self, idp: IdP, signed_in: Browser
    ) -> None:
        params = response_params(await signed_in.authorize(max_age="0", prompt="none"))
        assert params["error"] == "login_required" and params["iss"] == idp.issuer
        assert params["state"] == "st" and signed_in.logins == 1

    async def test_another_browser_cannot_use_a_sign_in_made_elsewhere(
        self, idp: IdP, signed_in: Browser
    ) -> None:
        await signed_in.authorize(prompt="login")
        async with httpx.AsyncClient(timeout=10) as other_http:
            other = Browser(idp, other_http)
            response_params(await other.authorize())  # signed in on its own
            assert signed_in.last_return is not None
            resp = await other_http.get(idp.url + signed_in.last_return)
        assert resp.headers["location"].startswith(f"/eco/{idp.eco}/login")


class TestSessionId:
    async def test_id_tokens_name_the_session_also_after_refresh(
        self, idp: IdP, signed_in: Browser
    ) -> None:
        tokens = await redeem(idp, response_params(await signed_in.authorize())["code"])
        first = id_claims(tokens)
        assert re.fullmatch(r"[0-9a-f]{16}", first["sid"])
        refreshed = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=("portal", idp.secret("portal")),
        )
        assert refreshed.status_code == 200, refreshed.text
        again = id_claims(refreshed.json())
        assert again["sid"] == first["sid"] and again["auth_time"] == first["auth_time"]
        assert again["sub"] == first["sub"] and again["aud"] == "portal" and "nonce" not in again
        async with httpx.AsyncClient(timeout=10) as other_http:
            other = Browser(idp, other_http)
            other_tokens = await redeem(idp, response_params(await other.authorize())["code"])
        assert id_claims(other_tokens)["sid"] != first["sid"]


class TestDiscovery:
    async def test_says_exactly_what_is_served(self, idp: IdP) -> None:
        meta = (await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")).json()
        every = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
        every.append("client_secret_jwt")
        assert meta["token_endpoint_auth_methods_supported"] == [*every, "none"]
        assert meta["introspection_endpoint_auth_methods_supported"] == every
        assert meta["revocation_endpoint_auth_methods_supported"] == [*every, "none"]
        assert "HS256" in meta["token_endpoint_auth_signing_alg_values_supported"]
        assert {"azp", "at_hash", "sid", "auth_time", "nonce"} <= set(meta["claims_supported"])
        assert meta["response_modes_supported"] == ["query", "form_post"]
        assert meta["authorization_response_iss_parameter_supported"] is True
        assert meta["pushed_authorization_request_endpoint"] == f"{idp.issuer}/par"
        assert meta["require_pushed_authorization_requests"] is False

    async def test_every_claim_of_an_id_token_is_advertised(
        self, idp: IdP, signed_in: Browser
    ) -> None:
        meta = (await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")).json()
        params = response_params(await signed_in.authorize(nonce="n1"))
        claims = id_claims(await redeem(idp, params["code"]))
        assert set(claims) <= set(meta["claims_supported"]), set(claims) - set(
            meta["claims_supported"]
        )

    @pytest.mark.parametrize("mode", ["fragment", "web_message", "query.jwt"])
    async def test_a_response_mode_not_served_is_refused(
        self, idp: IdP, signed_in: Browser, mode: str
    ) -> None:
        params = response_params(await signed_in.authorize(response_mode=mode))
        assert params["error"] == "invalid_request" and "code" not in params
        assert mode in params["error_description"] and params["iss"] == idp.issuer

    async def test_a_hostile_response_mode_is_refused_without_echo(
        self, idp: IdP, signed_in: Browser
    ) -> None:
        params = response_params(await signed_in.authorize(response_mode='x"\\§'))
        assert params["error"] == "invalid_request" and "§" not in params["error_description"]


class TestIssuerInResponses:
    async def test_success_and_errors_name_the_issuer(self, idp: IdP, signed_in: Browser) -> None:
        ok = response_params(await signed_in.authorize())
        assert ok["iss"] == idp.issuer and ok["code"] and ok["state"] == "st"
        bad_scope = response_params(await signed_in.authorize(scope="openid launch:missiles"))
        assert bad_scope["error"] == "invalid_scope" and bad_scope["iss"] == idp.issuer

    async def test_an_error_before_sign_in_names_the_issuer(
        self, idp: IdP, person: Browser
    ) -> None:
        params = response_params(await person.authorize(prompt="none"))
        assert params == {
            "error": "login_required",
            "state": "st",
            "iss": idp.issuer,
            **{k: v for k, v in params.items() if k == "error_description"},
        }


def _form_post(resp: httpx.Response) -> tuple[str, dict[str, str]]:
    """The target and fields of a form_post page, after checking that its one script
    runs under its own CSP (nonce) and that it works without scripts too."""
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    nonce = first_group(r"script-src 'nonce-([^']+)'", csp)
    scripts = re.findall(r"<script([^>]*)>", resp.text)
    assert scripts == [f' nonce="{nonce}"'], scripts
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert re.search(r"<noscript>.*<button type=\"submit\">", resp.text, re.S)
    assert resp.headers["cache-control"] == "no-store"
    action = unescape(first_group(r'<form method="post" action="([^"]+)"', resp.text))
    return action, _hidden(resp.text)


class TestFormPost:
    async def test_a_code_is_posted_to_the_client(self, idp: IdP, signed_in: Browser) -> None:
        resp = await signed_in.authorize(response_mode="form_post", state="a&b<c>")
        action, fields = _form_post(resp)
        assert action == PORTAL_REDIRECT
        assert set(fields) == {"code", "state", "iss"}
        assert fields["state"] == "a&b<c>" and fields["iss"] == idp.issuer
        assert (await redeem(idp, fields["code"]))["access_token"]

    async def test_an_error_is_posted_too(self, idp: IdP, person: Browser) -> None:
        action, fields = _form_post(
            await person.authorize(response_mode="form_post", prompt="none")
        )
        assert action == PORTAL_REDIRECT
        assert fields["error"] == "login_required" and fields["iss"] == idp.issuer

    async def test_chromium_posts_it_under_the_csp(self, idp: IdP, browser: Any) -> None:
        """A real browser signs in, runs the page's one script and posts to the client."""
        posted: list[tuple[str, str]] = []
        refused: list[str] = []
        page = await browser.new_page()
        try:
            page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)

            async def client(route: Any) -> None:
                posted.append((route.request.method, route.request.post_data or ""))
                await route.fulfill(status=200, body="ok")

            await page.route(PORTAL_REDIRECT, client)
            query = {
                "response_type": "code",
                "client_id": "portal",
                "redirect_uri": PORTAL_REDIRECT,
                "scope": "openid",
                "state": "st",
                "response_mode": "form_post",
            }
            await page.goto(str(httpx.URL(f"{idp.issuer}/authorize", params=query)))
            await page.fill("input[name=username]", "chloe")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(PORTAL_REDIRECT, timeout=10_000)
        finally:
            await page.context.close()
        assert [method for method, _ in posted] == ["POST"]
        fields = parse_qs(posted[0][1])
        assert fields["iss"] == [idp.issuer] and fields["state"] == ["st"] and fields["code"]
        assert not refused, refused


@pytest.fixture(scope="module")
async def subject_token(idp: IdP) -> str:
    """A person's access token (mesh-cli) that the portal may exchange."""
    return str((await idp.person_tokens("chloe", "openid profile:read"))["access_token"])


class TestTokenExchangeTypes:
    async def _exchange(self, idp: IdP, subject: str, **extra: str) -> httpx.Response:
        return await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": EXCHANGE,
                "subject_token": subject,
                "subject_token_type": TOKEN_TYPE + "access_token",
                **extra,
            },
            auth=("portal", idp.secret("portal")),
        )

    @pytest.mark.parametrize("kind", ["refresh_token", "id_token", "jwt", "saml2"])
    async def test_a_token_type_not_issued_here_is_refused(
        self, idp: IdP, subject_token: str, kind: str
    ) -> None:
        resp = await self._exchange(idp, subject_token, requested_token_type=TOKEN_TYPE + kind)
        assert resp.status_code == 400
        assert resp.json()["error"] == "invalid_request"
        assert kind in resp.json()["error_description"]

    async def test_a_hostile_token_type_is_refused_without_echo(
        self, idp: IdP, subject_token: str
    ) -> None:
        resp = await self._exchange(idp, subject_token, requested_token_type='"§\\')
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
        assert "§" not in resp.json()["error_description"]

    async def test_an_access_token_is_issued_when_asked_for(
        self, idp: IdP, subject_token: str
    ) -> None:
        resp = await self._exchange(
            idp, subject_token, requested_token_type=TOKEN_TYPE + "access_token"
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["issued_token_type"] == TOKEN_TYPE + "access_token"
        assert "refresh_token" not in resp.json()


class TestUserinfoChallenge:
    async def test_no_credentials_get_a_bare_challenge(self, idp: IdP) -> None:
        for method in ("GET", "POST"):
            resp = await idp.http.request(method, f"{idp.issuer}/userinfo")
            assert resp.status_code == 401
            assert resp.headers["www-authenticate"] == f'Bearer realm="{idp.issuer}"'

    async def test_a_bad_token_gets_invalid_token(self, idp: IdP) -> None:
        resp = await idp.http.get(
            f"{idp.issuer}/userinfo", headers={"Authorization": "Bearer not.a.token"}
        )
        assert resp.status_code == 401
        challenge = resp.headers["www-authenticate"]
        assert challenge.startswith(f'Bearer realm="{idp.issuer}", error="invalid_token"')
