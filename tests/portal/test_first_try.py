"""What a new user hits first, in a real browser: the operator console shows the saved
membership policy, @mentions complete and notify, the demo's connector, flow and webhook
examples succeed, every page fits a phone and passes an accessibility check."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
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
from tests.portal.login import sign_in
from tests.portal.mesh import Mesh

pytestmark = pytest.mark.browser


async def wait_for_text(page: Page, url: str, text: str, tries: int = 60) -> str:
    """Reload ``url`` until its main content shows ``text`` (asynchronous work: flows, webhooks)."""
    body = ""
    for _ in range(tries):
        await page.goto(url)
        body = await page.inner_text("main")
        if text in body:
            return body
        await asyncio.sleep(0.25)
    raise AssertionError(f"{text!r} never showed on {url}:\n{body[:2000]}")


class TestOperatorConsole:
    async def test_shows_the_saved_policy_and_saving_keeps_it(
        self, browser: Any, mesh: Mesh
    ) -> None:
        admin = f"{mesh.issuer}/admin/ecosystem"
        async with httpx.AsyncClient() as http:
            before = (await http.get(admin, headers=mesh.bearer("olivia"))).json()
        assert before["membership_policy"] == "invite"
        async with signed_in_page(browser, mesh, "olivia") as page:
            await page.goto(f"{mesh.portal_url}/operator")
            assert await page.locator("#pol").input_value() == "invite"
            selected = page.locator("#pol option:checked")
            assert await selected.inner_text() == "invite only"
            await page.get_by_role("button", name="Save policy").click()
            await page.get_by_text("Membership policy saved: invite.").wait_for()
            assert await page.locator("#pol").input_value() == "invite"
        async with httpx.AsyncClient() as http:
            after = (await http.get(admin, headers=mesh.bearer("olivia"))).json()
        assert after["membership_policy"] == "invite", "saving unchanged must not open sign-up"

    async def test_slug_patterns_are_valid_and_checked_in_the_browser(
        self, browser: Any, mesh: Mesh
    ) -> None:
        async with signed_in_page(browser, mesh, "olivia") as page:
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{mesh.portal_url}/operator")
            slug = page.locator("#cs")
            await slug.fill("Not A Slug")
            assert await slug.evaluate("e => e.validity.patternMismatch")
            await slug.fill("cold-chain-2")
            assert await slug.evaluate("e => e.validity.valid")
            await page.goto(f"{mesh.portal_url}/connectors")
            assert not [e for e in errors if "pattern" in e], errors

    async def test_fits_a_phone(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "olivia", **PHONE) as page:
            await page.goto(f"{mesh.portal_url}/operator")
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"the operator console scrolls sideways by {overflow}px"


class TestNotAllowedAndFavicon:
    async def test_company_edit_says_not_allowed_to_others(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "fatima") as fatima:
            resp = await fatima.get("/companies/northwind/edit")
            assert resp.status_code == 403
            assert "Not allowed" in resp.text and "Northwind Logistics" in resp.text
            missing = await fatima.get("/companies/no-such-company/edit")
            assert missing.status_code == 404
            refused = await fatima.post("/companies/northwind/edit", data={"description": "x"})
            assert refused.status_code in (403, 404)  # CSRF refuses before the role check
        async with sign_in(mesh, "nadia") as nadia:  # control: the company's own admin
            assert (await nadia.get("/companies/northwind/edit")).status_code == 200

    async def test_favicon(self, mesh: Mesh) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as anyone:
            resp = await anyone.get("/favicon.ico")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("image/svg+xml")
        assert resp.text.startswith("<svg")


class TestMentions:
    async def test_autocomplete_inserts_the_handle_and_the_person_is_notified(
        self, browser: Any, mesh: Mesh
    ) -> None:
        thread = mesh.seeded["thread"]
        async with signed_in_page(browser, mesh, "chloe") as page:
            await page.goto(f"{mesh.portal_url}/threads/{thread}")
            reply = page.get_by_label("Your reply")
            await reply.press_sequentially("Thanks @fel")
            options = page.get_by_role("option")
            await options.first.wait_for()
            assert "Felix Fischer" in await options.first.inner_text()
            assert await reply.get_attribute("aria-expanded") == "true"
            await reply.press("Enter")
            assert await reply.input_value() == "Thanks @felix "
            assert await page.get_by_role("listbox").is_hidden()
            await reply.press_sequentially("for the forecast")
            await page.get_by_role("button", name="Post").click()
            await page.locator(".post", has_text="for the forecast").wait_for()
        async with mesh.api() as api:
            notes = await api.get("/notifications", headers=mesh.bearer("felix"))
        assert notes.status_code == 200, notes.text
        assert any(n["actor"] == mesh.subs["chloe"] for n in notes.json()["items"]), notes.text

    async def test_suggestions_need_a_session_and_escape_closes(
        self, browser: Any, mesh: Mesh
    ) -> None:
        async with httpx.AsyncClient(base_url=mesh.portal_url) as anonymous:
            resp = await anonymous.get("/api/mentions", params={"q": "fel"})
            assert resp.status_code == 401
        async with signed_in_page(browser, mesh, "noah") as page:
            await page.goto(f"{mesh.portal_url}/threads/{mesh.seeded['thread']}")
            reply = page.get_by_label("Your reply")
            await reply.press_sequentially("@ch")
            await page.get_by_role("option").first.wait_for()
            await reply.press("Escape")
            assert await page.get_by_role("listbox").is_hidden()
            assert await reply.input_value() == "@ch"


class TestDemoJourneys:
    async def test_stock_level_and_mesh_health_answer(
        self, browser: Any, mesh: Mesh, demo: dict[str, Any]
    ) -> None:
        async with signed_in_page(browser, mesh, "nadia") as page:
            await page.goto(f"{mesh.portal_url}/connectors")
            await page.select_option("#inv-op", "contoso.stock-level")
            # The input starts from the operation's schema: no JSON to write by hand.
            assert await page.locator("#inv-in").input_value() == '{"sku": "A-1"}'
            await page.get_by_role("button", name="Call").click()
            result = page.locator("section", has_text="Result of contoso.stock-level")
            await result.wait_for()
            text = await result.inner_text()
            assert "HTTP 200" in text and '"available"' in text, text
            # The picker keeps the operation just called, with its input.
            assert await page.locator("#inv-op").input_value() == "contoso.stock-level"
            assert await page.locator("#inv-in").input_value() == '{"sku": "A-1"}'
            await page.select_option("#inv-op", "fabrikam.mesh-health")
            assert await page.locator("#inv-in").input_value() == "{}"
            await page.get_by_role("button", name="Call").click()
            result = page.locator("section", has_text="Result of fabrikam.mesh-health")
            await result.wait_for()
            assert '"mesh": "up"' in await result.inner_text()

    async def test_the_prefilled_flow_runs_across_three_partners_and_webhooks_deliver(
        self, browser: Any, mesh: Mesh, demo: dict[str, Any]
    ) -> None:
        async with signed_in_page(browser, mesh, "nadia") as page:
            await page.goto(f"{mesh.portal_url}/connectors/flows")
            await page.get_by_role("button", name="Start").click()
            await page.wait_for_url(f"{mesh.portal_url}/connectors/flows/*")
            body = await wait_for_text(page, page.url, "completed")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "portal-desktop-flow.png"), full_page=True)
            for step in ("forecast", "reserve", "ship"):
                assert step in body
            assert "failed" not in body
        # northwind's back-end reports the shipment; contoso's subscription delivers it.
        async with signed_in_page(browser, mesh, "carlos") as page:
            url = f"{mesh.portal_url}/connectors/webhooks"
            await wait_for_text(page, url, "delivered")
            row = page.locator("tr", has_text="shipment.delivered").first
            assert "HTTP 204" in await row.inner_text()
            await row.get_by_role("button", name="Replay").click()
            await page.wait_for_url(url + "*")
            await wait_for_text(page, url, "delivered")
        async with httpx.AsyncClient() as http:
            inbox = (await http.get(f"{demo['contoso']}/webhooks")).json()["items"]
        shipped = [m for m in inbox if m["payload"]["type"] == "shipment.delivered"]
        assert len({m["webhook_id"] for m in shipped}) >= 1
        assert len(shipped) >= 2, "the replay delivered the same webhook again"
        assert all(m["signature_checked"] for m in shipped)

    async def test_the_prefilled_subscription_is_accepted(
        self, browser: Any, mesh: Mesh, demo: dict[str, Any]
    ) -> None:
        async with signed_in_page(browser, mesh, "fatima") as page:
            await page.goto(f"{mesh.portal_url}/connectors/webhooks")
            assert await page.locator("#s-source").input_value() == "northwind"
            assert await page.locator("#s-types").input_value() == "shipment.delivered"
            assert await page.locator("#s-url").input_value() == f"{demo['fabrikam']}/webhooks"
            await page.get_by_role("button", name="Subscribe").click()
            await page.get_by_role("heading", name="Subscription created").wait_for()
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(
                path=str(ARTIFACTS / "portal-desktop-webhooks.png"), full_page=True
            )


PAGES = {
    "home": "/",
    "directory": "/directory",
    "person": "/people/{noah}",
    "person-edit": "/people/{me}/edit",
    "company": "/companies/northwind",
    "forums": "/forums",
    "category": "/forums/logistics",
    "thread": "/threads/{thread}",
    "introductions": "/introductions",
    "notifications": "/notifications",
    "workspaces": "/workspaces",
    "dashboards": "/dashboards",
    "connectors": "/connectors",
    "flows": "/connectors/flows",
    "webhooks": "/connectors/webhooks",
    "broker": "/broker",
    "moderation": "/moderation",
    "operator": "/operator",
}
# Who sees each page as its main user: operators have no company (no webhooks page).
VIEWER = {"broker": "bruno", "operator": "olivia", "moderation": "bruno"}


class TestEveryPage:
    @pytest.mark.parametrize("scheme", ["light", "dark"])
    async def test_phone_width_screenshots_and_no_serious_accessibility_violation(
        self, browser: Any, mesh: Mesh, demo: dict[str, Any], scheme: str
    ) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        axe = axe_source()
        found: dict[str, list[Any]] = {}
        suffix = "" if scheme == "light" else "-dark"
        for viewer in sorted({VIEWER.get(name, "nadia") for name in PAGES}):
            async with signed_in_page(browser, mesh, viewer, color_scheme=scheme, **PHONE) as page:
                values = {
                    "noah": mesh.subs["noah"],
                    "me": mesh.subs[viewer],
                    "thread": mesh.seeded["thread"],
                }
                for name, path in PAGES.items():
                    if VIEWER.get(name, "nadia") != viewer:
                        continue
                    resp = await page.goto(mesh.portal_url + path.format(**values))
                    assert resp.status == 200, f"{name}: {resp.status}"
                    overflow = await page.evaluate(
                        "document.documentElement.scrollWidth"
                        " - document.documentElement.clientWidth"
                    )
                    assert overflow <= 1, f"{name} scrolls sideways by {overflow}px on a phone"
                    await page.screenshot(
                        path=str(ARTIFACTS / f"portal-phone{suffix}-{name}.png"), full_page=True
                    )
                    found[name] = await axe_violations(page, axe)
                # The check can fail: an image without a text alternative is reported.
                await page.evaluate(
                    "document.querySelector('main').insertAdjacentHTML("
                    "'beforeend', '<img src=\"/favicon.ico\">')"
                )
                assert "image-alt" in {v["id"] for v in await axe_violations(page, axe)}
        (ARTIFACTS / f"axe-results-{scheme}.txt").write_text(
            "".join(
                f"{name}: {sum(v['impact'] in SERIOUS for v in vs)} serious or critical, "
                f"{len(vs)} in all {[(v['id'], v['impact']) for v in vs]}\n"
                for name, vs in found.items()
            )
        )
        serious = {k: [v for v in vs if v["impact"] in SERIOUS] for k, vs in found.items()}
        assert {k: v for k, v in serious.items() if v} == {}


class TestRoughEdges:
    async def test_saving_a_profile_confirms_it(self, browser: Any, mesh: Mesh) -> None:
        async with signed_in_page(browser, mesh, "felix") as page:
            await page.goto(f"{mesh.portal_url}/people/{mesh.subs['felix']}/edit")
            await page.get_by_role("textbox", name="Headline").fill("Demand forecasts for Fabrikam")
            await page.get_by_role("textbox", name="Links").fill(
                "Forecast notes https://fabrikam.example/notes\nhttps://fabrikam.example/"
            )
            await page.get_by_role("button", name="Save").click()
            await page.get_by_role("status").filter(has_text="Profile saved.").wait_for()
            assert "Demand forecasts for Fabrikam" in await page.inner_text("main")
            links = page.locator("main a[rel~=noopener]")
            assert await links.all_inner_texts() == ["Forecast notes", "fabrikam.example"]
            await page.goto(f"{mesh.portal_url}/people/{mesh.subs['felix']}/edit")
            kept = await page.get_by_role("textbox", name="Links").input_value()
            assert kept.splitlines() == [
                "Forecast notes https://fabrikam.example/notes",
                "fabrikam.example https://fabrikam.example/",
            ]
            await page.get_by_role("textbox", name="Links").fill("Broken ftp://nowhere")
            await page.get_by_role("button", name="Save").click()
            alert = page.get_by_role("alert").filter(has_text="Not saved")
            await alert.wait_for()
            said = await alert.inner_text()
            assert "links › url is not in the expected form" in said, said
            assert "does not match its schema" not in said

    async def test_times_show_in_the_viewers_zone(self, browser: Any, mesh: Mesh) -> None:
        thread = f"{mesh.portal_url}/threads/{mesh.seeded['thread']}"
        shown = {}
        for zone in ("Asia/Tokyo", "America/New_York"):
            async with signed_in_page(
                browser, mesh, "noah", timezone_id=zone, locale="en-US"
            ) as page:
                await page.goto(thread)
                stamp = page.locator("main time[datetime]").first
                shown[zone] = await stamp.inner_text()
                assert (await stamp.get_attribute("datetime")).endswith("Z")
        assert "GMT+9" in shown["Asia/Tokyo"], shown
        assert "EST" in shown["America/New_York"] or "EDT" in shown["America/New_York"], shown
        assert "UTC" not in shown["Asia/Tokyo"]

    async def test_a_failed_post_leaves_the_address_on_the_page(
        self, browser: Any, mesh: Mesh
    ) -> None:
        async with signed_in_page(browser, mesh, "olivia") as page:
            await page.goto(f"{mesh.portal_url}/operator")
            await page.fill("#cs", "logistics")  # exists already
            await page.fill("#cn", "Logistics again")
            await page.get_by_role("button", name="Create category").click()
            await page.get_by_role("alert").filter(has_text="Not done").wait_for()
            assert page.url == f"{mesh.portal_url}/operator"
            fresh = f"reefers-{uuid.uuid4().hex[:8]}"  # the session's mesh is shared
            await page.fill("#cs", fresh)
            await page.fill("#cn", "Reefer logistics")
            await page.get_by_role("button", name="Create category").click()
            await page.get_by_role("status").filter(has_text="Category created.").wait_for()

    async def test_names_where_ids_showed(self, mesh: Mesh, demo: dict[str, Any]) -> None:
        async with sign_in(mesh, "olivia") as olivia:
            page = (await olivia.get("/operator")).text
            assert "1 thread<" in page or "1 thread " in page or "threads" in page
            assert "1 threads" not in page
            assert ">ACME Corp</a></td>" in page  # the people table names companies
        async with sign_in(mesh, "nadia") as nadia:
            catalogue = (await nadia.get("/connectors")).text
            assert ">Fabrikam Analytics</a>" in catalogue
            directory = (await nadia.get("/directory", params={"kind": "person"})).text
            assert ">Contoso Manufacturing</a>" in directory


class TestLooks:
    async def test_dark_mode_follows_the_system(self, browser: Any, mesh: Mesh) -> None:
        colours = {}
        for scheme in ("light", "dark"):
            async with signed_in_page(browser, mesh, "noah", color_scheme=scheme) as page:
                colours[scheme] = await page.evaluate(
                    "getComputedStyle(document.body).backgroundColor"
                )
        assert colours["light"] == "rgb(246, 248, 250)"
        assert colours["dark"] == "rgb(13, 17, 23)"

    async def test_avatars_and_logos(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "chloe") as chloe:
            person = (await chloe.get(f"/people/{mesh.subs['noah']}")).text
            assert 'class="avatar tone' in person and ">NN</span>" in person
            company = (await chloe.get("/companies/fabrikam")).text
            assert 'class="avatar logo tone' in company and ">FA</span>" in company

    async def test_hover_card_has_an_avatar_actions_and_clickable_terms(
        self, browser: Any, mesh: Mesh
    ) -> None:
        noah = mesh.subs["noah"]
        async with signed_in_page(browser, mesh, "bruno") as page:
            await page.goto(f"{mesh.portal_url}/threads/{mesh.seeded['thread']}")
            name = page.locator(f".post a[data-card='{noah}']").first
            await name.hover()
            card = page.locator("#hovercard")
            await card.locator(".hovercard-actions").wait_for()
            assert await card.locator(".avatar").inner_text() == "NN"
            actions = await card.locator(".hovercard-actions a").all_inner_texts()
            assert actions == ["Profile", "Workspace", "Introduce"]  # bruno is a broker
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "portal-desktop-hovercard.png"))
            box, link = await card.bounding_box(), await name.bounding_box()
            assert box["y"] + box["height"] <= link["y"] or box["y"] >= link["y"] + link["height"]
            term = card.locator(".cloud a").first
            label = await term.inner_text()
            await term.click()
            await page.wait_for_url("**/directory?q=*")
            assert await page.locator("#q").input_value() == label
            await page.goto(f"{mesh.portal_url}/people/{noah}")
            await page.get_by_role("link", name="Open a workspace with Noah Nguyen").click()
            assert await page.locator("#ws-members").input_value() == noah
            assert "Noah Nguyen" in await page.locator("#ws-title").input_value()
