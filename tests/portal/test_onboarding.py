"""Onboarding in the portal: a partner admin invites, the invitee follows the link, signs up at
identity and lands signed in on the first-run page (in Chromium); the team page's refusals
over HTTP. Identity enforces who may invite and change whom; the portal only asks it."""

from __future__ import annotations

import re
import uuid
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.portal.browser import PHONE, axe_source, axe_violations, signed_in_page
from tests.portal.login import csrf_of, form_of, sign_in
from tests.portal.mesh import Mesh

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "a-new-members-password"


def _link(html: str) -> str:
    match = re.search(r'id="inv-link" class="copy-source" readonly value="([^"]+)"', html)
    assert match, "no invitation link on the page"
    return unescape(match.group(1))


def _person_id(html: str, name: str) -> str:
    match = re.search(r'<tr id="person-([0-9a-f]+)">.{0,400}?' + re.escape(name), html, re.S)
    assert match, f"{name} is not listed"
    return match.group(1)


@pytest.mark.browser
class TestInviteToFirstLogin:
    async def test_admin_invites_and_the_invitee_lands_on_the_first_run_page(
        self, browser: Any, mesh: Mesh
    ) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        username = f"iris{uuid.uuid4().hex[:6]}"
        async with signed_in_page(browser, mesh, "nadia") as admin:
            await admin.get_by_role("link", name="Team").click()
            await admin.get_by_role("heading", name="People of Northwind Logistics").wait_for()
            await admin.fill("#inv-email", f"{username}@northwind.example")
            await admin.get_by_role("button", name="Create invitation").click()
            link = await admin.locator("#inv-link").input_value()
            assert link.startswith(f"{mesh.portal_url}/join?invitation=")
            mail = await admin.locator("#inv-mail").input_value()
            assert link in mail and "Nadia Novak invites you to join Northwind" in mail
            await admin.screenshot(path=str(ARTIFACTS / "portal-desktop-team.png"), full_page=True)
            axe = axe_source()
            serious = [
                v
                for v in await axe_violations(admin, axe)
                if v["impact"] in ("serious", "critical")
            ]
            assert not serious, serious
        ctx = await browser.new_context(**PHONE)
        ctx.set_default_timeout(10_000)
        try:
            page = await ctx.new_page()
            await page.goto(link)
            assert page.url.startswith(mesh.issuer + "/signup")
            assert "invited to join Northwind Logistics" in await page.inner_text("main")
            assert await page.input_value("#email") == f"{username}@northwind.example"
            await page.fill("#name", "Iris Invited")
            await page.fill("#username", username)
            await page.fill("#password", PASSWORD)
            await page.get_by_role("button", name="Create account").click()
            await page.wait_for_url(mesh.portal_url + "/welcome")
            await page.get_by_role("heading", name="Welcome, Iris Invited").wait_for()
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"the first-run page scrolls sideways by {overflow}px"
            await page.screenshot(path=str(ARTIFACTS / "portal-phone-welcome.png"), full_page=True)
            serious = [
                v for v in await axe_violations(page, axe) if v["impact"] in ("serious", "critical")
            ]
            assert not serious, serious
            await page.fill("#headline", "Fleet planner at Northwind")
            await page.fill("#skills", "route planning, fleet")
            await page.get_by_role("button", name="Save my profile").click()
            await page.get_by_text("Profile saved.").wait_for()
            assert "Fleet planner at Northwind" in await page.inner_text("main")
            assert "Northwind Logistics" in await page.inner_text("main")
        finally:
            await ctx.close()


class TestTeamPage:
    async def test_lists_own_company_only_and_gives_a_link(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "carlos", "/team") as c:
            page = c.last_page.text
            assert "Chloe Chen" in page and "Noah Nguyen" not in page
            made = await c.post(
                "/team/invitations", data={"csrf": csrf_of(page), "email": "x@contoso.example"}
            )
            assert made.status_code == 200
            assert _link(made.text).startswith(f"{mesh.portal_url}/join?invitation=")

    async def test_members_do_not_get_the_team_page(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "chloe") as c:
            assert "/team" not in c.last_page.text
            assert (await c.get("/team")).status_code == 404
            csrf = csrf_of(c.last_page.text)
            refused = await c.post("/team/invitations", data={"csrf": csrf})
            assert refused.status_code == 404
            noah = mesh.subs["noah"]
            off = await c.post(f"/team/people/{noah}/active", data={"csrf": csrf, "active": "0"})
            assert off.status_code == 404

    async def test_an_admin_cannot_suspend_or_promote_in_another_company(self, mesh: Mesh) -> None:
        chloe = mesh.subs["chloe"]
        async with sign_in(mesh, "nadia", "/team") as c:
            csrf = csrf_of(c.last_page.text)
            off = await c.post(f"/team/people/{chloe}/active", data={"csrf": csrf, "active": "0"})
            assert off.status_code == 403 and "own company" in off.text
            up = await c.post(f"/team/people/{chloe}/roles", data={"csrf": csrf, "admin": "1"})
            assert up.status_code == 403
        async with sign_in(mesh, "carlos", "/team") as c:  # chloe is untouched
            row = c.last_page.text.split(f'id="person-{chloe}"')[1].split("</tr>")[0]
            assert "Suspend Chloe Chen" in row and "Make admin" in row

    async def test_suspend_and_reinstate_a_colleague(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "carlos", "/team") as c:
            page = c.last_page.text
            made = await c.post("/team/invitations", data={"csrf": csrf_of(page)})
            link = _link(made.text)
        # the invitee signs up through the link with a plain client
        username = f"sam{uuid.uuid4().hex[:6]}"
        async with httpx.AsyncClient(follow_redirects=True, timeout=15) as b:
            signup = await b.get(link)
            action, fields = form_of(signup.text)
            fields.update(name="Sam Suspended", username=username, password=PASSWORD)
            landed = await b.post(str(signup.url.join(action)), data=fields)
            assert str(landed.url) == f"{mesh.portal_url}/welcome", landed.url
            assert (await b.get(f"{mesh.portal_url}/directory")).status_code == 200
            async with sign_in(mesh, "carlos", "/team") as c:
                sam = _person_id(c.last_page.text, "Sam Suspended")
                csrf = csrf_of(c.last_page.text)
                off = await c.post(f"/team/people/{sam}/active", data={"csrf": csrf, "active": "0"})
                assert "Reinstate Sam Suspended" in off.text
                # the suspended person's portal session is cut off at its next request
                cut = await b.get(f"{mesh.portal_url}/directory")
                assert str(cut.url).startswith(mesh.issuer), cut.url
                on = await c.post(f"/team/people/{sam}/active", data={"csrf": csrf, "active": "1"})
                assert "Suspend Sam Suspended" in on.text


class TestOperatorAddsACompany:
    async def test_company_and_first_admin_in_one_step(self, mesh: Mesh) -> None:
        slug = f"globex-{uuid.uuid4().hex[:6]}"
        async with sign_in(mesh, "olivia", "/operator") as c:
            made = await c.post(
                "/operator/partners",
                data={
                    "csrf": csrf_of(c.last_page.text),
                    "slug": slug,
                    "name": "Globex",
                    "admin_email": "hank@globex.example",
                },
            )
            assert made.status_code == 200
            assert "Invitation ready for the first admin of Globex" in made.text
            assert "Partner admin" in made.text
            assert _link(made.text).startswith(f"{mesh.portal_url}/join?invitation=")

    async def test_a_partner_admin_cannot_add_a_company(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "nadia") as c:
            csrf = csrf_of(c.last_page.text)
            data = {"csrf": csrf, "slug": "nope", "name": "Nope", "admin_email": "a@b.example"}
            assert (await c.post("/operator/partners", data=data)).status_code == 404

    async def test_a_join_link_without_an_invitation_is_explained(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as b:
            resp = await b.get("/join")
            assert resp.status_code == 400 and "invitation link is incomplete" in resp.text
