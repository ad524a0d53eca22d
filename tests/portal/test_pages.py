"""Pages over plain HTTP against the real mesh: roles, ownership and visibility on every page."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import Mesh
from tests.support.text import first_group


async def post_form(
    client: httpx.AsyncClient, page_path: str, action: str, data: dict[str, Any]
) -> httpx.Response:
    token = csrf_of((await client.get(page_path)).text)
    return await client.post(action, data={**data, "csrf": token})


class TestConsoles:
    async def test_operator_console_is_for_operators_only(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "olivia") as client:
            page = await client.get("/operator")
            assert page.status_code == 200
            assert "Nadia Novak" in page.text and "Contoso Manufacturing" in page.text
        for username in ("bruno", "nadia", "noah"):
            async with sign_in(mesh, username) as client:
                assert (await client.get("/operator")).status_code == 404, username

    async def test_broker_console_is_for_brokers_and_operators(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "bruno") as client:
            page = await client.get("/broker")
            assert page.status_code == 200
            assert "Verify companies and people" in page.text and "Fabrikam Analytics" in page.text
        for username in ("nadia", "felix"):
            async with sign_in(mesh, username) as client:
                assert (await client.get("/broker")).status_code == 404, username

    async def test_broker_introduces_two_people_who_then_see_it(self, mesh: Mesh) -> None:
        felix, carlos = mesh.subs["felix"], mesh.subs["carlos"]
        async with sign_in(mesh, "bruno") as client:
            page = await client.get("/broker")
            assert (
                f'<option value="{felix}">Felix Fischer (Fabrikam Analytics)</option>' in page.text
            )
            resp = await post_form(
                client,
                "/broker",
                "/broker/propose",
                {"a": felix, "b": carlos, "note": "forecasts for plants"},
            )
            assert resp.url.path == "/broker" and "Not done" not in resp.text
        async with sign_in(mesh, "carlos") as client:
            page = await client.get("/introductions")
            waiting = page.text.split('id="h-wait"')[1].split("</section>")[0]
            assert "forecasts for plants" in waiting and f'data-card="{felix}"' in waiting
            home = (await client.get("/")).text.split('id="h-intros"')[1].split("</section>")[0]
            assert "Felix Fischer" in home
        async with sign_in(mesh, "bruno") as client:
            home = (await client.get("/")).text.split('id="h-intros"')[1].split("</section>")[0]
            assert "Felix Fischer" not in home, "the broker is not a party to it"
            resp = await post_form(client, "/broker", "/broker/propose", {"a": felix, "b": carlos})
            assert "Not done" in resp.text and "already" in resp.text

    async def test_broker_verifies_a_partner_and_the_badge_shows(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "bruno") as client:
            resp = await post_form(
                client,
                "/broker",
                "/broker/verify",
                {
                    "kind": "company",
                    "target": "fabrikam",
                    "action": "verify",
                    "note": "met them",
                },
            )
            assert resp.status_code == 200 and resp.url.path == "/broker"
        async with sign_in(mesh, "felix") as client:
            page = await client.get("/companies/fabrikam")
            assert "✓ Verified" in page.text
            resp = await post_form(
                client,
                "/",
                "/broker/verify",
                {
                    "kind": "company",
                    "target": "northwind",
                    "action": "verify",
                },
            )
            assert resp.status_code == 404


class TestProfiles:
    async def test_a_profile_shows_its_tag_cloud(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix") as client:
            page = await client.get(f"/people/{mesh.subs['noah']}")
            cloud = re.search(r'<ul class="cloud".*?</ul>', page.text, re.S)
            assert cloud and "cold chain" in cloud.group(0)

    async def test_directory_search_and_filters(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix") as client:
            page = await client.get("/directory", params={"q": "cold chain"})
            assert page.status_code == 200 and "Noah Nguyen" in page.text
            page = await client.get("/directory", params={"kind": "company"})
            assert "Northwind Logistics" in page.text and "Fabrikam Analytics" in page.text
            page = await client.get("/directory", params={"partner": "contoso"})
            assert "Chloe Chen" in page.text and "Noah Nguyen" not in page.text

    async def test_edit_my_own_profile_only(self, mesh: Mesh) -> None:
        me, other = mesh.subs["felix"], mesh.subs["chloe"]
        async with sign_in(mesh, "felix") as client:
            refused = await client.get(f"/people/{other}/edit")
            assert refused.status_code == 403 and "Not allowed" in refused.text
            resp = await post_form(
                client,
                f"/people/{me}/edit",
                f"/people/{me}/edit",
                {
                    "headline": "Forecasting <b>analyst</b>",
                    "skills": "forecasting, demand planning",
                    "vis_headline": "ecosystem",
                },
            )
            assert resp.url.path == f"/people/{me}"
            assert "Forecasting &lt;b&gt;analyst&lt;/b&gt;" in resp.text
            assert "demand planning" in resp.text
            resp = await post_form(client, "/", f"/people/{other}/edit", {"headline": "hacked"})
            assert resp.status_code == 403
            page = await client.get(f"/people/{other}")
            assert "hacked" not in page.text

    async def test_partner_admins_edit_their_company_only(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "nadia") as client:
            resp = await post_form(
                client,
                "/companies/northwind/edit",
                "/companies/northwind/edit",
                {"description": "Cold chain across the north", "size": "200"},
            )
            assert resp.url.path == "/companies/northwind"
            assert "Cold chain across the north" in resp.text
            assert "Company profile saved." in resp.text
            assert (await client.get("/companies/contoso/edit")).status_code == 403
        async with sign_in(mesh, "noah") as client:  # a member, not an admin
            refused = await client.get("/companies/northwind/edit")
            assert refused.status_code == 403 and "Not allowed" in refused.text
            assert "Edit company profile" not in (await client.get("/companies/northwind")).text


class TestForums:
    async def test_reply_renders_markdown_safely_with_a_hover_name(self, mesh: Mesh) -> None:
        thread = mesh.seeded["thread"]
        async with sign_in(mesh, "felix") as client:
            body = "We can **forecast** demand <script>alert('x')</script>"
            resp = await post_form(
                client, f"/threads/{thread}", f"/threads/{thread}/reply", {"body": body}
            )
            assert resp.status_code == 200
            assert "<strong>forecast</strong>" in resp.text
            assert "<script>alert" not in resp.text
            assert f'data-card="{mesh.subs["felix"]}"' in resp.text

    async def test_an_empty_reply_keeps_the_page_with_an_error(self, mesh: Mesh) -> None:
        thread = mesh.seeded["thread"]
        async with sign_in(mesh, "felix") as client:
            resp = await post_form(
                client, f"/threads/{thread}", f"/threads/{thread}/reply", {"body": "   "}
            )
            assert resp.status_code == 422
            assert "Not posted" in resp.text


class TestModeration:
    async def _chloe_post(self, mesh: Mesh) -> str:
        async with mesh.api() as api:
            view = (
                await api.get(
                    f"/forums/threads/{mesh.seeded['thread']}", headers=mesh.bearer("olivia")
                )
            ).json()
        post: str = next(p["id"] for p in view["posts"] if p["author"] == mesh.subs["chloe"])
        return post

    async def test_a_broker_hides_a_post_members_see_the_notice_and_the_log_has_the_reason(
        self, mesh: Mesh
    ) -> None:
        thread, post = mesh.seeded["thread"], await self._chloe_post(mesh)
        page = f"/threads/{thread}"
        action = f"/threads/{thread}/moderate"
        async with sign_in(mesh, "bruno") as client:
            resp = await post_form(
                client, page, action, {"post": post, "action": "hide", "reason": "off-topic ad"}
            )
            assert resp.status_code == 200 and resp.url.path == page
            assert "Unhide post" in resp.text, "the moderator still sees the post, to undo"
        try:
            async with sign_in(mesh, "felix") as client:
                text = (await client.get(page)).text
                assert "for vaccine parts" not in text, "others no longer see it"
                assert "Moderate this thread" not in text and "Hide post" not in text
            async with sign_in(mesh, "chloe") as client:  # its author is told why
                text = (await client.get(page)).text
                assert "This post was hidden by a moderator." in text
                assert "for vaccine parts" not in text
            async with sign_in(mesh, "olivia") as client:
                log = await client.get("/moderation")
                assert log.status_code == 200
                row = log.text.split("<tbody>")[1].split("</tr>")[0]
                assert "hide" in row and "off-topic ad" in row and "Bruno" in row
        finally:
            async with sign_in(mesh, "bruno") as client:
                resp = await post_form(client, page, action, {"post": post, "action": "unhide"})
                assert "Hide post" in resp.text
        async with sign_in(mesh, "felix") as client:
            assert "for vaccine parts" in (await client.get(page)).text

    async def test_an_operator_locks_then_unlocks_a_thread(self, mesh: Mesh) -> None:
        thread = mesh.seeded["thread"]
        page, action = f"/threads/{thread}", f"/threads/{thread}/moderate"
        async with sign_in(mesh, "olivia") as client:
            resp = await post_form(client, page, action, {"action": "lock", "reason": "cooling"})
            assert ">locked</span>" in resp.text and "Unlock thread" in resp.text
        try:
            async with sign_in(mesh, "felix") as client:
                text = (await client.get(page)).text
                assert "This thread is locked" in text and 'id="h-reply"' not in text
                refused = await post_form(client, page, f"{page}/reply", {"body": "still here"})
                assert refused.status_code == 409 and "Not posted" in refused.text
        finally:
            async with sign_in(mesh, "olivia") as client:
                resp = await post_form(client, page, action, {"action": "unlock"})
                assert "Lock thread" in resp.text

    async def test_a_moderator_moves_a_thread_to_another_category(self, mesh: Mesh) -> None:
        thread = mesh.seeded["thread"]
        page, action = f"/threads/{thread}", f"/threads/{thread}/moderate"
        async with mesh.api() as api:
            made = await api.post(
                "/forums/categories",
                headers=mesh.bearer("olivia"),
                json={"slug": "cold-chain", "name": "Cold chain"},
            )
            assert made.status_code in (201, 409), made.text
        async with sign_in(mesh, "bruno") as client:
            resp = await post_form(
                client, page, action, {"action": "move", "category": "cold-chain"}
            )
            assert '<a href="/forums/cold-chain">Cold chain</a>' in resp.text  # its name
            back = await post_form(
                client, page, action, {"action": "move", "category": "logistics"}
            )
            assert '<a href="/forums/logistics">Logistics</a>' in back.text
            log = (await client.get("/moderation")).text
            assert "→ cold-chain" in log and "→ logistics" in log

    async def test_a_bad_action_keeps_the_page_with_an_error(self, mesh: Mesh) -> None:
        thread = mesh.seeded["thread"]
        async with sign_in(mesh, "bruno") as client:
            resp = await post_form(
                client, f"/threads/{thread}", f"/threads/{thread}/moderate", {"action": "burn"}
            )
            assert resp.status_code == 422 and "Not done" in resp.text

    async def test_members_and_partner_admins_cannot_moderate(self, mesh: Mesh) -> None:
        thread, post = mesh.seeded["thread"], await self._chloe_post(mesh)
        for username in ("felix", "nadia"):
            async with sign_in(mesh, username) as client:
                page = await client.get(f"/threads/{thread}")
                assert "Moderate this thread" not in page.text, username
                assert 'href="/moderation"' not in page.text, username
                assert (await client.get("/moderation")).status_code == 404, username
                resp = await post_form(
                    client,
                    f"/threads/{thread}",
                    f"/threads/{thread}/moderate",
                    {"post": post, "action": "hide"},
                )
                assert resp.status_code == 404, username
        async with sign_in(mesh, "felix") as client:
            assert "for vaccine parts" in (await client.get(f"/threads/{thread}")).text


class TestWorkspaces:
    async def test_open_a_workspace_seen_by_its_members_only(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "carlos") as client:
            resp = await post_form(
                client,
                "/workspaces",
                "/workspaces",
                {
                    "title": "Contoso and Fabrikam forecasting",
                    "members": mesh.subs["fatima"],
                },
            )
            assert resp.status_code == 200
            workspace = first_group(r"/workspaces/([A-Za-z0-9_-]+)$", str(resp.url))
            resp = await post_form(
                client,
                f"/workspaces/{workspace}",
                f"/workspaces/{workspace}/notes",
                {"title": "Plan", "body": "Share *forecasts* weekly"},
            )
            assert "<em>forecasts</em>" in resp.text
            note = resp.text.split('class="note"')[1].split("</article>")[0]
            assert "Carlos Castillo" in note, "authors are shown by name, with a hover card"
        async with sign_in(mesh, "fatima") as client:
            assert "Contoso and Fabrikam forecasting" in (await client.get("/workspaces")).text
            assert (await client.get(f"/workspaces/{workspace}")).status_code == 200
        async with sign_in(mesh, "noah") as client:
            assert "Contoso and Fabrikam forecasting" not in (await client.get("/workspaces")).text
            page = await client.get(f"/workspaces/{workspace}")
            assert page.status_code == 404 and "Share" not in page.text
            resp = await post_form(
                client, "/", f"/workspaces/{workspace}/notes", {"title": "x", "body": "intrusion"}
            )
            assert resp.status_code == 404


class TestDashboardSharing:
    async def test_shared_with_my_company_and_nobody_else(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as client:
            resp = await post_form(
                client, "/dashboards", "/dashboards", {"title": "Northwind KPIs"}
            )
            path = resp.url.path
            resp = await post_form(
                client,
                path,
                f"{path}/widgets",
                {
                    "title": "People",
                    "kind": "number",
                    "sources": "people",
                },
            )
            assert resp.url.path == path
            await post_form(
                client, path, f"{path}/settings", {"title": "Northwind KPIs", "shared": "1"}
            )
        async with sign_in(mesh, "nadia") as client:
            assert "Northwind KPIs" in (await client.get("/dashboards")).text
            page = await client.get(path)
            assert page.status_code == 200 and "Shared by Noah Nguyen" in page.text
            data = await client.get(f"{path}/data")
            assert 'class="number"' in data.text
            resp = await post_form(
                client, path, f"{path}/widgets", {"title": "x", "kind": "list", "sources": "people"}
            )
            assert resp.status_code == 404, "sharing does not allow editing"
        async with sign_in(mesh, "fatima") as client:
            assert "Northwind KPIs" not in (await client.get("/dashboards")).text
            assert (await client.get(path)).status_code == 404
            assert (await client.get(f"{path}/data")).status_code == 404

    async def test_a_widget_needs_a_kind_and_a_source(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as client:
            resp = await post_form(client, "/dashboards", "/dashboards", {"title": "Empty"})
            path = resp.url.path
            resp = await post_form(client, path, f"{path}/widgets", {"kind": "number"})
            assert resp.status_code == 422 and "at least one data source" in resp.text
            resp = await post_form(
                client, path, f"{path}/widgets", {"kind": "pie", "sources": "people"}
            )
            assert resp.status_code == 422


LABELLED = re.compile(r'<label[^>]*\bfor="([^"]+)"')
CONTROL = re.compile(r"<(input|select|textarea)\b([^>]*)>")


class TestAccessibility:
    async def test_every_form_control_has_a_label(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "olivia") as client:
            for path in (
                "/",
                "/directory",
                "/forums/logistics",
                f"/threads/{mesh.seeded['thread']}",
                f"/people/{mesh.subs['olivia']}/edit",
                "/workspaces",
                "/introductions",
                "/broker",
                "/operator",
                "/dashboards",
                "/connectors",
            ):
                resp = await client.get(path)
                assert resp.status_code == 200, path
                html = resp.text
                labelled = set(LABELLED.findall(html))
                for _tag, attrs in CONTROL.findall(html):
                    if 'type="hidden"' in attrs:
                        continue
                    ident = re.search(r'\bid="([^"]+)"', attrs)
                    assert ident and ident.group(1) in labelled, f"{path}: unlabelled <{attrs}>"
                assert '<main id="main"' in html and 'class="skip" href="#main"' in html
                assert re.search(r"<h1[ >]", html), f"{path} has no heading"


class TestSuggestions:
    async def test_suggestions_give_their_reasons_as_sentences(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "carlos") as client:
            page = await client.get("/introductions")
            found = page.text.split('id="h-sugg"')[1].split("</section>")[0]
            assert 'class="why"' in found, found
            sentence = r"which you need|You offer .+, which|You both |You share contacts with "
            assert re.search(sentence, found), found
            assert "Shared social:" not in found and "meet their" not in found
