"""The portal in a real browser (headless Chromium): sign-in, hover cards, introductions,
dashboards, isolation between partners, and phone-width screenshots."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.portal.browser import PHONE, signed_in_page
from tests.portal.content import NOAH_BIO
from tests.portal.mesh import Mesh

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class TestSignIn:
    async def test_sign_in_through_identity_and_out_again(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "noah") as page:
            await page.get_by_role("heading", name="Hello, Noah Nguyen").wait_for()
            cookies = await page.context.cookies(mesh.portal_url)
            portal_cookie = next(c for c in cookies if c["name"] == "pm_portal")
            assert portal_cookie["httpOnly"] and portal_cookie["sameSite"] == "Lax"
            assert await page.evaluate("document.cookie") == "", "no script can read the session"
            await page.get_by_role("button", name="Sign out").click()
            await page.wait_for_url(mesh.portal_url + "/")
            await page.get_by_role("link", name="Sign in").first.wait_for()


class TestHoverCards:
    async def test_hover_and_focus_show_the_tag_cloud(self, browser: Any, mesh: Mesh) -> None:
        noah = mesh.subs["noah"]
        async with signed_in_page(browser, mesh, "chloe") as page:
            await page.goto(f"{mesh.portal_url}/threads/{mesh.seeded['thread']}")
            name = page.locator(f".post a[data-card='{noah}']").first
            await name.hover()
            card = page.locator("#hovercard")
            await card.locator(".cloud li").first.wait_for()
            assert "Noah Nguyen" in await card.inner_text()
            terms = [t.lower() for t in await card.locator(".cloud li").all_inner_texts()]
            assert any("cold chain" in t or "refrigerated" in t for t in terms), terms
            sizes = await card.locator(".cloud li").evaluate_all("els => els.map(e => e.className)")
            assert len(set(sizes)) > 1, "terms are sized by weight"
            await page.mouse.move(0, 0)
            await card.wait_for(state="hidden")
            # Keyboard: focusing the name shows the card, Escape dismisses it.
            await name.focus()
            await card.locator(".cloud li").first.wait_for()
            assert await name.get_attribute("aria-describedby") == "hovercard"
            await page.keyboard.press("Escape")
            await card.wait_for(state="hidden")


class TestForumWriting:
    async def test_markdown_preview_then_post(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "felix") as page:
            await page.goto(f"{mesh.portal_url}/threads/{mesh.seeded['thread']}")
            # A word of its own: other test files on this worker post to the same thread.
            word = f"forecast{uuid.uuid4().hex[:8]}"
            await page.get_by_label("Your reply").fill(f"Fabrikam can **{word}** the demand")
            await page.get_by_role("button", name="Preview").click()
            await page.locator(".preview strong", has_text=word).wait_for()
            await page.get_by_role("button", name="Post").click()
            await page.locator(".post strong", has_text=word).wait_for()


class TestIntroductions:
    async def test_both_sides_accept_and_see_the_connection(self, browser: Any, mesh: Mesh) -> None:
        intro = mesh.seeded["intro"]
        async with signed_in_page(browser, mesh, "noah") as noah:
            await noah.goto(f"{mesh.portal_url}/introductions")
            box = noah.locator(f"#intro-{intro}")
            assert "Cold chain meets vaccine parts" in await box.inner_text()
            await box.get_by_role("button", name="Accept").click()
            await noah.get_by_text("you accepted; waiting for them").wait_for()
        async with signed_in_page(browser, mesh, "chloe") as chloe:
            await chloe.goto(f"{mesh.portal_url}/introductions")
            box = chloe.locator(f"#intro-{intro}")
            assert "They already accepted" in await box.inner_text()
            await box.get_by_role("button", name="Accept").click()
            connected = chloe.locator(f"#intro-{intro}.connected")
            await connected.wait_for()
            assert "Noah Nguyen" in await connected.inner_text()
        async with signed_in_page(browser, mesh, "noah") as noah:
            await noah.goto(f"{mesh.portal_url}/introductions")
            connected = noah.locator(f"#intro-{intro}.connected")
            assert "Chloe Chen" in await connected.inner_text()


async def _add_widget(page: Page, title: str, kind: str, sources: list[str]) -> None:
    await page.fill("#w-title", title)
    await page.select_option("#w-kind", kind)
    for source in sources:
        await page.check(f"#src-{source}")
    await page.get_by_role("button", name="Add widget").click()
    await page.wait_for_load_state()


class TestDashboards:
    async def test_build_save_and_reload(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "nadia") as page:
            # Other test files on this worker may add categories: one bar for each there is.
            await page.goto(f"{mesh.portal_url}/forums")
            categories = await page.locator("ul.cards li.entry").count()
            assert categories >= 1
            await page.goto(f"{mesh.portal_url}/dashboards")
            await page.fill("#d-title", "Ecosystem at a glance")
            await page.get_by_role("button", name="Create").click()
            await page.get_by_role("heading", name="Ecosystem at a glance").wait_for()
            url = page.url
            await _add_widget(page, "Members and companies", "number", ["people", "companies"])
            await _add_widget(page, "Threads per category", "chart", ["categories"])
            await _add_widget(page, "Our words", "cloud", ["my_cloud", "company_cloud"])
            await _add_widget(
                page, "Workspaces and checks", "list", ["workspaces", "verifications"]
            )
            await _add_widget(page, "Operations offered", "table", ["catalogue"])
            await page.goto(url)  # reload: everything comes back from the saved dashboard
            widgets = page.locator(".widgets.loaded")
            await widgets.wait_for()
            numbers = widgets.locator("section", has_text="Members and companies").locator(
                ".number"
            )
            counts = [int(n.replace(",", "")) for n in await numbers.all_inner_texts()]
            assert counts == [8, 4], "people and companies, each counted on its own"
            bars = widgets.locator("section", has_text="Threads per category").locator("rect.bar")
            assert await bars.count() == categories
            listing = widgets.locator("section", has_text="Workspaces and checks")
            text = await listing.inner_text()
            assert "Northwind and Contoso pilot" in text
            assert "Partial results: Latest verifications (brokers and operators) failed (" in text
            assert await widgets.locator("section", has_text="Our words").count() == 1
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(
                path=str(ARTIFACTS / "portal-desktop-dashboard.png"), full_page=True
            )


class TestPartnerIsolation:
    async def test_another_partner_cannot_reach_the_workspace_or_private_fields(
        self, browser: Any, mesh: Mesh
    ) -> None:
        ws, noah = mesh.seeded["workspace"], mesh.subs["noah"]
        async with signed_in_page(browser, mesh, "nadia") as page:  # control: noah's colleague
            await page.goto(f"{mesh.portal_url}/people/{noah}")
            assert "Runs cold chain operations" in await page.inner_text("main")
        async with signed_in_page(browser, mesh, "fatima") as page:
            resp = await page.goto(f"{mesh.portal_url}/workspaces/{ws}")
            assert resp.status == 404
            assert "Northwind and Contoso pilot" not in await page.content()
            for path in (f"/workspaces/{ws}/threads/x", "/workspaces", "/", f"/people/{noah}"):
                await page.goto(mesh.portal_url + path)
                html = await page.content()
                assert "Northwind and Contoso pilot" not in html, path
                assert NOAH_BIO.split("**")[0] not in html or path != f"/people/{noah}", path
            await page.goto(f"{mesh.portal_url}/people/{noah}")
            assert "Runs" not in await page.inner_text("main")
            resp = await page.goto(f"{mesh.portal_url}/companies/northwind/edit")
            assert resp.status == 403  # the company is public; editing it is not allowed


PHONE_PAGES = {
    "home": "/",
    "directory": "/directory",
    "person": "/people/{noah}",
    "forums": "/forums",
    "thread": "/threads/{thread}",
    "introductions": "/introductions",
    "workspaces": "/workspaces",
    "dashboards": "/dashboards",
    "connectors": "/connectors",
    "broker": "/broker",
}


class TestPhoneWidth:
    async def test_main_pages_fit_a_phone_and_are_captured(self, browser: Any, mesh: Mesh) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        values = {"noah": mesh.subs["noah"], "thread": mesh.seeded["thread"]}
        async with signed_in_page(browser, mesh, "bruno", **PHONE) as page:
            for name, path in PHONE_PAGES.items():
                resp = await page.goto(mesh.portal_url + path.format(**values))
                assert resp.status == 200, name
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at phone width"
                await page.screenshot(
                    path=str(ARTIFACTS / f"portal-phone-{name}.png"), full_page=True
                )
            # The menu collapses behind a button on phones.
            nav = page.locator("#nav")
            assert not await nav.is_visible()
            await page.get_by_role("button", name="Menu").click()
            assert await nav.is_visible()

    async def test_touch_shows_a_card_and_a_tap_elsewhere_dismisses_it(
        self, browser: Any, mesh: Mesh
    ) -> None:
        async with signed_in_page(browser, mesh, "chloe", **PHONE) as page:
            await page.goto(f"{mesh.portal_url}/threads/{mesh.seeded['thread']}")
            name = page.locator(f".post a[data-card='{mesh.subs['noah']}']").first
            await name.tap()
            card = page.locator("#hovercard")
            await card.locator(".cloud li").first.wait_for()
            assert "/threads/" in page.url, "the first tap shows the card instead of navigating"
            await page.locator("h1").tap()
            await card.wait_for(state="hidden")
