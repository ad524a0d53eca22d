"""Dashboards over HTTP against the whole mesh: sharing with the company or the ecosystem
(and nobody else), duplicates, layouts, export and import, and the time range."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from portal import dashboard_io as io
from tests.portal.login import SignedIn, csrf_of, sign_in
from tests.portal.mesh import Mesh


async def post(client: httpx.AsyncClient, action: str, data: dict[str, Any]) -> httpx.Response:
    token = csrf_of((await client.get("/dashboards")).text)
    return await client.post(action, data={**data, "csrf": token})


async def new_dashboard(client: SignedIn, title: str, *widgets: dict[str, Any]) -> str:
    resp = await post(client, "/dashboards", {"title": title})
    path = resp.url.path
    for widget in widgets:
        resp = await post(client, f"{path}/widgets", widget)
        assert resp.url.path == path, resp.text[-500:]
    return path


async def titles(client: httpx.AsyncClient) -> list[str]:
    html = (await client.get("/dashboards")).text
    return re.findall(r'<h2><a href="/dashboards/[0-9a-f]+">([^<]+)</a></h2>', html)


PEOPLE = {"title": "Ecosystem", "kind": "number", "sources": ["people", "companies"]}
POSTS = {"title": "Posts", "kind": "chart", "sources": "posts_over_time"}
CATEGORIES = {"title": "Categories", "kind": "chart", "sources": "categories"}


class TestSharing:
    async def test_the_ecosystem_sees_it_and_only_the_owner_changes_it(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as noah:
            path = await new_dashboard(noah, "Northwind for all", PEOPLE)
            resp = await post(
                noah, f"{path}/settings", {"title": "Northwind for all", "visibility": "ecosystem"}
            )
            assert "Shared with the whole ecosystem." in resp.text
        async with sign_in(mesh, "fatima") as fatima:  # another company
            assert "Northwind for all" in await titles(fatima)
            page = await fatima.get(path)
            assert (
                page.status_code == 200
                and "Shared by Noah Nguyen with the whole ecosystem" in page.text
            )
            assert 'class="layout-keys"' not in page.text, "no layout controls for a viewer"
            assert (await fatima.get(f"{path}/data")).status_code == 200
            for action, data in (
                (f"{path}/widgets", POSTS),
                (f"{path}/settings", {"visibility": "private"}),
                (f"{path}/delete", {}),
                (f"{path}/layout", {}),
            ):
                assert (await post(fatima, action, data)).status_code == 404, action
        async with sign_in(mesh, "noah") as noah:
            await post(
                noah, f"{path}/settings", {"title": "Northwind for all", "visibility": "company"}
            )
        async with sign_in(mesh, "fatima") as fatima:
            assert "Northwind for all" not in await titles(fatima)
            assert (await fatima.get(path)).status_code == 404
            assert (await fatima.get(f"{path}/export")).status_code == 404
            assert (await post(fatima, f"{path}/duplicate", {})).status_code == 404
        async with sign_in(mesh, "nadia") as nadia:  # noah's colleague
            assert (await nadia.get(path)).status_code == 200

    async def test_private_is_private_and_visibility_is_one_of_three(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as noah:
            path = await new_dashboard(noah, "Noah only")
            resp = await post(noah, f"{path}/settings", {"visibility": "world"})
            assert resp.status_code == 422 and "Choose who may see" in resp.text
        async with sign_in(mesh, "nadia") as nadia:
            assert (await nadia.get(path)).status_code == 404


class TestNumbers:
    async def test_people_and_companies_are_counted_separately(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "chloe") as chloe:
            path = await new_dashboard(chloe, "Who is here", PEOPLE)
            html = (await chloe.get(f"{path}/data")).text
        stats = dict(
            (label, int(n.replace(",", "")))
            for n, label in re.findall(
                r'class="number">([\d,]+)</span> <span class="stat-label">([^<]+)<', html
            )
        )
        assert stats == {"People in the directory": 8, "Companies in the directory": 4}


class TestDuplicateExportImport:
    async def test_a_viewer_duplicates_exports_and_imports(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "noah") as noah:
            path = await new_dashboard(noah, "Shared KPIs", PEOPLE, CATEGORIES)
            await post(
                noah, f"{path}/settings", {"title": "Shared KPIs", "visibility": "ecosystem"}
            )
        async with sign_in(mesh, "felix") as felix:
            resp = await post(felix, f"{path}/duplicate", {})
            copy = resp.url.path
            assert copy != path and "Only you can see it." in resp.text
            exported = (await felix.get(f"{copy}/export")).json()
            assert exported["title"] == "Copy of Shared KPIs"
            assert [w["sources"] for w in exported["widgets"]] == [
                ["people", "companies"],
                ["categories"],
            ]
            exported["title"] = "Imported KPIs"
            resp = await post(felix, "/dashboards/import", {"json": json.dumps(exported)})
            assert resp.status_code == 200 and "<h1>Imported KPIs</h1>" in resp.text
            again = (await felix.get(f"{resp.url.path}/export")).json()
            assert again == exported
        async with sign_in(mesh, "noah") as noah:
            assert "Copy of Shared KPIs" not in await titles(noah), "a copy is private"

    async def test_bad_json_is_refused_and_nothing_is_saved(self, mesh: Mesh) -> None:
        good = {"format": io.FORMAT, "version": 1, "title": "Half", "widgets": [PEOPLE]}
        bad_widget = {
            **good,
            "widgets": [PEOPLE, {"kind": "pie", "title": "x", "sources": ["people"]}],
        }
        async with sign_in(mesh, "carlos") as carlos:
            before = await titles(carlos)
            for raw, said in (
                ("{not json", "This is not valid JSON (line 1, column 2"),
                (json.dumps(bad_widget), "The dashboard cannot be imported."),
                (json.dumps({**good, "owner": "someone"}), "is not expected here"),
                ("", "Choose a JSON file"),
            ):
                resp = await post(carlos, "/dashboards/import", {"json": raw})
                assert resp.status_code == 422, raw
                assert said in resp.text and "Nothing was saved." in resp.text, resp.text[-3000:]
            token = csrf_of((await carlos.get("/dashboards")).text)
            resp = await carlos.post(
                "/dashboards/import",
                data={"csrf": token},
                files={
                    "file": (
                        "d.json",
                        b'{"format": "partnermesh.dashboard", "version": 2}',
                        "application/json",
                    )
                },
            )
            assert resp.status_code == 422 and "Nothing was saved." in resp.text
            assert await titles(carlos) == before


class TestLayout:
    async def test_keys_and_the_grid_save_the_layout_for_the_owner_only(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "nadia") as nadia:
            path = await new_dashboard(nadia, "Layout", PEOPLE, POSTS, CATEGORIES)
            ids = re.findall(r'id="widget-([0-9a-f]+)" data-id', (await nadia.get(path)).text)
            assert len(ids) == 3
            await post(nadia, f"{path}/widgets/{ids[2]}/move", {"how": "left"})
            await post(nadia, f"{path}/widgets/{ids[2]}/move", {"how": "wider"})
            await post(nadia, f"{path}/widgets/{ids[2]}/move", {"how": "taller"})
            page = (await nadia.get(path)).text
            assert re.findall(r'id="widget-([0-9a-f]+)" data-id', page) == [ids[0], ids[2], ids[1]]
            assert f'widget loading w3 h2" id="widget-{ids[2]}"' in page
            assert (
                await post(nadia, f"{path}/widgets/{ids[0]}/move", {"how": "diagonal"})
            ).status_code == 404
            token = csrf_of(page)
            grid = {"widgets": [{"id": i, "w": 4, "h": 1} for i in reversed(ids)]}
            resp = await nadia.post(f"{path}/layout", json=grid, headers={"X-CSRF-Token": token})
            assert resp.status_code == 200
            assert (
                re.findall(r'id="widget-([0-9a-f]+)" data-id', (await nadia.get(path)).text)
                == ids[::-1]
            )
            for bad, status in (
                ({"widgets": grid["widgets"][:2]}, 409),
                ({"widgets": [{"id": ids[0], "w": 9, "h": 1}]}, 422),
                ({"widgets": "all"}, 422),
            ):
                resp = await nadia.post(f"{path}/layout", json=bad, headers={"X-CSRF-Token": token})
                assert resp.status_code == status, bad
            resp = await nadia.post(f"{path}/layout", json=grid)  # no CSRF token
            assert resp.status_code == 403
        async with sign_in(mesh, "noah") as noah:  # a colleague, when shared: still not the owner
            assert (await noah.get(path)).status_code == 404


class TestTimeRange:
    async def test_every_widget_over_time_follows_the_range(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix") as felix:
            path = await new_dashboard(
                felix,
                "Activity",
                POSTS,
                {"title": "Introductions", "kind": "chart", "sources": "introductions_over_time"},
                {"title": "Calls", "kind": "table", "sources": "connector_over_time"},
            )
            week = (await felix.get(f"{path}/data", params={"range": "7d"})).text
            assert week.count('<th scope="row">') == 14 and "per day" in week
            assert 'role="img"' in week and "<details" in week
            quarter = (await felix.get(f"{path}/data", params={"range": "90d"})).text
            assert "per week" in quarter and "Week of" in quarter
            custom = {"range": "custom", "from": "2026-01-01", "to": "2026-01-10"}
            days = (await felix.get(f"{path}/data", params=custom)).text
            assert days.count('<th scope="row">2026-01-') == 20 and ">2026-01-10<" in days
            page = await felix.get(
                path, params={"range": "custom", "from": "2026-02-01", "to": "2026-01-01"}
            )
            assert page.status_code == 200 and "The range ends before it starts." in page.text
