"""Direct conversations in the portal: "Message" on a hover card and on a profile opens the
one private workspace of two people; a stranger is told why not; nobody else reads it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.portal.browser import ARTIFACTS, SERIOUS, axe_source, axe_violations, signed_in_page
from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import Mesh

pytestmark = pytest.mark.browser


class TestMessage:
    async def test_from_a_hover_card_and_a_profile_to_the_same_conversation(
        self, browser: Any, mesh: Mesh
    ) -> None:
        noah, nadia = mesh.subs["noah"], mesh.subs["nadia"]
        async with signed_in_page(browser, mesh, "nadia") as page:
            await page.goto(f"{mesh.portal_url}/threads/{mesh.seeded['thread']}")
            await page.locator(f"#post-first a[data-card='{noah}']").hover()
            card = page.locator("#hovercard")
            await card.get_by_role("button", name="Message").click()
            await page.wait_for_url(re.compile(r".*/workspaces/[^/?]+\?done=conversation"))
            first = page.url.split("/workspaces/")[1].split("?")[0]
            await page.get_by_role("status").filter(has_text="only the two of you").wait_for()
            members = await page.locator("#members").inner_text()
            assert "Noah Nguyen" in members and "Nadia" in members
            assert await page.locator("#add-person").count() == 0, "it stays two"
            await page.get_by_text("Start a thread").click()
            await page.fill("#body-title", "Pallets for Contoso")
            await page.fill("#body-text", "Can we talk at 3?")
            await page.get_by_role("button", name="Start thread").click()
            await page.get_by_text("Pallets for Contoso").first.wait_for()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "portal-desktop-conversation.png"))
            found = await axe_violations(page, axe_source())
            assert [v for v in found if v["impact"] in SERIOUS] == []
        async with signed_in_page(browser, mesh, "noah") as page:
            await page.goto(f"{mesh.portal_url}/people/{nadia}")
            await page.get_by_role("button", name=re.compile("^Message ")).click()
            await page.wait_for_url(re.compile(r".*/workspaces/[^/?]+\?done=conversation"))
            assert page.url.split("/workspaces/")[1].split("?")[0] == first, "reused"
            assert "Pallets for Contoso" in await page.inner_text("main")
        # A third person, even the other company's admin, reads nothing of it.
        async with sign_in(mesh, "carlos") as carlos:
            resp = await carlos.get(f"/workspaces/{first}")
            assert resp.status_code == 404
            assert "Pallets for Contoso" not in resp.text
            listed = await carlos.get("/workspaces")
            assert first not in listed.text

    async def test_a_stranger_is_told_why_not(self, browser: Any, mesh: Mesh) -> None:
        noah = mesh.subs["noah"]
        async with signed_in_page(browser, mesh, "felix") as page:
            await page.goto(f"{mesh.portal_url}/people/{noah}")
            await page.get_by_role("button", name="Message Noah Nguyen").click()
            await page.get_by_role("heading", name="Cannot message Noah Nguyen").wait_for()
            said = await page.get_by_role("alert").inner_text()
            assert "not connected yet" in said and "introduce" in said, said
            assert page.url == f"{mesh.portal_url}/people/{noah}"  # the address stays put
            await page.get_by_role("link", name="Back to Noah Nguyen").wait_for()
            found = await axe_violations(page, axe_source())
            assert [v for v in found if v["impact"] in SERIOUS] == []
        async with sign_in(mesh, "felix") as felix:
            token = csrf_of(felix.last_page.text)
            resp = await felix.post("/conversations", data={"csrf": token, "person": noah})
            assert resp.status_code == 403
            refused = await felix.post("/conversations", data={"person": noah})
            assert refused.status_code in (403, 404)  # no CSRF token: refused before anything
