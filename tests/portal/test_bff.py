"""The backend-for-frontend over plain HTTP: sign-in, cookies, CSRF, CSP, token custody,
refresh and sign-out, against a real mesh."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from portal import repository as repo
from portal.oidc import TokenSet
from portal.sessions import Session, cookie_name
from portal.settings import PortalSettings
from portal.views.auth import set_session_cookie
from portal.web import Portal
from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import Mesh

COOKIE = cookie_name(False)


def portal_state(mesh: Mesh) -> Portal:
    portal: Portal = mesh.portal_app.state.portal
    return portal


async def session_of(mesh: Mesh, client: httpx.AsyncClient) -> Session | None:
    return await portal_state(mesh).store.load(client.cookies.get(COOKIE))


async def live_session(mesh: Mesh, client: httpx.AsyncClient) -> Session:
    """The client's portal session, which the test expects to exist."""
    session = await session_of(mesh, client)
    assert session is not None, "no portal session"
    return session


def tokens_of(session: Session) -> TokenSet:
    assert session.tokens is not None, "a signed-in session holds tokens"
    return session.tokens


class TestSignIn:
    async def test_sign_in_opens_a_session_and_returns_where_asked(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah", "/directory") as client:
            page = client.last_page
            assert page.url.path == "/directory"
            assert "Noah Nguyen" in page.text
            session = await live_session(mesh, client)
            assert session.sub == mesh.subs["noah"]
            assert session.partner == "northwind"

    async def test_next_is_never_an_open_redirect(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "chloe", "https://evil.example/steal") as client:
            assert str(client.last_page.url) == mesh.portal_url + "/"

    async def test_callback_refuses_an_unknown_state(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as client:
            client.cookies.set("pm_portal_login", "forged")
            resp = await client.get("/auth/callback", params={"state": "forged", "code": "x"})
            assert resp.status_code == 400
            assert "expired or was already used" in resp.text
            assert COOKIE not in resp.headers.get("set-cookie", "")

    async def test_a_callback_from_another_browser_does_not_sign_in(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as attacker:
            start = await attacker.get("/auth/login")
            state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        async with httpx.AsyncClient(base_url=mesh.portal_url) as victim:
            resp = await victim.get("/auth/callback", params={"state": state, "code": "x"})
            assert resp.status_code == 400
            assert "not started in this browser" in resp.text
            assert COOKIE not in resp.headers.get("set-cookie", "")

    async def test_an_answer_naming_another_issuer_or_none_is_refused(self, mesh: Mesh) -> None:
        # RFC 9207: identity says it names itself on every authorization response, so a
        # response with another issuer (a mix-up) or with none never reaches the token call
        for iss in ("https://evil.example", None):
            async with httpx.AsyncClient(base_url=mesh.portal_url) as client:
                start = await client.get("/auth/login")
                state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
                params = {"state": state, "code": "x"} | ({"iss": iss} if iss else {})
                resp = await client.get("/auth/callback", params=params)
                assert resp.status_code == 400
                assert "did not come from our identity provider" in resp.text
                assert COOKIE not in resp.headers.get("set-cookie", "")

    async def test_pages_need_a_session(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as client:
            resp = await client.get("/directory")
            assert resp.status_code == 303
            assert resp.headers["location"] == "/auth/login?next=%2Fdirectory"
            assert (await client.get(f"/api/cards/{mesh.subs['noah']}")).status_code == 401
            forged = {COOKIE: "not-a-session"}
            resp = await client.get("/workspaces", cookies=forged)
            assert resp.status_code == 303

    async def test_a_wrong_method_is_a_405_naming_the_allowed_ones(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as client:
            resp = await client.delete("/directory")
            assert resp.status_code == 405
            assert resp.headers["allow"] == "GET"  # RFC 9110 15.5.6


class TestSessionCookie:
    async def test_flags_over_plain_http(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as client:
            callback = next(r for r in client.last_page.history if r.url.path == "/auth/callback")
            header = next(
                h for h in callback.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")
            )
            flags = {f.strip().lower() for f in header.split(";")[1:]}
            assert "httponly" in flags
            assert "samesite=lax" in flags
            assert "path=/" in flags
            assert "secure" not in flags
            value = client.cookies.get(COOKIE)
            assert value is not None
            assert value.count(".") < 2, "the cookie must be opaque, not a token"

    def test_secure_and_host_prefixed_under_tls(self) -> None:
        from fastapi.responses import Response

        settings = PortalSettings(public_url="https://portal.example", environment="test")
        response = Response()
        set_session_cookie(response, settings, "opaque")
        header = response.headers["set-cookie"]
        assert header.startswith("__Host-pm_portal=opaque")
        assert "Secure" in header and "HttpOnly" in header and "SameSite=lax" in header


class TestTokensStayOnTheServer:
    async def test_no_token_reaches_the_browser(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as client:
            session = await live_session(mesh, client)
            secrets = [tokens_of(session).access_token, tokens_of(session).refresh_token]
            secrets += [tokens_of(session).id_token]
            pieces = [s for s in secrets if s] + [
                s.split(".")[1] for s in secrets if s and "." in s
            ]
            paths = [
                "/",
                "/directory",
                f"/people/{mesh.subs['noah']}",
                "/forums",
                f"/threads/{mesh.seeded['thread']}",
                "/introductions",
                "/workspaces",
                "/dashboards",
                f"/api/cards/{mesh.subs['noah']}",
            ]
            for path in paths:
                resp = await client.get(path)
                assert resp.status_code == 200, path
                exposed = resp.text + str(resp.headers) + str(dict(client.cookies))
                for piece in pieces:
                    assert piece not in exposed, f"a token leaked on {path}"

    async def test_tokens_are_encrypted_at_rest(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as client:
            session = await live_session(mesh, client)
            state = portal_state(mesh)
            async with state.db.transaction() as s:
                row = await repo.get_session(s, session.id)
            assert row is not None
            assert tokens_of(session).access_token not in row["tokens"]
            assert row["id"] != client.cookies.get(COOKIE), "only a hash of the cookie is kept"


class TestCsrf:
    async def _dashboards(self, mesh: Mesh, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        s = await live_session(mesh, client)
        async with portal_state(mesh).db.transaction() as db:
            return await repo.list_dashboards(db, s.eco, s.sub, s.partner)

    async def test_forms_without_the_token_are_refused(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix") as client:
            before = len(await self._dashboards(mesh, client))
            for data in ({"title": "no token"}, {"title": "wrong", "csrf": "guess"}):
                resp = await client.post("/dashboards", data=data)
                assert resp.status_code == 403
            assert len(await self._dashboards(mesh, client)) == before
            token = csrf_of((await client.get("/dashboards")).text)
            resp = await client.post("/dashboards", data={"title": "fine", "csrf": token})
            assert resp.status_code == 200 and resp.url.path.startswith("/dashboards/")
            assert len(await self._dashboards(mesh, client)) == before + 1

    async def test_cross_origin_posts_are_refused_even_with_the_token(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix") as client:
            token = csrf_of((await client.get("/dashboards")).text)
            resp = await client.post(
                "/dashboards",
                data={"title": "x", "csrf": token},
                headers={"Origin": "https://evil.example"},
            )
            assert resp.status_code == 403

    async def test_sign_out_needs_the_token(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix") as client:
            assert (await client.post("/auth/logout")).status_code == 403
            assert await session_of(mesh, client) is not None

    async def test_preview_needs_the_header_and_is_sanitised(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix") as client:
            source = "**bold** <script>alert(1)</script> [x](javascript:alert(1)) <img onerror=x>"
            text = {"text": source}
            assert (await client.post("/api/preview", json=text)).status_code == 403
            token = csrf_of((await client.get("/")).text)
            resp = await client.post("/api/preview", json=text, headers={"X-CSRF-Token": token})
            assert resp.status_code == 200
            html = resp.json()["html"]
            assert "<strong>bold</strong>" in html
            assert "<script" not in html and "<img" not in html and "href=" not in html


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE_ATTR = re.compile(r"<[^>]+\sstyle\s*=", re.I)


class TestContentSecurityPolicy:
    async def test_strict_csp_and_no_inline_code(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "olivia") as client:
            paths = [
                "/",
                "/directory",
                "/forums",
                "/forums/logistics",
                f"/threads/{mesh.seeded['thread']}",
                "/introductions",
                "/broker",
                "/operator",
                "/operator/partners/northwind/scim",
                "/dashboards",
                "/connectors",
                "/workspaces",
            ]
            for path in paths:
                resp = await client.get(path)
                assert resp.status_code == 200, path
                csp = resp.headers["content-security-policy"]
                assert "script-src 'self'" in csp and "unsafe-inline" not in csp
                assert "frame-ancestors 'none'" in csp
                assert resp.headers["x-content-type-options"] == "nosniff"
                assert not INLINE_SCRIPT.search(resp.text), path
                assert not HANDLER.search(resp.text), path
                assert not STYLE_ATTR.search(resp.text), path


class TestRefresh:
    async def _expire(self, mesh: Mesh, session: Session, refresh_token: str | None = None) -> None:
        state = portal_state(mesh)
        t = tokens_of(session)
        stale = TokenSet(t.access_token, refresh_token or t.refresh_token, t.id_token, 0.0)
        async with state.db.transaction() as s:
            await repo.update_session(s, session.id, tokens=state.store._seal(stale))

    async def test_an_expired_access_token_is_refreshed(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as client:
            before = await live_session(mesh, client)
            await self._expire(mesh, before)
            resp = await client.get("/directory")
            assert resp.status_code == 200 and resp.url.path == "/directory"
            after = await live_session(mesh, client)
            assert tokens_of(after).access_token != tokens_of(before).access_token
            assert tokens_of(after).refresh_token != tokens_of(before).refresh_token  # rotated
            assert tokens_of(after).expires_at > time.time()

    async def test_a_refused_refresh_ends_the_session(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as client:
            await self._expire(mesh, await live_session(mesh, client), refresh_token="revoked")
            resp = await client.get("/directory", follow_redirects=False)
            assert resp.status_code == 303
            assert resp.headers["location"].startswith("/auth/login")
            assert await session_of(mesh, client) is None

    async def test_a_token_the_gateway_refuses_ends_the_session(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as client:
            session = await live_session(mesh, client)
            state = portal_state(mesh)
            t = tokens_of(session)
            forged = TokenSet("not.a.token", t.refresh_token, t.id_token, time.time() + 600)
            async with state.db.transaction() as s:
                await repo.update_session(s, session.id, tokens=state.store._seal(forged))
            resp = await client.get("/directory", follow_redirects=False)
            assert resp.status_code == 303
            assert resp.headers["location"].startswith("/auth/login")
            assert await session_of(mesh, client) is None


class TestSignOut:
    async def test_sign_out_ends_the_session_and_the_provider_session(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "chloe") as client:
            token = csrf_of((await client.get("/")).text)
            resp = await client.post("/auth/logout", data={"csrf": token}, follow_redirects=False)
            assert resp.status_code == 303
            assert resp.headers["location"].startswith(f"{mesh.issuer}/logout?")
            assert await session_of(mesh, client) is None
            assert (await client.get("/directory", follow_redirects=False)).status_code == 303


@pytest.mark.parametrize("path", ["/healthz", "/static/portal.js", "/static/portal.css"])
async def test_public_assets(mesh: Mesh, path: str) -> None:
    async with httpx.AsyncClient(base_url=mesh.portal_url) as client:
        resp = await client.get(path)
        assert resp.status_code == 200
        assert "content-security-policy" in resp.headers
