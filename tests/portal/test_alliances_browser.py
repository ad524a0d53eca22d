"""An alliance in Chromium, end to end through the pages: acme's operator proposes it in
the console, globex's operator accepts it in globex's own portal on a phone, and a member
of acme searches the directory with "Include allied ecosystems" (ticked by keyboard) and
finds a person of globex with globex's brand, on the page and on the hover card. Every
page on the way is axe-clean and fits a phone without scrolling sideways."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.portal.allied import ALLY, ALLY_NAME
from tests.portal.browser import ARTIFACTS, PHONE, SERIOUS, axe_source, axe_violations
from tests.portal.browser import signed_in_page as browser_page
from tests.portal.login import sign_in
from tests.portal.mesh import Mesh
from tests.portal.test_alliances import CONSOLE, post
from tests.portal.test_alliances_directory import my_id, share_profile
from tests.portal.test_connectors import eventually


async def clean(page: Any, name: str) -> None:
    """No serious accessibility problem, no sideways scrolling; a screenshot to look at."""
    serious = [v for v in await axe_violations(page, axe_source()) if v["impact"] in SERIOUS]
    assert not serious, (name, serious)
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{name} scrolls sideways by {overflow}px"
    await page.screenshot(path=str(ARTIFACTS / f"portal-alliance-{name}.png"), full_page=True)


@pytest.mark.browser
async def test_operators_agree_and_a_member_finds_an_allied_person(
    browser: Any, mesh: Mesh, globex: Mesh
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    skill = f"narwhalcargo{tag}"
    async with browser_page(browser, mesh, "olivia") as page:
        await page.get_by_role("link", name="Operator", exact=True).click()
        await page.get_by_role("link", name="Alliances with other ecosystems").click()
        await page.get_by_role("heading", name="Propose an alliance").wait_for()
        await page.get_by_label("Ecosystem to ally with").select_option(ALLY)
        ours, theirs = page.locator("#terms-ours"), page.locator("#terms-theirs")
        await ours.get_by_label("companies and people", exact=False).check()
        await theirs.get_by_label("companies and people", exact=False).check()
        await theirs.get_by_label("open (double opt-in)").check()
        await clean(page, "console")
        await page.get_by_role("button", name="Propose alliance").click()
        await page.get_by_text("Alliance proposed").wait_for()
        found = re.search(r"/operator/alliances/([A-Za-z0-9_-]+)", page.url)
        assert found, page.url
        ident = found.group(1)
        assert ALLY_NAME in await page.locator("h1").inner_text()  # shown as text, not markup
        await clean(page, "offer")

    try:
        async with browser_page(browser, globex, "gina", **PHONE) as phone:
            await phone.goto(f"{globex.portal_url}{CONSOLE}")
            await phone.get_by_text("your answer is awaited").wait_for()
            await clean(phone, "phone-list")
            await phone.locator(f"a[href='{CONSOLE}/{ident}']").click()
            await phone.get_by_role("button", name="Accept").wait_for()
            await clean(phone, "phone-review")
            await phone.get_by_role("button", name="Accept").click()
            await phone.get_by_text("Alliance accepted").wait_for()
            assert "active" in await phone.locator(".lead").inner_text()

        async with sign_in(globex, "gus") as gus:  # gus shares his skills with allies
            await share_profile(gus, await my_id(gus), {"skills": skill}, {"skills"})

        async with browser_page(browser, mesh, "nadia") as page:
            await page.get_by_role("link", name="Directory").click()
            await page.get_by_label("Search", exact=True).fill(skill)
            await page.focus("#allied")
            await page.keyboard.press("Space")  # the checkbox answers the keyboard
            assert await page.locator("#allied").is_checked()
            await page.get_by_role("button", name="Search", exact=True).click()
            entry = page.locator(".entry", has_text="Gus Grant")

            async def listed() -> bool:
                if await entry.count():
                    return True
                await page.reload()
                return False

            await eventually(listed)
            badge = entry.locator(".brand-badge")
            assert ALLY_NAME in await badge.inner_text()
            await clean(page, "directory")
            name = entry.get_by_role("link", name="Gus Grant")
            await name.hover()
            card = page.locator("#hovercard")
            await card.locator(".brand-badge").wait_for()
            assert ALLY_NAME in await card.inner_text()
            await name.click()
            await page.wait_for_url(re.compile(rf"/allies/{ALLY}/people/"))
            assert skill in await page.inner_text("main")
            await clean(page, "allied-profile")
    finally:
        async with sign_in(mesh, "olivia") as acme:
            await post(acme, CONSOLE, f"{CONSOLE}/{ident}/end", {"confirmed": "yes"})
