"""The services' aggregates over time, called through the gateway as the portal's dashboards
call them (one at a time here, in a mashup there): counts per day or week in SQL, zeros for
empty buckets, and each caller counting only what it may see."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.portal.mesh import Mesh
from tests.support.infra import serve_app


def today() -> date:
    return datetime.now(UTC).date()


def week(days: int = 7, bucket: str = "day") -> dict[str, str]:
    return {
        "since": (today() - timedelta(days=days - 1)).isoformat(),
        "until": today().isoformat(),
        "bucket": bucket,
    }


async def series(mesh: Mesh, who: str, path: str, **query: str) -> dict[str, list[int]]:
    async with mesh.api() as api:
        resp = await api.get(path, params=query or week(), headers=mesh.bearer(who))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert all(len(s["values"]) == len(doc["starts"]) for s in doc["series"]), doc
    return {s["name"]: s["values"] for s in doc["series"]}


async def ok(resp: Any) -> Any:
    assert resp.status_code < 300, resp.text
    return resp.json()


class TestPostTimeline:
    async def test_every_day_has_a_count_and_a_reply_counts_today(self, mesh: Mesh) -> None:
        before = await series(mesh, "felix", "/stats/posts")
        assert set(before) == {"threads", "replies"}
        assert before["threads"][:6] == [0] * 6, "days without writing are zeros"
        assert before["threads"][-1] >= 1, "the seeded thread was started today"
        async with mesh.api() as api:
            await ok(
                await api.post(
                    f"/forums/threads/{mesh.seeded['thread']}/posts",
                    headers=mesh.bearer("felix"),
                    json={"body": "Fabrikam forecasts help here"},
                )
            )
        after = await series(mesh, "fatima", "/stats/posts")
        assert after["replies"][-1] == before["replies"][-1] + 1
        assert after["threads"] == before["threads"]

    async def test_workspace_writing_is_not_counted(self, mesh: Mesh) -> None:
        before = await series(mesh, "noah", "/stats/posts")
        async with mesh.api() as api:
            ws = mesh.seeded["workspace"]
            await ok(
                await api.post(
                    f"/workspaces/{ws}/threads",
                    headers=mesh.bearer("nadia"),
                    json={"title": "Pilot plan", "body": "Only the pilot's members read this"},
                )
            )
        assert await series(mesh, "noah", "/stats/posts") == before

    async def test_weeks_start_on_monday_and_sum_the_days(self, mesh: Mesh) -> None:
        days = await series(mesh, "noah", "/stats/posts", **week(28))
        async with mesh.api() as api:
            resp = await api.get(
                "/stats/posts", params=week(28, "week"), headers=mesh.bearer("noah")
            )
        doc = await ok(resp)
        starts = [date.fromisoformat(d) for d in doc["starts"]]
        assert all(d.weekday() == 0 for d in starts) and len(starts) in (4, 5)
        weeks = {s["name"]: s["values"] for s in doc["series"]}
        assert sum(weeks["replies"]) == sum(days["replies"])
        assert weeks["replies"][-1] == sum(days["replies"][-(today().weekday() + 1) :])


class TestIntroductionTimeline:
    async def test_parties_count_their_own_and_brokers_count_all(self, mesh: Mesh) -> None:
        s = mesh.subs
        carlos = await series(mesh, "carlos", "/stats/introductions")
        noah = await series(mesh, "noah", "/stats/introductions")
        broker = await series(mesh, "bruno", "/stats/introductions")
        async with mesh.api() as api:
            intro = await ok(
                await api.post(
                    "/introductions",
                    headers=mesh.bearer("bruno"),
                    json={"a": s["carlos"], "b": s["felix"], "note": "Forecasts meet parts"},
                )
            )
        status = intro["status"]
        assert (await series(mesh, "carlos", "/stats/introductions"))[status][-1] == (
            carlos.get(status, [0] * 7)[-1] + 1
        )
        assert await series(mesh, "noah", "/stats/introductions") == noah, "not a party"
        after = await series(mesh, "bruno", "/stats/introductions")
        assert after[status][-1] == broker[status][-1] + 1


def flaky_backend() -> FastAPI:
    app = FastAPI()

    @app.get("/stock/{sku}")
    async def stock(sku: str) -> Any:
        if sku == "broken":
            return JSONResponse({"error": "down"}, status_code=500)
        return {"sku": sku, "available": 7}

    return app


@pytest.fixture
async def stock_operation(mesh: Mesh) -> AsyncIterator[str]:
    """A fabrikam back-end on loopback with a stock operation granted to contoso."""
    name = f"stock{uuid.uuid4().hex[:6]}"
    async with serve_app(flaky_backend()) as url, mesh.api() as api:
        admin = mesh.bearer("fatima")
        await ok(
            await api.post(
                "/partners/fabrikam/backends", headers=admin, json={"name": name, "base_url": url}
            )
        )
        await ok(
            await api.post(
                f"/partners/fabrikam/backends/{name}/operations",
                headers=admin,
                json={"name": name, "method": "GET", "path": "/stock/{sku}"},
            )
        )
        operation = f"fabrikam.{name}"
        await ok(
            await api.post(
                f"/operations/{operation}/grants", headers=admin, json={"grantee": "contoso"}
            )
        )
        yield operation


class TestConnectorTimeline:
    async def test_calls_and_errors_of_my_partner_only(
        self, mesh: Mesh, stock_operation: str
    ) -> None:
        contoso = await series(mesh, "chloe", "/stats/connector-calls")
        northwind = await series(mesh, "noah", "/stats/connector-calls")
        operator = await series(mesh, "olivia", "/stats/connector-calls")
        async with mesh.api() as api:
            for sku in ("A-1", "A-2", "broken"):
                await api.post(
                    f"/operations/{stock_operation}/invoke",
                    headers=mesh.bearer("carlos"),
                    json={"input": {"sku": sku}},
                )
        now = await series(mesh, "chloe", "/stats/connector-calls")
        assert now["calls"][-1] == contoso["calls"][-1] + 3
        assert now["errors"][-1] == contoso["errors"][-1] + 1
        assert now["calls"][:6] == [0] * 6
        owner = await series(mesh, "felix", "/stats/connector-calls")
        assert owner["calls"][-1] >= 3, "the owner's partner sees calls of its operation"
        assert await series(mesh, "noah", "/stats/connector-calls") == northwind
        everyone = await series(mesh, "olivia", "/stats/connector-calls")
        assert everyone["calls"][-1] == operator["calls"][-1] + 3

    async def test_deliveries_have_every_status_and_day(self, mesh: Mesh) -> None:
        got = await series(mesh, "carlos", "/stats/webhook-deliveries")
        assert set(got) >= {"delivered", "pending", "dead"}
        assert all(len(v) == 7 for v in got.values())


class TestRanges:
    @pytest.mark.parametrize(
        "query",
        [
            {"since": "2026-02-01", "until": "2026-01-01"},
            {"since": "2024-01-01", "until": "2026-01-01"},
            {"since": "yesterday", "until": "2026-01-01"},
            {"since": "2026-01-01", "until": "2026-01-02", "bucket": "year"},
        ],
    )
    async def test_a_bad_range_is_a_422_problem(self, mesh: Mesh, query: dict[str, str]) -> None:
        async with mesh.api() as api:
            for path in (
                "/stats/posts",
                "/stats/introductions",
                "/stats/connector-calls",
                "/stats/webhook-deliveries",
            ):
                resp = await api.get(path, params=query, headers=mesh.bearer("noah"))
                assert resp.status_code == 422, (path, resp.text)
                assert resp.headers["content-type"].startswith("application/problem+json")

    async def test_no_token_no_counts(self, mesh: Mesh) -> None:
        async with mesh.api() as api:
            resp = await api.get("/stats/posts", params=week())
        assert resp.status_code == 401
