"""Directory sync in Chromium: a partner admin creates a SCIM token on the team page and sees
it once; a real SCIM client (httpx, as Entra ID or Okta would) creates a person with it, who
then appears on the team page; the admin revokes the token and the directory is refused."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.portal.browser import (
    ARTIFACTS,
    PHONE,
    SERIOUS,
    axe_source,
    axe_violations,
    signed_in_page,
)
from tests.portal.mesh import Mesh

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


async def _scim(method: str, url: str, secret: str, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/scim+json"}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.request(method, url, headers=headers, json=body)


def _user(tag: str) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": f"synced.{tag}@fabrikam.example",
        "name": {"givenName": "Sync", "familyName": f"Person {tag}"},
        "displayName": f"Sync Person {tag}",
        "emails": [{"value": f"synced.{tag}@fabrikam.example", "type": "work", "primary": True}],
        "active": True,
    }


@pytest.mark.browser
async def test_admin_creates_a_token_the_directory_provisions_then_it_is_revoked(
    browser: Any, mesh: Mesh
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    tag = uuid.uuid4().hex[:6]
    name = f"Entra ID {tag}"
    async with signed_in_page(browser, mesh, "fatima") as page:
        await page.get_by_role("link", name="Team").click()
        await page.get_by_role("heading", name="Directory sync (SCIM)").wait_for()
        await page.fill("#scim-name", name)
        await page.get_by_role("button", name="Create token").click()
        await page.get_by_text(f"Token “{name}” created").wait_for()
        secret = await page.locator("#scim-secret").input_value()
        url = await page.locator("#scim-url").input_value()
        assert secret.startswith("pmscim_") and url == f"{mesh.issuer}/scim/v2"
        await page.locator("#scim").screenshot(path=str(ARTIFACTS / "portal-directory-sync.png"))
        serious = [v for v in await axe_violations(page, axe_source()) if v["impact"] in SERIOUS]
        assert not serious, serious

        await page.goto(mesh.portal_url + "/team")  # shown once: never again
        assert await page.locator("#scim-secret").count() == 0
        assert secret not in await page.content()
        row = page.locator("#scim tbody tr", has_text=name)
        assert "never" in await row.locator('td[data-label="Used"]').inner_text()

        created = await _scim("POST", f"{url}/Users", secret, _user(tag))
        assert created.status_code == 201, created.text
        await page.reload()
        people = page.locator("#people")
        await people.get_by_text(f"Sync Person {tag}").wait_for()
        assert "active" in await people.locator("tr", has_text=f"Sync Person {tag}").inner_text()
        assert "never" not in await row.locator('td[data-label="Used"]').inner_text()

        await page.get_by_role("button", name=f"Revoke token {name}").click()
        await page.get_by_text("Directory token revoked").wait_for()
        assert "revoked" in await row.locator('td[data-label="State"]').inner_text()
        assert await page.get_by_role("button", name=f"Revoke token {name}").count() == 0

    refused = await _scim("POST", f"{url}/Users", secret, _user(f"{tag}b"))
    assert refused.status_code == 401, refused.text
    assert (await _scim("GET", f"{url}/Users", secret)).status_code == 401


@pytest.mark.browser
async def test_the_section_fits_a_phone(browser: Any, mesh: Mesh) -> None:
    async with signed_in_page(browser, mesh, "fatima", **PHONE) as page:
        await page.goto(mesh.portal_url + "/team")
        await page.fill("#scim-name", f"Phone {uuid.uuid4().hex[:6]}")
        await page.get_by_role("button", name="Create token").click()
        await page.locator("#scim-secret").wait_for()
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"the team page scrolls sideways by {overflow}px"
        scroller = page.locator("#scim .scroll").first
        assert await scroller.evaluate("e => e.scrollWidth - e.clientWidth") <= 1
        await page.locator("#scim").screenshot(path=str(ARTIFACTS / "portal-phone-scim.png"))
