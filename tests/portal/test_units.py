"""The portal's parts on their own: its database (both engines), widgets, gateway calls, markup."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mesh.db import Database
from portal import models
from portal import repository as repo
from portal.api import ApiError, build, parse_mashup
from portal.charts import BarChart
from portal.markup import cloud_size, markdown
from portal.oidc import TokenSet
from portal.sessions import SessionStore
from portal.views.scim_section import token_state
from portal.widgets import SOURCES, view


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The portal's own database on each engine."""
    database = Database(database_url, models.metadata)
    await database.create_all()
    yield database
    await database.dispose()


def _dashboard(
    id_: str, owner: str, partner: str | None, shared: bool, visibility: str | None = None
) -> dict[str, Any]:
    return {
        **({"visibility": visibility} if visibility else {}),
        "id": id_,
        "eco": "acme",
        "owner": owner,
        "owner_name": owner,
        "partner": partner,
        "title": id_,
        "shared": shared,
        "widgets": [],
    }


class TestDashboardStore:
    async def test_visible_to_the_owner_and_when_shared_to_the_owners_company(
        self, db: Database
    ) -> None:
        async with db.transaction() as s:
            await repo.add_dashboard(s, _dashboard("mine", "noah", "northwind", False))
            await repo.add_dashboard(s, _dashboard("shared", "noah", "northwind", True))
            await repo.add_dashboard(s, _dashboard("theirs", "felix", "fabrikam", True))
        async with db.transaction() as s:
            noah = {d["id"] for d in await repo.list_dashboards(s, "acme", "noah", "northwind")}
            nadia = {d["id"] for d in await repo.list_dashboards(s, "acme", "nadia", "northwind")}
            other_eco = await repo.list_dashboards(s, "globex", "noah", "northwind")
            assert await repo.get_dashboard(s, "theirs", "acme", "nadia", "northwind") is None
            assert await repo.get_dashboard(s, "mine", "acme", "nadia", "northwind") is None
            assert await repo.get_dashboard(s, "shared", "acme", "nadia", "northwind")
        assert noah == {"mine", "shared"}
        assert nadia == {"shared"}
        assert other_eco == []

    async def test_shared_with_the_ecosystem_is_seen_by_every_company_of_it_only(
        self, db: Database
    ) -> None:
        async with db.transaction() as s:
            await repo.add_dashboard(s, _dashboard("eco", "noah", "northwind", True, "ecosystem"))
            await repo.add_dashboard(s, _dashboard("co", "noah", "northwind", True, "company"))
            await repo.add_dashboard(s, _dashboard("own", "noah", "northwind", False, "private"))
        async with db.transaction() as s:
            fatima = {d["id"] for d in await repo.list_dashboards(s, "acme", "fatima", "fabrikam")}
            nobody = {d["id"] for d in await repo.list_dashboards(s, "acme", "ops", None)}
            nadia = {d["id"] for d in await repo.list_dashboards(s, "acme", "nadia", "northwind")}
            assert await repo.get_dashboard(s, "co", "acme", "fatima", "fabrikam") is None
            assert await repo.get_dashboard(s, "eco", "globex", "fatima", "fabrikam") is None
        assert fatima == {"eco"} and nobody == {"eco"}
        assert nadia == {"eco", "co"}


class TestSessionStore:
    def store(self, db: Database, idle: int = 3600) -> SessionStore:
        return SessionStore(db, "test-secret", idle, 30)

    async def test_login_state_is_single_use(self, db: Database) -> None:
        store = self.store(db)
        state = await store.begin_login("verifier", "nonce", "/next")
        first = await store.finish_login(state)
        assert first is not None
        assert first["verifier"] == "verifier" and first["return_to"] == "/next"
        assert await store.finish_login(state) is None

    async def test_sessions_load_by_cookie_and_expire_when_idle(self, db: Database) -> None:
        store = self.store(db, idle=60)
        tokens = TokenSet("access", "refresh", "id", time.time() + 300)
        cookie, session = await store.create(
            "acme", "noah", "Noah", "northwind", ["member"], tokens
        )
        loaded = await store.load(cookie)
        assert loaded is not None and loaded.tokens is not None
        assert loaded.sub == "noah" and loaded.tokens.access_token == "access"
        assert await store.load(cookie + "x") is None
        assert await store.load(None) is None
        async with db.transaction() as s:
            await repo.update_session(s, session.id, last_seen=time.time() - 120)
        assert await store.load(cookie) is None

    async def test_a_session_sealed_with_another_key_does_not_open(self, db: Database) -> None:
        tokens = TokenSet("access", None, None, time.time() + 300)
        cookie, _ = await self.store(db).create("acme", "noah", "Noah", None, [], tokens)
        other = SessionStore(db, "another-secret", 3600, 30)
        assert await other.load(cookie) is None


class TestGatewayCalls:
    def test_build_fills_the_path_and_keeps_the_rest_as_query_or_body(self) -> None:
        get = build("profile.person.card", "acme", {"person": "a/b", "limit": 5})
        assert get.method == "GET"
        assert get.path == "/v1/ecosystems/acme/people/a%2Fb/card"
        assert get.query == {"limit": 5} and get.body is None
        post = build("collaboration.forums.create_post", "acme", {"thread": "t1", "body": "hi"})
        assert post.path.endswith("/forums/threads/t1/posts")
        assert post.body == {"body": "hi"} and post.query == {}

    def test_unknown_operations_and_missing_parameters_are_clear_errors(self) -> None:
        with pytest.raises(ApiError) as unknown:
            build("nope.nothing", "acme", {})
        assert unknown.value.status == 503
        with pytest.raises(ApiError) as missing:
            build("profile.person.get", "acme", {})
        assert missing.value.status == 400

    def test_mashup_results_keep_each_items_own_status(self) -> None:
        calls = {k: build("collaboration.forums.list_categories", "acme", {}) for k in "abc"}
        doc = {
            "results": [
                {"id": "a", "status": 200, "body": {"items": []}},
                {"id": "b", "status": 404, "body": {"code": "not_found", "detail": "gone"}},
            ]
        }
        results = parse_mashup(doc, calls)
        assert results["a"] == {"items": []}
        assert isinstance(results["b"], ApiError) and results["b"].status == 404
        assert isinstance(results["c"], ApiError) and results["c"].status == 502


class TestWidgets:
    def test_partial_results_say_which_source_failed(self) -> None:
        widget = {"id": "w", "kind": "number", "title": "T", "sources": ["people", "companies"]}
        failure = ApiError(503, "unavailable", "profile is down")
        out = view(widget, {"people": {"total": 8, "entries": []}, "companies": failure})
        assert out.numbers == [(SOURCES["people"].label, 8)]
        assert [label for label, _ in out.failures] == [SOURCES["companies"].label]

    def test_counts_by_label_and_charts_scale_to_the_top_value(self) -> None:
        intros = {
            "introductions": [
                {"status": "connected"},
                {"status": "connected"},
                {"status": "proposed"},
            ]
        }
        out = view(
            {"id": "w", "kind": "bar", "title": "T", "sources": ["introductions"]},
            {"introductions": intros},
        )
        (chart,) = out.charts
        assert isinstance(chart, BarChart)
        assert [(r.label, r.value) for r in chart.rows] == [("connected", "2"), ("proposed", "1")]
        assert chart.rows[0].bars[0].pct == pytest.approx(2 * chart.rows[1].bars[0].pct)

    def test_clouds_merge_and_normalise(self) -> None:
        card = {"cloud": {"terms": [{"term": "a", "weight": 0.5}, {"term": "b", "weight": 0.25}]}}
        out = view(
            {"id": "w", "kind": "cloud", "title": "T", "sources": ["my_cloud"]}, {"my_cloud": card}
        )
        assert out.points == [("a", 1.0), ("b", 0.5)]


class TestMarkup:
    @pytest.mark.parametrize(
        ("weight", "size"), [(0, 1), (0.3, 2), (0.99, 5), (1.0, 5), ("x", 1), (None, 1), (7, 5)]
    )
    def test_cloud_sizes(self, weight: int | float | str | None, size: int) -> None:
        assert cloud_size(weight) == size

    def test_markdown_drops_raw_html_and_unsafe_links(self) -> None:
        html = str(markdown('<img src=x onerror=alert(1)> [a](javascript:x) [b](https://e.x "t")'))
        assert "<img" not in html and "javascript:x)" in html and 'href="javascript' not in html
        assert 'href="https://e.x"' in html and "nofollow" in html


class TestPlainErrors:
    def test_validation_errors_read_as_a_sentence(self) -> None:
        from portal.api import plain_errors

        pattern = "string_pattern_mismatch"
        errors = [
            {"loc": ["body", "links", 0, "url"], "msg": "String should match", "type": pattern},
            {"loc": ["body", "display_name"], "msg": "Field required", "type": "missing"},
            {"loc": ["query", "limit"], "msg": "Input should be less than or equal to 100",
             "type": "odd_new_type"},
        ]  # fmt: skip
        assert plain_errors(errors) == (
            "Please check: links › url is not in the expected form; display name is required; "
            "limit input should be less than or equal to 100."
        )

    def test_nothing_to_tell(self) -> None:
        from portal.api import plain_errors

        assert plain_errors(None) is None
        assert plain_errors([]) is None
        assert plain_errors(["not a dict"]) is None


class TestScimTokenState:
    def test_active_revoked_and_expired(self) -> None:
        now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
        later = (now + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        earlier = (now - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        assert token_state({"revoked": False, "expires_at": None}, now) == "active"
        assert token_state({"revoked": False, "expires_at": later}, now) == "active"
        assert token_state({"revoked": False, "expires_at": earlier}, now) == "expired"
        assert token_state({"revoked": True, "expires_at": later}, now) == "revoked"
        assert token_state({"revoked": True, "expires_at": earlier}, now) == "revoked"
