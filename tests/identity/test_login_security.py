"""Sign-in throttling and lockout, audit events on NATS, RP-initiated logout, sign-up policies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from nats.aio.client import Client
from sqlalchemy import Connection, event
from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext

from identity.cli.seed import PASSWORD
from identity.domain.crypto import pkce_pair
from tests.identity.conftest import PORTAL_REDIRECT, IdP
from tests.support.events import first_event
from tests.support.identity import refresh_grant


def _hidden(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return {k: unescape(v) for k, v in found}


async def _try_login(
    idp: IdP, browser: httpx.AsyncClient, username: str, password: str
) -> httpx.Response:
    page = await browser.get(f"{idp.issuer}/login")
    return await browser.post(
        f"{idp.issuer}/login",
        data={**_hidden(page.text), "username": username, "password": password},
    )


@contextlib.contextmanager
def provider_statements(idp: IdP) -> Iterator[list[str]]:
    """Every SQL statement on the provider's own tables (``id_…``) while the block runs,
    as the engine sends them. Background pollers are left out: the relay's outbox and the
    back-channel logout deliveries' queue (``id_logout_deliveries``), which its worker
    reads on its own schedule, whatever request is being served."""
    seen: list[str] = []

    def record(
        conn: Connection,
        cursor: DBAPICursor,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        if re.search(r"\bid_(?!logout_deliveries\b)\w+", statement):
            seen.append(statement)

    engine = idp.app.state.rt.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, object]:
    """The provider behind a reverse proxy on loopback: it names clients in X-Forwarded-For."""
    return {"trusted_proxies": ["127.0.0.1"]}


@pytest.fixture(scope="module")
async def olivia(idp: IdP) -> str:
    """An operator's access token (scope admin)."""
    return str((await idp.person_tokens("olivia"))["access_token"])


async def _admin(idp: IdP, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return await idp.http.request(
        method, f"{idp.issuer}/admin{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )


async def _events(nc: Client, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    """Identity events on the real JetStream stream until ``predicate`` matches one."""
    return await first_event(nc, "pm.v1.evt.acme.identity.>", predicate, "matching event", timeout)


class TestThrottling:
    async def test_account_locks_after_repeated_failures(self, idp: IdP, olivia: str) -> None:
        name = f"lock-{uuid.uuid4().hex[:6]}"
        await _admin(
            idp,
            olivia,
            "POST",
            "/people",
            {
                "username": name,
                "partner": "contoso",
                "name": "Lock Test",
                "password": "correct-horse-battery",
            },
        )
        async with httpx.AsyncClient() as browser:
            for _ in range(idp.settings.login_max_failures_account):
                resp = await _try_login(idp, browser, name, "wrong-password-here")
                assert resp.status_code == 401
            locked = await _try_login(idp, browser, name, "correct-horse-battery")
        assert locked.status_code == 429 and "Too many" in locked.text

    async def test_failures_at_once_are_all_counted_and_none_is_a_500(self, idp: IdP) -> None:
        name = f"race-{uuid.uuid4().hex[:6]}"
        limit = idp.settings.login_max_failures_account
        async with contextlib.AsyncExitStack() as stack:
            browsers = [
                await stack.enter_async_context(httpx.AsyncClient(timeout=10)) for _ in range(limit)
            ]
            answers = await asyncio.gather(
                *(_try_login(idp, b, name, "wrong-password-here") for b in browsers)
            )
            assert [a.status_code for a in answers] == [401] * limit
            locked = await _try_login(idp, browsers[0], name, "wrong-password-here")
        assert locked.status_code == 429

    async def test_the_proxy_names_the_address_in_audit_events(self, idp: IdP, nc: Client) -> None:
        ghost = f"proxied-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient(headers={"X-Forwarded-For": "192.0.2.44"}) as browser:
            await _try_login(idp, browser, ghost, "nope-nope-nope")
        failed = await _events(
            nc,
            lambda e: getattr(e.data, "action", None) == "login.failed" and e.data.target == ghost,
        )
        assert failed.data.details["ip"] == "192.0.2.44"

    async def test_address_locks_after_many_failures_across_accounts(self, idp: IdP) -> None:
        # the provider trusts X-Forwarded-For from its proxy (loopback, see idp_overrides)
        attacker = {"X-Forwarded-For": "203.0.113.77"}
        async with httpx.AsyncClient(headers=attacker) as browser:
            for i in range(idp.settings.login_max_failures_address):
                resp = await _try_login(idp, browser, f"guess-{i}", "wrong-password-here")
                assert resp.status_code == 401
            blocked = await _try_login(idp, browser, "noah", PASSWORD)
        assert blocked.status_code == 429
        async with httpx.AsyncClient(headers={"X-Forwarded-For": "198.51.100.5"}) as browser:
            other = await _try_login(idp, browser, "noah", PASSWORD)
        assert other.status_code == 303

    async def test_login_page_is_csrf_protected_and_runs_only_its_own_script(
        self, idp: IdP
    ) -> None:
        async with httpx.AsyncClient() as browser:
            page = await browser.get(f"{idp.issuer}/login")
            # one script, a file of this origin (passkeys); nothing inline may run
            assert re.findall(r"<script[^>]*>", page.text) == [
                '<script src="/static/passkeys.js" defer>'
            ]
            csp = page.headers["content-security-policy"]
            assert "script-src 'self';" in csp and "unsafe-inline" not in csp
            assert "default-src 'none'" in csp
            assert 'name="viewport"' in page.text and '<label for="username">' in page.text
            resp = await browser.post(
                f"{idp.issuer}/login",
                data={"username": "noah", "password": PASSWORD, "csrf_token": "forged"},
            )
        assert resp.status_code == 403


class TestLoginCsrf:
    """A sign-in form is checked for its CSRF token before anything is read."""

    @pytest.mark.parametrize("cookie", [True, False], ids=["forged-token", "no-csrf-cookie"])
    async def test_a_bad_token_is_refused_before_any_read(self, idp: IdP, cookie: bool) -> None:
        async with httpx.AsyncClient() as browser:
            if cookie:
                await browser.get(f"{idp.issuer}/login")
                assert browser.cookies.get("pm_csrf")
            with provider_statements(idp) as statements:
                resp = await browser.post(
                    f"{idp.issuer}/login",
                    data={"username": "noah", "password": PASSWORD, "csrf_token": "forged"},
                )
        assert resp.status_code == 403
        assert "The form expired; try again." in resp.text
        assert "pm_session" not in resp.cookies
        assert statements == [], statements

    async def test_the_reads_are_seen_when_the_token_is_good(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            page = await browser.get(f"{idp.issuer}/login")
            with provider_statements(idp) as statements:
                resp = await browser.post(
                    f"{idp.issuer}/login",
                    data={**_hidden(page.text), "username": "noah", "password": "not-it-at-all"},
                )
        assert resp.status_code == 401
        assert any("id_people" in s for s in statements), statements
        assert any("id_login_throttle" in s for s in statements), statements

    async def test_the_refusal_gives_a_form_that_signs_in(self, idp: IdP) -> None:
        async with httpx.AsyncClient() as browser:
            refused = await browser.post(
                f"{idp.issuer}/login",
                data={"username": "noah", "password": PASSWORD, "csrf_token": "forged"},
            )
            assert refused.status_code == 403
            fields = _hidden(refused.text)
            assert fields["return_to"] == f"/eco/{idp.eco}/account"
            assert 'value="noah"' in refused.text, "the username is kept"
            resp = await browser.post(
                f"{idp.issuer}/login",
                data={**fields, "username": "noah", "password": PASSWORD},
            )
        assert resp.status_code == 303
        assert resp.headers["location"] == f"/eco/{idp.eco}/account"
        assert resp.cookies.get("pm_session")

    async def test_an_unknown_ecosystem_is_still_not_found_with_a_good_token(
        self, idp: IdP
    ) -> None:
        async with httpx.AsyncClient() as browser:
            page = await browser.get(f"{idp.issuer}/login")
            resp = await browser.post(
                f"{idp.url}/eco/nowhere/login",
                data={**_hidden(page.text), "username": "noah", "password": PASSWORD},
            )
        assert resp.status_code == 404


class TestAudit:
    async def test_failed_login_and_issued_token_reach_nats(self, idp: IdP, nc: Client) -> None:
        ghost = f"ghost-{uuid.uuid4().hex[:8]}"
        async with httpx.AsyncClient() as browser:
            await _try_login(idp, browser, ghost, "nope-nope-nope")
        failed = await _events(
            nc,
            lambda e: (
                e.type == "pm.v1.identity.audit"
                and e.data.action == "login.failed"
                and e.data.target == ghost
            ),
        )
        assert failed.data.outcome == "failure"
        token = (await idp.cc("contoso-backend", "directory:read")).json()["access_token"]
        jti = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[1] + "=="))["jti"]
        issued = await _events(
            nc, lambda e: e.type == "pm.v1.identity.audit" and e.data.details.get("jti") == jti
        )
        assert issued.data.action == "token.issued" and issued.partner == "contoso"

    async def test_refresh_reuse_and_registration_events(
        self, idp: IdP, nc: Client, olivia: str
    ) -> None:
        slug = f"p{uuid.uuid4().hex[:8]}"
        await _admin(idp, olivia, "POST", "/partners", {"slug": slug, "name": "Evented"})
        registered = await _events(
            nc, lambda e: e.type == "pm.v1.identity.partner_registered" and e.data.partner == slug
        )
        assert registered.ecosystem == "acme"
        tokens = await idp.person_tokens("chloe")
        for _ in range(2):
            await refresh_grant(idp.http, idp.issuer, tokens["refresh_token"])
        reuse = await _events(
            nc,
            lambda e: (
                e.type == "pm.v1.identity.audit" and e.data.action == "refresh.reuse_detected"
            ),
        )
        assert reuse.data.outcome == "failure"


class TestLogout:
    async def test_rp_initiated_logout_ends_the_session(self, idp: IdP) -> None:
        verifier, challenge = pkce_pair()
        async with httpx.AsyncClient() as browser:
            params = {
                "response_type": "code",
                "client_id": "portal",
                "redirect_uri": PORTAL_REDIRECT,
                "scope": "openid",
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
            resp = await browser.get(f"{idp.issuer}/authorize", params=params)
            page = await browser.get(idp.url + resp.headers["location"])
            resp = await browser.post(
                f"{idp.issuer}/login",
                data={**_hidden(page.text), "username": "noah", "password": PASSWORD},
            )
            resp = await browser.get(idp.url + resp.headers["location"])
            code = parse_qs(urlsplit(resp.headers["location"]).query)["code"][0]
            tokens = (
                await browser.post(
                    f"{idp.issuer}/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": PORTAL_REDIRECT,
                        "code_verifier": verifier,
                    },
                    auth=("portal", idp.secret("portal")),
                )
            ).json()
            out = await browser.get(
                f"{idp.issuer}/logout",
                params={
                    "id_token_hint": tokens["id_token"],
                    "state": "bye",
                    "post_logout_redirect_uri": "http://127.0.0.1:8082/",
                },
            )
            assert (
                out.status_code == 302
                and out.headers["location"] == "http://127.0.0.1:8082/?state=bye"
            )
            again = await browser.get(
                f"{idp.issuer}/authorize", params={**params, "prompt": "none"}
            )
        assert parse_qs(urlsplit(again.headers["location"]).query)["error"] == ["login_required"]

    async def test_logout_without_hint_asks_and_ignores_unregistered_targets(
        self, idp: IdP
    ) -> None:
        async with httpx.AsyncClient() as browser:
            page = await browser.get(
                f"{idp.issuer}/logout",
                params={"post_logout_redirect_uri": "http://evil.example/", "client_id": "portal"},
            )
            assert page.status_code == 200 and "Sign out?" in page.text
            done = await browser.post(f"{idp.issuer}/logout", data=_hidden(page.text))
        assert done.status_code == 200 and "signed out" in done.text


class TestSignupPolicy:
    async def test_invite_only_needs_a_valid_invitation(self, idp: IdP, olivia: str) -> None:
        async with httpx.AsyncClient() as browser:
            closed = await browser.get(f"{idp.issuer}/signup")
            assert closed.status_code == 403
            invite = (
                await _admin(
                    idp,
                    olivia,
                    "POST",
                    "/invitations",
                    {"partner": "fabrikam", "roles": ["member"]},
                )
            ).json()
            page = await browser.get(f"{idp.issuer}/signup", params={"invitation": invite["code"]})
            form = {
                **_hidden(page.text),
                "username": "ivy",
                "name": "Ivy Invited",
                "password": "invited-password-1",
            }
            joined = await browser.post(f"{idp.issuer}/signup", data=form)
            assert joined.status_code == 303
            reuse = await browser.post(f"{idp.issuer}/signup", data={**form, "username": "ivy2"})
            assert reuse.status_code == 403 and "not valid" in reuse.text

    async def test_open_policy_joins_the_default_partner(self, idp: IdP, olivia: str) -> None:
        resp = await _admin(
            idp,
            olivia,
            "PUT",
            "/policy",
            {"membership_policy": "open", "default_partner": "acme-hq"},
        )
        assert resp.status_code == 200
        try:
            async with httpx.AsyncClient() as browser:
                page = await browser.get(f"{idp.issuer}/signup")
                joined = await browser.post(
                    f"{idp.issuer}/signup",
                    data={
                        **_hidden(page.text),
                        "username": "oscar",
                        "name": "Oscar Open",
                        "password": "open-password-12",
                    },
                )
                assert joined.status_code == 303
            people = (await _admin(idp, olivia, "GET", "/people?partner=acme-hq")).json()
            oscar = next(p for p in people if p["username"] == "oscar")
            assert oscar["roles"] == ["member"]
        finally:
            await _admin(idp, olivia, "PUT", "/policy", {"membership_policy": "invite"})
