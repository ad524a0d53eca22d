"""The portal as an installable app, in Debian's Chromium: the manifest and its icons pass
DevTools' installability checks, the service worker registers, opened threads, profiles
and introductions read offline (and nothing else does), and signing out empties the
offline cache."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.cli.seed import PASSWORD
from portal import repository as repo
from tests.portal.browser import signed_in_page
from tests.portal.mesh import ECO, Mesh
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser
PAGES_CACHES = "(await caches.keys()).filter(n => n.startsWith('pm-pages-'))"


async def until(page: Any, expression: str, timeout: float = 10.0) -> None:
    """Poll ``expression`` in the page (``wait_for_function`` polls with an eval, which
    the portal's CSP forbids, as it should)."""
    async with asyncio.timeout(timeout):
        while not await page.evaluate(expression):
            await asyncio.sleep(0.1)


async def worker_ready(page: Any) -> None:
    """The service worker is active and controls the page (later pages go through it)."""
    await until(page, "document.body.getAttribute('data-sw') === 'registered'")
    await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    await until(page, "navigator.serviceWorker.controller !== null")


@contextlib.asynccontextmanager
async def profile_page(
    browser: Any, mesh: Mesh, profile: Path, username: str
) -> AsyncIterator[Any]:
    """A signed-in page in a browser profile on disk: Chromium installs no app from an
    incognito context (what ``new_context`` makes), so DevTools would only say that."""
    ctx = await browser.browser_type.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS
    )
    try:
        page = ctx.pages[0] if ctx.pages else await ctx.new_page()
        await page.goto(mesh.portal_url + "/auth/login")
        await page.fill("#username", username)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(mesh.portal_url + "/")
        yield page
    finally:
        await ctx.close()


class TestInstallable:
    async def test_manifest_and_worker_pass_the_installability_checks(
        self, browser: Any, mesh: Mesh, tmp_path: Path
    ) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as http:
            manifest = await http.get("/manifest.webmanifest")
            assert manifest.headers["content-type"].startswith("application/manifest+json")
            for icon in manifest.json()["icons"]:
                png = await http.get(icon["src"])
                assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
            worker = await http.get("/sw.js")
            assert worker.headers["content-type"].startswith("text/javascript")
            assert "script-src 'self'" in worker.headers["content-security-policy"]
        async with profile_page(browser, mesh, tmp_path / "chromium", "noah") as page:
            await worker_ready(page)
            await page.reload()
            cdp = await page.context.new_cdp_session(page)
            found = await cdp.send("Page.getAppManifest")
            assert found["url"] == mesh.portal_url + "/manifest.webmanifest"
            assert found["errors"] == [], found["errors"]
            # Chromium settles its verdict once the manifest and the worker are both in
            for _ in range(50):
                checked = await cdp.send("Page.getInstallabilityErrors")
                if not checked["installabilityErrors"]:
                    break
                await asyncio.sleep(0.2)
            assert checked["installabilityErrors"] == [], checked
            links = await page.eval_on_selector_all(
                "link[rel=manifest]", "els => els.map(e => e.href)"
            )
            assert links == [mesh.portal_url + "/manifest.webmanifest"]


class TestOffline:
    async def test_opened_pages_read_offline_until_sign_out(self, browser: Any, mesh: Mesh) -> None:
        portal, seeded = mesh.portal_url, mesh.seeded
        opened = {
            f"{portal}/threads/{seeded['thread']}": "h1",
            f"{portal}/people/{mesh.subs['noah']}": "h1",
            f"{portal}/introductions": "h1",
        }
        async with signed_in_page(browser, mesh, "noah") as page:
            await worker_ready(page)
            online: dict[str, str] = {}
            for url, heading in opened.items():
                await page.goto(url)
                online[url] = await page.locator(heading).first.inner_text()
            await page.goto(f"{portal}/notifications")  # not a page kept for offline reading
            assert len(await page.evaluate(f"(async () => {PAGES_CACHES})()")) == 1

            await page.context.set_offline(True)
            for url, heading in opened.items():
                await page.goto(url)
                assert await page.locator(heading).first.inner_text() == online[url]
            for never in (f"{portal}/directory", f"{portal}/notifications"):
                await page.goto(never)
                await page.get_by_role("heading", name="You are offline").wait_for()

            await page.context.set_offline(False)
            await page.goto(f"{portal}/threads/{seeded['thread']}")
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(portal + "/")
            await until(page, "document.body.getAttribute('data-offline-cleared') === '1'")
            assert await page.evaluate(f"(async () => {PAGES_CACHES})()") == []

            await page.context.set_offline(True)
            await page.goto(f"{portal}/threads/{seeded['thread']}")
            await page.get_by_role("heading", name="You are offline").wait_for()
            await page.context.set_offline(False)


class TestSessionEndedElsewhere:
    async def test_a_back_channel_logout_empties_the_offline_cache(
        self, browser: Any, mesh: Mesh
    ) -> None:
        """The back-channel logout ends the portal session (as ``/auth/backchannel-logout``
        does, by identity's sid or the person); the next page the browser asks for sends it
        to sign in, and the service worker forgets the offline pages on the way."""
        thread = f"{mesh.portal_url}/threads/{mesh.seeded['thread']}"
        portal = mesh.portal_app.state.portal
        async with signed_in_page(browser, mesh, "chloe") as page:
            await worker_ready(page)
            assert (await page.request.get(mesh.portal_url + "/api/session")).status == 200
            await page.goto(thread)
            assert len(await page.evaluate(f"(async () => {PAGES_CACHES})()")) == 1
            async with portal.db.transaction() as s:
                assert await repo.end_idp_sessions(s, ECO, mesh.subs["chloe"], None) >= 1
            assert (await page.request.get(mesh.portal_url + "/api/session")).status == 401
            # identity's login session is over too: its sign-in page stops the way back
            await page.route(
                mesh.identity_url + "/**",
                lambda route: route.fulfill(
                    status=200, content_type="text/html", body="<h1>Sign in again</h1>"
                ),
            )
            await page.goto(thread)
            assert page.url.startswith(mesh.identity_url), page.url
            await page.context.set_offline(True)
            await page.goto(thread)
            await page.get_by_role("heading", name="You are offline").wait_for()
            await page.context.set_offline(False)
