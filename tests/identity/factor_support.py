"""Second-factor helpers for identity's tests: the key an enrolment page shows, the codes
an authenticator app would show, and a person with an app set up."""

from __future__ import annotations

import base64
import re
import time
import uuid
from html import unescape
from urllib.parse import urljoin

import httpx

from identity.domain import totp
from tests.identity.conftest import IdP


def hidden(html: str) -> dict[str, str]:
    """The hidden fields of a page's forms, as a browser would submit them."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)
    return {k: unescape(v) for k, v in found}


def action(html: str) -> str:
    """The target of the page's first POST form."""
    match = re.search(r'<form method="post" action="([^"]+)"', html)
    assert match, html[-500:]
    return unescape(match.group(1))


def totp_key(html: str) -> bytes:
    """The key an enrolment page shows (base32, in groups of four)."""
    match = re.search(r'id="totp-key">([A-Z2-7 ]+)<', html)
    assert match, html[-800:]
    b32 = match.group(1).replace(" ", "")
    return base64.b32decode(b32 + "=" * (-len(b32) % 8))


def code(key: bytes, steps_ahead: int = 0) -> str:
    """The app's code ``steps_ahead`` 30-second steps from now."""
    return totp.hotp(key, totp.step_at(time.time()) + steps_ahead)


def recovery_codes(html: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", html)


async def person_with_app(idp: IdP, admin_token: str, password: str) -> tuple[str, bytes]:
    """A new person of contoso's who set up an authenticator app on the account page:
    their username and the app's key (the current step's code is spent)."""
    username = f"app-{uuid.uuid4().hex[:8]}"
    body = {"username": username, "partner": "contoso", "name": "App User", "password": password}
    created = await idp.http.post(
        f"{idp.issuer}/admin/people", json=body, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert created.status_code == 201, created.text
    async with httpx.AsyncClient(timeout=10) as browser:
        page = await browser.get(f"{idp.issuer}/login")
        fields = {**hidden(page.text), "username": username, "password": password}
        assert (await browser.post(f"{idp.issuer}/login", data=fields)).status_code == 303
        page = await browser.get(f"{idp.issuer}/login/enrol?return_to=/eco/{idp.eco}/account")
        key = totp_key(page.text)
        target = urljoin(str(page.url), action(page.text))
        done = await browser.post(target, data={**hidden(page.text), "code": code(key)})
        assert done.status_code == 200 and len(recovery_codes(done.text)) == 10
    return username, key
