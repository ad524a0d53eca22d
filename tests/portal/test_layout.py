"""Where things land on the screen: a hover card never covers the post it was opened from,
wide tables stay readable on a phone, and a thread's breadcrumb names its category."""

from __future__ import annotations

from typing import Any

import pytest

from tests.portal.browser import ARTIFACTS, PHONE, signed_in_page
from tests.portal.login import sign_in
from tests.portal.mesh import Mesh

pytestmark = pytest.mark.browser

DESKTOP = {"viewport": {"width": 1280, "height": 800}}


def phone_width() -> int:
    """The width of the phone viewport of :data:`PHONE` (a dict of mixed values)."""
    viewport = PHONE["viewport"]
    assert isinstance(viewport, dict)
    width: int = viewport["width"]
    return width


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two bounding boxes share any area."""
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


async def open_card(page: Any, post: Any, phone: bool) -> tuple[Any, Any]:
    """Open the hover card of a post's author (a tap on a phone, hovering on a desktop)."""
    name = post.locator("header a[data-card]").first
    if phone:
        await name.tap()
    else:
        await name.hover()
    card = page.locator("#hovercard")
    await card.locator(".hovercard-actions").wait_for()
    return card, name


class TestHoverCardPlacement:
    @pytest.mark.parametrize("width", ["desktop", "phone"])
    async def test_never_covers_the_post_it_was_opened_from(
        self, browser: Any, mesh: Mesh, width: str
    ) -> None:
        phone = width == "phone"
        thread = f"{mesh.portal_url}/threads/{mesh.seeded['thread']}"
        async with signed_in_page(browser, mesh, "chloe", **(PHONE if phone else DESKTOP)) as page:
            await page.goto(thread)
            # A name at the top of the page: no room above it for the card.
            first = page.locator("#post-first")
            card, name = await open_card(page, first, phone)
            box = await card.bounding_box()
            body = await first.locator(".prose").bounding_box()
            assert not overlap(box, body), f"the card {box} covers the first post {body}"
            assert not overlap(box, await name.bounding_box())
            if phone:
                assert box["x"] >= 0 and box["x"] + box["width"] <= phone_width()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / f"portal-{width}-hovercard-top.png"))
            await page.keyboard.press("Escape")
            await card.wait_for(state="hidden")
            # A name in the middle of the screen.
            later = page.locator("li.post").last
            await later.evaluate("e => e.scrollIntoView({block: 'center'})")
            card, name = await open_card(page, later, phone)
            box = await card.bounding_box()
            body = await later.locator(".prose").bounding_box()
            assert not overlap(box, body), f"the card {box} covers the post {body}"
            assert not overlap(box, await name.bounding_box())
            await page.screenshot(path=str(ARTIFACTS / f"portal-{width}-hovercard-middle.png"))

    async def test_the_check_can_fail(self, browser: Any, mesh: Mesh) -> None:
        """Control: the old placement (right under the name) is caught by the same check."""
        thread = f"{mesh.portal_url}/threads/{mesh.seeded['thread']}"
        async with signed_in_page(browser, mesh, "chloe", **DESKTOP) as page:
            await page.goto(thread)
            first = page.locator("#post-first")
            card, name = await open_card(page, first, phone=False)
            under = await name.bounding_box()
            await card.evaluate(
                "(c, y) => { c.style.top = (y + window.scrollY + 6) + 'px'; }",
                under["y"] + under["height"],
            )
            body = await first.locator(".prose").bounding_box()
            assert overlap(await card.bounding_box(), body)


class TestOperatorPeopleOnAPhone:
    async def test_roles_are_readable_without_scrolling_sideways(
        self, browser: Any, mesh: Mesh
    ) -> None:
        async with signed_in_page(browser, mesh, "olivia", **PHONE) as page:
            await page.goto(f"{mesh.portal_url}/operator")
            table = page.locator("#people table")
            await table.scroll_into_view_if_needed()
            scroller = page.locator("#people .scroll")
            sideways = await scroller.evaluate("e => e.scrollWidth - e.clientWidth")
            assert sideways <= 1, f"the people table scrolls sideways by {sideways}px"
            page_overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert page_overflow <= 1
            cells = page.locator("#people td.roles")
            assert await cells.count() >= 5
            width = phone_width()
            texts = await cells.all_inner_texts()
            assert any("partner_admin" in t for t in texts), texts
            for i in range(await cells.count()):
                cell = cells.nth(i)
                await cell.scroll_into_view_if_needed()
                assert await cell.is_visible()
                box = await cell.bounding_box()
                assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
                # The text itself is not clipped by its cell (what a cut column does).
                clipped = await cell.evaluate("e => e.scrollWidth - e.clientWidth")
                assert clipped <= 1, (await cell.inner_text(), clipped)
            label = await cells.first.evaluate(
                "e => getComputedStyle(e, '::before').getPropertyValue('content')"
            )
            assert label == '"Roles"'
            ARTIFACTS.mkdir(exist_ok=True)
            await page.locator("#people").screenshot(
                path=str(ARTIFACTS / "portal-phone-operator-people.png")
            )

    async def test_a_desktop_keeps_the_table(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "olivia", **DESKTOP) as page:
            await page.goto(f"{mesh.portal_url}/operator")
            head = page.locator("#people th", has_text="Roles")
            assert await head.is_visible()
            display = await page.locator("#people td.roles").first.evaluate(
                "e => getComputedStyle(e).display"
            )
            assert display == "table-cell"


class TestBreadcrumb:
    async def test_names_the_category(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "chloe") as chloe:
            page = (await chloe.get(f"/threads/{mesh.seeded['thread']}")).text
        crumbs = page.split('<p class="crumbs">', 1)[1].split("</p>", 1)[0]
        assert '<a href="/forums/logistics">Logistics</a>' in crumbs, crumbs
        assert ">logistics<" not in crumbs
