"""Dashboards in a real browser (Debian's headless Chromium): charts people can read, a grid
laid out with the mouse and the keyboard, sharing with the ecosystem, the time range that
updates every widget, and a phone-width screenshot (under test-artifacts/)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from tests.portal.browser import (
    ARTIFACTS,
    PHONE,
    SERIOUS,
    axe_source,
    axe_violations,
    signed_in_page,
)
from tests.portal.mesh import Mesh

pytestmark = pytest.mark.browser


async def add_widget(page: Page, title: str, kind: str, sources: list[str]) -> None:
    await page.fill("#w-title", title)
    await page.select_option("#w-kind", kind)
    for source in sources:
        await page.check(f"#src-{source}")
    await page.get_by_role("button", name="Add widget").click()
    await page.wait_for_load_state()


async def build(page: Page, mesh: Mesh, title: str) -> str:
    await page.goto(f"{mesh.portal_url}/dashboards")
    await page.fill("#d-title", title)
    await page.get_by_role("button", name="Create").click()
    await page.get_by_role("heading", name=title).wait_for()
    url = page.url
    await add_widget(page, "Who is here", "number", ["people", "companies"])
    await add_widget(page, "Threads per category", "chart", ["categories"])
    await add_widget(page, "Forum posts", "chart", ["posts_over_time"])
    await add_widget(page, "Introductions", "chart", ["introductions_over_time"])
    return url


def widget(page: Page, title: str) -> Any:
    return page.locator(".widgets.loaded section.widget", has_text=title)


async def classes(page: Page, title: str) -> list[str]:
    return str(await widget(page, title).get_attribute("class")).split()


async def saved(page: Page, what: str) -> None:
    """Wait until the page says ``what`` happened and the layout is saved."""
    await page.locator("#layout-status", has_text=f"{what} Layout saved.").wait_for()


class TestDashboardGrid:
    async def test_build_resize_share_and_a_colleague_elsewhere_sees_it(
        self, browser: Any, mesh: Mesh
    ) -> None:
        tall = {"viewport": {"width": 1280, "height": 2400}}  # the whole grid, no scrolling
        async with signed_in_page(browser, mesh, "noah", **tall) as page:
            url = await build(page, mesh, "Northwind pulse")
            await page.locator(".widgets.loaded").wait_for()
            numbers = widget(page, "Who is here").locator(".stat")
            assert await numbers.count() == 2, "people and companies: two numbers"
            bars = widget(page, "Threads per category")
            assert await bars.locator("svg[role=img] rect.bar").count() >= 1
            ticks = await bars.locator("svg text.tick").all_text_contents()
            assert len(ticks) >= 2 and ticks[0] == "0"
            labels = await bars.locator("svg text.label title").all_text_contents()
            assert "Logistics" in labels, "full category names"
            posts = widget(page, "Forum posts")
            assert await posts.locator("svg polyline.line").count() == 2
            assert await posts.locator(".legend li").all_inner_texts() == [
                "Threads started",
                "Replies",
            ]
            assert await posts.locator("details table tbody tr").count() == 30

            # Resize with the mouse: drag the corner of "Forum posts" two columns wider.
            assert "w2" in await classes(page, "Forum posts")
            handle = posts.locator(".resize-handle")
            box = await handle.bounding_box()
            grid = await page.locator("#widgets").bounding_box()
            assert box is not None and grid is not None
            await page.mouse.move(box["x"] + 8, box["y"] + 8)
            await page.mouse.down()
            await page.mouse.move(grid["x"] + grid["width"] - 4, box["y"] + 8, steps=5)
            await page.mouse.up()
            await saved(page, "Resized: Forum posts.")
            assert "w4" in await classes(page, "Forum posts")

            # Move with the keyboard: focus "Move left" of Introductions and press Enter twice.
            order = await page.locator(".widgets section.widget h2").all_inner_texts()
            assert order[-1] == "Introductions"
            left = page.get_by_role("button", name="Move left: Introductions")
            await left.focus()
            await page.keyboard.press("Enter")
            await saved(page, "Moved left: Introductions.")
            taller = page.get_by_role("button", name="Taller: Introductions")
            await taller.focus()
            await page.keyboard.press("Enter")
            await saved(page, "Taller: Introductions.")
            assert (
                await page.evaluate("document.activeElement.getAttribute('data-move')") == "taller"
            )

            # Drag "Who is here" by its title bar onto the right half of the last widget.
            head = await widget(page, "Who is here").locator(".widget-head").bounding_box()
            target = await widget(page, "Forum posts").bounding_box()
            assert head is not None and target is not None
            await page.mouse.move(head["x"] + 20, head["y"] + 10)
            await page.mouse.down()
            end = (target["x"] + target["width"] - 30, target["y"] + 40)
            await page.mouse.move(*end, steps=8)
            await page.mouse.up()
            await saved(page, "Moved: Who is here.")

            await page.check("#s-vis-ecosystem")
            await page.get_by_role("button", name="Save settings").click()
            await page.get_by_text("Shared with the whole ecosystem.").wait_for()
            await page.reload()
            await page.locator(".widgets.loaded").wait_for()
            layout = await page.locator(".widgets section.widget h2").all_inner_texts()
            assert layout == ["Threads per category", "Introductions", "Forum posts", "Who is here"]
            assert "w4" in await classes(page, "Forum posts")
            assert "h2" in await classes(page, "Introductions")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(
                path=str(ARTIFACTS / "portal-desktop-dashboard-grid.png"), full_page=True
            )
        async with signed_in_page(browser, mesh, "fatima") as page:  # Fabrikam, not Northwind
            await page.goto(f"{mesh.portal_url}/dashboards")
            await page.get_by_role("link", name="Northwind pulse").click()
            await page.get_by_text("Shared by Noah Nguyen with the whole ecosystem").wait_for()
            await page.locator(".widgets.loaded").wait_for()
            seen = await page.locator(".widgets section.widget h2").all_inner_texts()
            assert seen == layout, "the owner's layout"
            assert "w4" in await classes(page, "Forum posts")
            assert await page.locator(".layout-keys, .resize-handle").count() == 0
            assert page.url == url

    async def test_the_time_range_updates_every_widget(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "carlos") as page:
            await build(page, mesh, "Contoso over time")
            await page.locator(".widgets.loaded").wait_for()
            rows = page.locator(".widgets section.widget:has(svg.lines) details tbody tr")
            assert await rows.count() == 60  # two charts over time, 30 days each
            # Mark every widget's content; a new range must replace all of them.
            await page.evaluate(
                """document.querySelectorAll('.widget-body > *')
                   .forEach(n => n.setAttribute('data-old', '1'))"""
            )
            await page.select_option("#r-range", "7d")
            await page.locator("#range-now", has_text="the last 7 days, per day").wait_for()
            await page.locator(".widgets.loaded").wait_for()
            assert await page.locator(".widget-body [data-old]").count() == 0
            assert await rows.count() == 14
            assert "range=7d" in page.url
            await page.select_option("#r-range", "custom")
            await page.fill("#r-from", "2026-01-01")
            await page.fill("#r-to", "2026-03-31")
            await page.get_by_role("button", name="Apply").click()
            await page.locator(
                "#range-now", has_text="2026-01-01 to 2026-03-31, per week"
            ).wait_for()
            await page.locator(".widgets.loaded").wait_for()
            assert await rows.count() == 2 * 14  # weeks from Monday 29 December to 30 March
            head = widget(page, "Forum posts").locator("details thead th").first
            assert await head.text_content() == "Week of"
            await page.reload()  # the range is in the address: a reload keeps it
            await page.locator(".widgets.loaded").wait_for()
            assert await rows.count() == 28

    async def test_a_dashboard_fits_a_phone(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "chloe", **PHONE) as page:
            await build(page, mesh, "Chloe on the go")
            await page.locator(".widgets.loaded").wait_for()
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"the dashboard scrolls sideways by {overflow}px"
            widths = await page.locator(".widgets section.widget").evaluate_all(
                "els => els.map(e => e.getBoundingClientRect().width)"
            )
            assert max(widths) - min(widths) < 1, "one column on a phone"
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(
                path=str(ARTIFACTS / "portal-phone-dashboard-grid.png"), full_page=True
            )
            found = await axe_violations(page, axe_source())
            assert [v for v in found if v["impact"] in SERIOUS] == [], found
