"""Passkeys in a real browser: Debian's Chromium with its virtual authenticator (CTAP2,
internal transport, resident keys, user verification) driven over the DevTools protocol.
A person adds a passkey on the account page, signs out, and signs in with the passkey
alone. The issuer is http://localhost:…: a secure context, and a domain for the RP ID
(WebAuthn refuses an IP address as RP ID)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from identity.cli.seed import PASSWORD
from identity.domain.crypto import digest
from identity.store import models
from tests.identity.conftest import IdP
from tests.support.identity import serve_idp, start_idp

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
async def local_idp(
    nats_url: str,
    idp_database: str,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
) -> AsyncIterator[IdP]:
    """The demo provider, its issuer at http://localhost:{port}."""
    settings, creds, app = await start_idp(
        nats_url, idp_database, tmp_path_factory.mktemp("w"), demo_hashes, public_host="localhost"
    )
    async with serve_idp(app, settings.port):
        yield IdP(settings.public_url, settings, creds, None, app=app)  # type: ignore[arg-type]


async def _virtual_authenticator(context: Any, page: Any) -> tuple[Any, str]:
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


async def test_register_sign_out_and_sign_in_with_the_passkey_alone(
    browser: Any, local_idp: IdP
) -> None:
    idp = local_idp
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []
    # script errors and CSP refusals show here (a page's 404s, the favicon's, do not)
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on(
        "response",
        lambda r: problems.append(r.url) if r.status >= 400 and "favicon" not in r.url else None,
    )
    try:
        cdp, authenticator = await _virtual_authenticator(context, page)
        await page.goto(f"{idp.issuer}/login")
        await page.fill("#username", "noah")
        await page.fill("#password", PASSWORD)
        await page.click("button:text-is('Sign in')")
        await page.wait_for_url(f"{idp.issuer}/account")

        await page.fill("#passkey-name", "Noah's laptop")
        await page.click("[data-passkey-button]")
        await page.wait_for_selector("#passkey-list")
        assert "Noah's laptop" in await page.inner_text("#passkey-list")
        held = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator}))[
            "credentials"
        ]
        assert len(held) == 1 and held[0]["isResidentCredential"] is True
        assert held[0]["rpId"] == "localhost"

        async with page.expect_navigation():
            await page.click("#sign-out")
        assert not [c for c in await context.cookies() if c["name"] == "pm_session"]
        await page.goto(f"{idp.issuer}/account")
        assert page.url.startswith(f"{idp.issuer}/login")

        await page.click("button:text-is('Sign in with a passkey')")
        await page.wait_for_url(f"{idp.issuer}/account")
        assert "Signed in as Noah Nguyen" in await page.inner_text("h1")
        cookie = next(c for c in await context.cookies() if c["name"] == "pm_session")

        def session(tx: Any) -> Any:
            query = select(models.LoginSession).where(
                models.LoginSession.sid_hash == digest(cookie["value"])
            )
            return tx.s.scalars(query).one()

        row = await idp.rt.tx(session)
        assert row.amr == ["hwk", "user"]
        [stored] = await idp.rt.tx(lambda tx: list(tx.s.scalars(select(models.Passkey))))
        assert stored.sign_count >= 1 and stored.transports == ["internal"]

        # with a passkey, a password sign-in has a second step: the page offers the passkey
        async with page.expect_navigation():
            await page.click("#sign-out")
        await page.goto(f"{idp.issuer}/login")
        await page.fill("#username", "noah")
        await page.fill("#password", PASSWORD)
        await page.click("button:text-is('Sign in')")
        await page.wait_for_url(re.compile(r".*/login/second-factor.*"))
        assert await page.locator("#code").count() == 0  # no app: the passkey only
        await page.click("button:text-is('Use a passkey')")
        await page.wait_for_url(f"{idp.issuer}/account")
        cookie = next(c for c in await context.cookies() if c["name"] == "pm_session")
        row = await idp.rt.tx(session)
        assert row.amr == ["hwk", "mfa", "pwd", "user"]
        assert problems == []
    finally:
        await context.close()
