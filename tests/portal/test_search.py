"""Search everywhere: the collaboration service's content search and the connector's catalogue
search show each caller exactly what its reads show it (forum moderation, workspace
membership, operation visibility); the portal groups, highlights (escaped) and pages what the
services found. Words are literal: ``%`` and ``_`` in a query are not wildcards."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from identity.cli.devclient import login
from identity.cli.seed import PASSWORD
from tests.portal.browser import PHONE, axe_source, axe_violations, signed_in_page
from tests.portal.login import csrf_of, sign_in
from tests.portal.mesh import CLI_REDIRECT, Mesh

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WS = "collaboration.search.content"


def _word() -> str:
    return f"zq{uuid.uuid4().hex[:10]}"


async def _ok(resp: httpx.Response) -> Any:
    assert resp.status_code < 300, f"{resp.request.method} {resp.request.url}: {resp.text}"
    return resp.json()


async def _search(mesh: Mesh, who: str, q: str, **params: Any) -> dict[str, Any]:
    async with mesh.api() as api:
        resp = await api.get("/search/content", params={"q": q, **params}, headers=mesh.bearer(who))
        result: dict[str, Any] = await _ok(resp)
        return result


def _found(result: dict[str, Any]) -> dict[str, set[str]]:
    return {g["kind"]: {h["id"] for h in g["items"]} for g in result["groups"]}


@pytest.fixture(scope="module")
async def corpus(mesh: Mesh) -> dict[str, Any]:
    """A private northwind–contoso workspace with a thread, a post and a note carrying a word
    of their own (and another workspace of those who are not its members); a forum post
    hidden by a moderator; and text for the wildcard checks."""
    s, words = mesh.subs, {k: _word() for k in ("ws", "hidden", "like", "page")}
    async with mesh.api() as api:
        ws = await _ok(
            await api.post(
                "/workspaces",
                headers=mesh.bearer("nadia"),
                json={"title": "Search pilot", "members": [{"person": s["carlos"]}]},
            )
        )
        # the people who must not see it are members of a workspace of their own
        await _ok(
            await api.post(
                "/workspaces",
                headers=mesh.bearer("fatima"),
                json={
                    "title": "Another pilot",
                    "members": [{"person": s[p]} for p in ("noah", "olivia", "bruno")],
                },
            )
        )
        base = f"/workspaces/{ws['id']}"
        thread = await _ok(
            await api.post(
                f"{base}/threads",
                headers=mesh.bearer("nadia"),
                json={"title": f"Pilot <b>plan</b> {words['ws']}", "body": "Routes for the pilot"},
            )
        )
        post = await _ok(
            await api.post(
                f"{base}/threads/{thread['id']}/posts",
                headers=mesh.bearer("carlos"),
                json={"body": f"Contoso agrees: **{words['ws'].upper()}** it is."},
            )
        )
        note = await _ok(
            await api.post(
                f"{base}/notes",
                headers=mesh.bearer("carlos"),
                json={"title": "Minutes", "body": f"We said {words['ws']} twice: {words['ws']}"},
            )
        )
        forum = mesh.seeded["thread"]
        hidden = await _ok(
            await api.post(
                f"/forums/threads/{forum}/posts",
                headers=mesh.bearer("felix"),
                json={"body": f"Off topic {words['hidden']}"},
            )
        )
        await _ok(
            await api.post(
                f"/posts/{hidden['id']}/hide",
                headers=mesh.bearer("olivia"),
                json={"hidden": True, "reason": "off topic"},
            )
        )
        like = await _ok(
            await api.post(
                f"/forums/threads/{forum}/posts",
                headers=mesh.bearer("felix"),
                json={"body": f"Literal {words['like']}ax and {words['like']}50%off"},
            )
        )
        paged = []
        for i in range(3):
            t = await _ok(
                await api.post(
                    "/forums/categories/logistics/threads",
                    headers=mesh.bearer("chloe"),
                    json={"title": f"Paged {i}", "body": f"Body {words['page']} number {i}"},
                )
            )
            paged.append(t["id"])
    return {
        "words": words,
        "ws": ws["id"],
        "thread": thread["id"],
        "post": post["id"],
        "note": note["id"],
        "hidden": hidden["id"],
        "like": like["id"],
        "paged": paged,
    }


class TestContentSearch:
    async def test_members_find_workspace_content_of_every_kind(
        self, mesh: Mesh, corpus: dict[str, Any]
    ) -> None:
        result = await _search(mesh, "nadia", corpus["words"]["ws"])
        assert _found(result) == {
            "thread": {corpus["thread"]},
            "post": {corpus["post"]},
            "note": {corpus["note"]},
        }
        post = next(g for g in result["groups"] if g["kind"] == "post")["items"][0]
        assert post["workspace"] == corpus["ws"] and post["thread"] == corpus["thread"]
        assert post["author_name"] == "Carlos Castillo" and "**" not in post["excerpt"]
        assert result["words"] == [corpus["words"]["ws"]]

    @pytest.mark.parametrize("who", ["fatima", "olivia", "bruno", "noah"])
    async def test_non_members_find_nothing_of_a_workspace(
        self, mesh: Mesh, corpus: dict[str, Any], who: str
    ) -> None:
        """Not another company, not the operator, not a broker, not a colleague outside it."""
        result = await _search(mesh, who, corpus["words"]["ws"])
        assert _found(result) == {"thread": set(), "post": set(), "note": set()}
        assert all(g["total"] == 0 for g in result["groups"])

    @pytest.mark.parametrize(("who", "sees"), [("felix", True), ("olivia", True), ("chloe", False)])
    async def test_hidden_posts_for_their_author_and_moderators_only(
        self, mesh: Mesh, corpus: dict[str, Any], who: str, sees: bool
    ) -> None:
        result = await _search(mesh, who, corpus["words"]["hidden"], kind="post")
        assert _found(result) == {"post": {corpus["hidden"]} if sees else set()}

    async def test_words_are_literal_not_patterns(self, mesh: Mesh, corpus: dict[str, Any]) -> None:
        w = corpus["words"]["like"]
        assert _found(await _search(mesh, "chloe", f"{w}ax", kind="post"))["post"] == {
            corpus["like"]
        }  # control: the literal text is found
        for pattern in (f"{w}_x", f"{w}%x", f"{w}%", f"{w}5_%"):
            found = await _search(mesh, "chloe", pattern, kind="post")
            assert found["groups"][0]["total"] == 0, pattern
        found = await _search(mesh, "chloe", f"{w}50%off", kind="post")
        assert _found(found)["post"] == {corpus["like"]}

    async def test_pages_do_not_overlap_and_count_everything(
        self, mesh: Mesh, corpus: dict[str, Any]
    ) -> None:
        w = corpus["words"]["page"]
        first = await _search(mesh, "noah", w, kind="thread", page=1, page_size=2)
        second = await _search(mesh, "noah", w, kind="thread", page=2, page_size=2)
        ids = [h["id"] for r in (first, second) for h in r["groups"][0]["items"]]
        assert first["groups"][0]["total"] == 3 and len(ids) == 3
        assert set(ids) == set(corpus["paged"])
        assert ids == list(reversed(corpus["paged"])), "newest first"

    @pytest.mark.parametrize(
        "params", [{"q": ""}, {"q": "   "}, {"q": "x" * 201}, {"q": "a", "kind": "secret"}]
    )
    async def test_bad_queries_are_refused_not_failed(
        self, mesh: Mesh, params: dict[str, str] | dict[str, Any]
    ) -> None:
        async with mesh.api() as api:
            resp = await api.get("/search/content", params=params, headers=mesh.bearer("noah"))
        assert resp.status_code in (400, 422), resp.text

    async def test_workspace_content_needs_the_workspace_scope(
        self, mesh: Mesh, corpus: dict[str, Any]
    ) -> None:
        async with httpx.AsyncClient(timeout=10) as browser:
            tokens = await login(
                browser, mesh.issuer, "mesh-cli", "nadia", PASSWORD, CLI_REDIRECT, "forum:read"
            )
        async with mesh.api() as api:
            resp = await api.get(
                "/search/content",
                params={"q": corpus["words"]["ws"]},
                headers={"Authorization": f"Bearer {tokens['access_token']}"},
            )
        assert _found(await _ok(resp)) == {"thread": set(), "post": set(), "note": set()}

    async def test_without_a_token_nothing(self, mesh: Mesh) -> None:
        async with mesh.api() as api:
            assert (await api.get("/search/content", params={"q": "cold"})).status_code == 401


class TestCatalogueSearch:
    async def test_private_operations_only_for_owner_grantees_and_operators(
        self, mesh: Mesh
    ) -> None:
        word = _word()
        async with sign_in(mesh, "carlos") as admin:
            csrf = csrf_of((await admin.get("/connectors")).text)
            await admin.post(
                "/connectors/backends",
                data={"csrf": csrf, "name": f"b{word[:8]}", "base_url": "http://127.0.0.1:9"},
            )
            resp = await admin.post(
                "/connectors/operations",
                data={
                    "csrf": csrf,
                    "backend": f"b{word[:8]}",
                    "name": "lookup",
                    "method": "GET",
                    "path": "/lookup",
                    "visibility": "private",
                    "description": f"Private {word} lookup",
                },
            )
            assert "Not done" not in resp.text, resp.text[-1500:]
        async with mesh.api() as api:

            async def found(who: str, q: str) -> list[str]:
                resp = await api.get("/catalogue", params={"q": q}, headers=mesh.bearer(who))
                return [op["id"] for op in (await _ok(resp))["items"]]

            assert await found("carlos", word) == ["contoso.lookup"]
            assert await found("chloe", f"PRIVATE {word.upper()}") == ["contoso.lookup"]
            assert await found("olivia", word) == ["contoso.lookup"]
            assert await found("fatima", word) == []
            assert await found("carlos", f"{word} missing") == []
            assert await found("carlos", f"{word[:-1]}_") == []


class TestSearchPage:
    async def test_groups_highlights_and_escapes(self, mesh: Mesh, corpus: dict[str, Any]) -> None:
        w = corpus["words"]["ws"]
        async with sign_in(mesh, "carlos", f"/search?q={w}") as c:
            page = c.last_page.text
            assert f"Pilot &lt;b&gt;plan&lt;/b&gt; <mark>{w}</mark>" in page
            assert f"<mark>{w.upper()}</mark>" in page  # the post, any case
            for kind in ("threads", "posts", "notes"):
                section = page.split(f'id="results-{kind}"')[1].split("</section>")[0]
                assert "(1)" in section and "<mark>" in section, kind
            people = page.split('id="results-people"')[1].split("</section>")[0]
            assert "Nothing found." in people
            assert "<b>plan</b>" not in page

    async def test_a_kind_pages_through_its_results(
        self, mesh: Mesh, corpus: dict[str, Any]
    ) -> None:
        w = corpus["words"]["page"]
        async with sign_in(mesh, "noah", f"/search?q={w}&kind=threads") as c:
            page = c.last_page.text
            assert page.count('class="hit"') == 3 and 'id="results-people"' not in page
            assert "Page 1 of 1" not in page  # one page: no pager

    async def test_people_and_companies_from_the_directory(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "felix", "/search?q=northwind") as c:
            page = c.last_page.text
            companies = page.split('id="results-companies"')[1].split("</section>")[0]
            assert "<mark>Northwind</mark> Logistics" in companies
            ops = page.split('id="results-operations"')[1].split("</section>")[0]
            assert "Connector operations" in ops

    async def test_the_box_is_on_every_page(self, mesh: Mesh) -> None:
        async with sign_in(mesh, "chloe") as c:
            assert 'action="/search" role="search"' in c.last_page.text


@pytest.mark.browser
class TestSearchInTheBrowser:
    async def test_a_workspace_post_is_found_only_by_its_members(
        self, browser: Any, mesh: Mesh, corpus: dict[str, Any]
    ) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        w = corpus["words"]["ws"]
        axe = axe_source()
        async with signed_in_page(browser, mesh, "carlos") as page:
            await page.fill("#nav-q", w)
            await page.press("#nav-q", "Enter")
            posts = page.locator("#results-posts")
            await posts.locator(".excerpt mark", has_text=w.upper()).wait_for()
            assert "Contoso agrees" in await posts.inner_text()
            serious = [
                v for v in await axe_violations(page, axe) if v["impact"] in ("serious", "critical")
            ]
            assert not serious, serious
            await page.screenshot(path=str(ARTIFACTS / "portal-desktop-search.png"), full_page=True)
            await posts.get_by_role("link").first.click()
            await page.wait_for_url(f"**/workspaces/{corpus['ws']}/threads/{corpus['thread']}*")
        async with signed_in_page(browser, mesh, "fatima", **PHONE) as page:
            await page.goto(f"{mesh.portal_url}/search?q={w}")
            posts = page.locator("#results-posts")
            assert "Nothing found." in await posts.inner_text()
            assert "Contoso agrees" not in await page.content()
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, f"the search page scrolls sideways by {overflow}px"
            await page.screenshot(path=str(ARTIFACTS / "portal-phone-search.png"), full_page=True)


class TestHighlight:
    def test_marks_every_case_and_escapes_the_rest(self) -> None:
        from portal.markup import highlight

        html = str(highlight("<i>C++</i> and c++ & <script>", ["c++", "<script>"]))
        assert html == (
            "&lt;i&gt;<mark>C++</mark>&lt;/i&gt; and <mark>c++</mark> &amp; "
            "<mark>&lt;script&gt;</mark>"
        )
        assert str(highlight("a <b>", [])) == "a &lt;b&gt;"
