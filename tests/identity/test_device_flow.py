"""Device Authorization Grant (RFC 8628) end to end: a device asks, polls, a signed-in
person confirms or denies on identity's verification page; every error of §3.5."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpx
import jwt
import pytest
from sqlalchemy import MetaData, text

from identity.cli import seed
from identity.cli.devclient import _form
from mesh.db import Database
from tests.identity.conftest import IdP
from tests.support.identity import refresh_grant

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    """Three wrong user codes lock an address out (the last test of the module)."""
    return {"device_max_failures": 3}


async def _start(
    idp: IdP, client: str = "mesh-device", scope: str = "openid profile:read"
) -> httpx.Response:
    return await idp.http.post(
        f"{idp.issuer}/device_authorization", data={"client_id": client, "scope": scope}
    )


async def _poll(idp: IdP, device_code: str, client: str = "mesh-device") -> httpx.Response:
    return await idp.http.post(
        f"{idp.issuer}/token",
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client},
    )


async def _browser(
    idp: IdP, username: str, page_url: str
) -> tuple[httpx.AsyncClient, httpx.Response]:
    """A browser that opens ``page_url``, signs in on the way, and lands on it."""
    browser = httpx.AsyncClient(timeout=10, follow_redirects=True)
    page = await browser.get(page_url)
    assert 'name="password"' in page.text
    action, fields = _form(page.text)
    page = await browser.post(
        urljoin(str(page.url), action),
        data={**fields, "username": username, "password": seed.PASSWORD},
    )
    return browser, page


async def _decide(
    browser: httpx.AsyncClient, page: httpx.Response, decision: str
) -> httpx.Response:
    action, fields = _form(page.text)
    return await browser.post(urljoin(str(page.url), action), data={**fields, "decision": decision})


class TestDeviceFlow:
    async def test_discovery(self, idp: IdP) -> None:
        meta = (await idp.http.get(f"{idp.issuer}/.well-known/openid-configuration")).json()
        assert meta["device_authorization_endpoint"] == f"{idp.issuer}/device_authorization"
        assert DEVICE_GRANT in meta["grant_types_supported"]

    async def test_success_with_pending_and_slow_down(self, idp: IdP) -> None:
        resp = await _start(idp, scope="openid profile:read offline_access")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert USER_CODE.match(body["user_code"])
        assert body["verification_uri"] == f"{idp.issuer}/device"
        assert body["verification_uri_complete"].startswith(f"{idp.issuer}/device?user_code=")
        assert body["expires_in"] > 0 and body["interval"] == 5
        pending = await _poll(idp, body["device_code"])
        assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
        fast = await _poll(idp, body["device_code"])
        assert fast.status_code == 400 and fast.json()["error"] == "slow_down"
        # the person opens the complete URI, signs in, sees the device and allows it
        browser, page = await _browser(idp, "noah", body["verification_uri_complete"])
        assert body["user_code"] in page.text and 'value="allow"' in page.text
        done = await _decide(browser, page, "allow")
        assert done.status_code == 200 and "Device connected" in done.text
        token = await _poll(idp, body["device_code"])
        assert token.status_code == 200, token.text
        tokens = token.json()
        assert set(tokens["scope"].split()) == {"openid", "profile:read", "offline_access"}
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        assert claims["client_id"] == "mesh-device" and claims["partner"] == "northwind"
        id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
        assert id_claims["aud"] == "mesh-device" and id_claims["sub"] == claims["sub"]
        # signed in with a password: the approving session's methods (RFC 8176)
        assert id_claims["amr"] == ["pwd"] and id_claims["acr"] == "urn:partnermesh:acr:pwd"
        # once only
        again = await _poll(idp, body["device_code"])
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        # offline_access (the device client is registered for it): survives the logout
        logout = await browser.get(f"{idp.issuer}/logout")
        action, fields = _form(logout.text)
        await browser.post(urljoin(str(logout.url), action), data=fields)
        refreshed = await refresh_grant(
            idp.http, idp.issuer, tokens["refresh_token"], client_id="mesh-device"
        )
        assert refreshed.status_code == 200, refreshed.text
        await browser.aclose()

    async def test_code_typed_by_hand(self, idp: IdP) -> None:
        body = (await _start(idp)).json()
        browser, page = await _browser(idp, "chloe", f"{idp.issuer}/device")
        assert 'name="user_code"' in page.text
        action, fields = _form(page.text)
        typed = body["user_code"].replace("-", "").lower()  # any case, no dash
        page = await browser.post(
            urljoin(str(page.url), action), data={**fields, "user_code": typed}
        )
        assert body["user_code"] in page.text
        assert (await _decide(browser, page, "allow")).status_code == 200
        assert (await _poll(idp, body["device_code"])).status_code == 200
        await browser.aclose()

    async def test_denied(self, idp: IdP) -> None:
        body = (await _start(idp)).json()
        browser, page = await _browser(idp, "felix", body["verification_uri_complete"])
        done = await _decide(browser, page, "deny")
        assert done.status_code == 200 and "refused" in done.text
        resp = await _poll(idp, body["device_code"])
        assert resp.status_code == 400 and resp.json()["error"] == "access_denied"
        await browser.aclose()

    async def test_expired(self, idp: IdP, idp_database: str) -> None:
        body = (await _start(idp)).json()
        db = Database(idp_database, MetaData())
        try:
            async with db.transaction() as s:
                past = datetime.now(UTC) - timedelta(seconds=1)
                await s.execute(
                    text("UPDATE id_device_grants SET expires_at = :t WHERE user_code = :c"),
                    {"t": past, "c": body["user_code"].replace("-", "")},
                )
        finally:
            await db.dispose()
        resp = await _poll(idp, body["device_code"])
        assert resp.status_code == 400 and resp.json()["error"] == "expired_token"
        # and the verification page no longer accepts its user code
        browser, page = await _browser(idp, "noah", body["verification_uri_complete"])
        assert page.status_code == 400 and 'value="allow"' not in page.text
        await browser.aclose()

    async def test_client_not_registered_for_the_device_grant(self, idp: IdP) -> None:
        resp = await _start(idp, client="mesh-cli")
        assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_client"

    async def test_unknown_client_and_scope(self, idp: IdP) -> None:
        assert (await _start(idp, client="nobody")).json()["error"] == "invalid_client"
        anonymous = await idp.http.post(f"{idp.issuer}/device_authorization", data={})
        assert anonymous.status_code in (400, 401)
        assert anonymous.json()["error"] == "invalid_client"
        resp = await _start(idp, scope="openid no-such-scope")
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"

    async def test_device_code_of_another_client_or_unknown(self, idp: IdP) -> None:
        body = (await _start(idp)).json()
        other = await _poll(idp, body["device_code"], client="mesh-cli")
        assert other.status_code == 400 and other.json()["error"] in (
            "unauthorized_client",
            "invalid_grant",
        )
        unknown = await _poll(idp, "not-a-device-code")
        assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_grant"
        missing = await idp.http.post(
            f"{idp.issuer}/token", data={"grant_type": DEVICE_GRANT, "client_id": "mesh-device"}
        )
        assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"

    async def test_verification_needs_a_signed_in_person_and_csrf(self, idp: IdP) -> None:
        body = (await _start(idp)).json()
        async with httpx.AsyncClient(timeout=10) as anonymous:
            resp = await anonymous.get(body["verification_uri_complete"])
            assert resp.status_code == 302 and "/login?" in resp.headers["location"]
            forged = await anonymous.post(
                f"{idp.issuer}/device",
                data={"user_code": body["user_code"], "decision": "allow"},
            )
            assert forged.status_code == 403
        pending = await _poll(idp, body["device_code"])
        assert pending.json()["error"] == "authorization_pending"

    async def test_guessing_user_codes_is_locked_out(self, idp: IdP) -> None:
        """Last in the module: it locks 127.0.0.1 out of the verification page."""
        body = (await _start(idp)).json()
        browser, page = await _browser(idp, "bruno", f"{idp.issuer}/device")
        action, fields = _form(page.text)
        statuses = []  # the expired code shown in test_expired was a miss as well
        for _ in range(3):
            wrong = await browser.post(
                urljoin(str(page.url), action), data={**fields, "user_code": "BCDF-GHJK"}
            )
            statuses.append(wrong.status_code)
        assert statuses[0] == 400 and statuses[-1] == 429, statuses
        # now even the right code is refused from this address
        locked = await browser.post(
            urljoin(str(page.url), action), data={**fields, "user_code": body["user_code"]}
        )
        assert locked.status_code == 429 and 'value="allow"' not in locked.text
        await browser.aclose()
