"""The flows pages against the real connector and the demo's three partners' back-ends:
the builder (every button a form post), its refusals, and a flow's steps followed live."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from tests.portal.flowforms import builder_fields, press, step_operations
from tests.portal.login import sign_in
from tests.portal.mesh import Mesh
from tests.portal.test_connectors import eventually
from tests.support.infra import serve_app

PAGE = "/connectors/flows"
EXAMPLE = ["fabrikam.demand-forecast", "contoso.reserve", "northwind.ship"]


async def flow_count(client: httpx.AsyncClient) -> int:
    return len(
        re.findall(r'<a href="/connectors/flows/[0-9a-f]{32}">', (await client.get(PAGE)).text)
    )


async def events(client: httpx.AsyncClient, url: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The Server-Sent Events of ``url``, as (event, data)."""
    async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith(
            "text/event-stream"
        )
        kind = ""
        async for line in resp.aiter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                yield kind, json.loads(line[6:])


class TestBuilder:
    async def test_steps_are_added_moved_and_removed_by_form_posts(
        self, mesh: Mesh, demo: dict[str, str]
    ) -> None:
        async with sign_in(mesh, "nadia") as nadia:
            page = await nadia.get(PAGE)
            assert step_operations(page.text) == EXAMPLE, "the demo's flow to start from"
            fields = builder_fields(page.text)
            assert fields["s1.in.qty.src"] == "demand-forecast.units"
            assert fields["s1.comp"] == "contoso.release"
            assert fields["s1.cin.reservation.src"] == "reserve.id"
            page = await press(nadia, page, "add", new_op="contoso.stock-level")
            assert page.status_code == 200
            assert step_operations(page.text) == [*EXAMPLE, "contoso.stock-level"]
            assert 'name="s3.in.sku.src"' in page.text, "the new step's inputs, from its schema"
            page = await press(nadia, page, "up:3")
            assert step_operations(page.text) == [*EXAMPLE[:2], "contoso.stock-level", EXAMPLE[2]]
            page = await press(nadia, page, "remove:2")
            assert step_operations(page.text) == EXAMPLE
            kept = builder_fields(page.text)
            assert kept["s2.in.destination.val"] == "Rotterdam DC", "values survive round trips"
            # Only earlier steps' output fields are offered to a step.
            first = page.text.split('id="step-1"')[0]
            assert "from reserve › id" not in first and "from demand-forecast › units" not in first

    async def test_a_flow_built_in_the_form_runs_across_three_partners(
        self, mesh: Mesh, demo: dict[str, str]
    ) -> None:
        async with sign_in(mesh, "nadia") as nadia:
            page = await nadia.get(PAGE)
            before = await flow_count(nadia)
            started = await press(nadia, page, "start", name="Restock from the builder")
            assert started.status_code == 200 and started.url.path.startswith(PAGE + "/")
            flow_path = started.url.path

            async def finished() -> str | None:
                text = (await nadia.get(flow_path)).text
                return None if "data-flow-events" in text else text

            text = await eventually(finished)
            assert 'id="flow-status">completed' in text, text[-3000:]
            assert text.count('data-status="done"') == 3 and "succeeded" in text
            for partner in ("Fabrikam", "Contoso", "Northwind"):
                assert partner in text, f"{partner} is named on its step"
            assert "Undone by <code>contoso.release</code> if a later step fails" in text
            assert re.search(r"took \d+(\.\d)? (ms|s)\b", text), "each step's timing"
            assert await flow_count(nadia) == before + 1


class TestBuilderRefusals:
    async def test_an_operation_not_granted_cannot_be_added_or_started(
        self, mesh: Mesh, demo: dict[str, str]
    ) -> None:
        async with sign_in(mesh, "fatima") as fatima:  # contoso.stock-level: northwind's only
            page = await fatima.get(PAGE)
            assert 'value="contoso.stock-level"' not in page.text, "not offered"
            before = await flow_count(fatima)
            refused = await press(fatima, page, "add", new_op="contoso.stock-level")
            assert refused.status_code == 403
            assert "contoso.stock-level is not an operation granted to your company" in refused.text
            assert "contoso.stock-level" not in step_operations(refused.text)
            forged = {
                "s3.op": "contoso.stock-level",
                "s3.in.sku.src": "const",
                "s3.in.sku.val": "A",
            }
            refused = await press(fatima, page, "start", **forged)
            assert refused.status_code == 403 and "Not started" in refused.text
            assert await flow_count(fatima) == before, "nothing was started"

    async def test_a_type_mismatch_and_a_missing_input_are_refused_at_their_fields(
        self, mesh: Mesh, demo: dict[str, str]
    ) -> None:
        async with sign_in(mesh, "nadia") as nadia:
            page = await nadia.get(PAGE)
            before = await flow_count(nadia)
            refused = await press(
                nadia,
                page,
                "start",
                **{"s1.in.qty.src": "demand-forecast.sku", "s2.in.reservation.src": ""},
            )
            assert refused.status_code == 422 and "Not started" in refused.text
            qty = re.search(r'<p class="error small" id="s1-in-qty-err">([^<]+)</p>', refused.text)
            assert qty and qty[1] == "expects an integer, but demand-forecast › sku is a string"
            assert re.search(r'id="s1-in-qty-src"[^>]*aria-invalid="true"', refused.text)
            missing = re.search(r'id="s2-in-reservation-err">([^<]+)<', refused.text)
            assert missing and missing[1] == "is required by northwind.ship and is not mapped"
            assert step_operations(refused.text) == EXAMPLE, "the draft is kept to fix"
            assert await flow_count(nadia) == before, "nothing was started"
            wrong = await press(
                nadia, page, "start", **{"s2.in.destination.src": "const", "s0.in.sku.val": ""}
            )
            assert wrong.status_code == 422
            assert re.search(r'id="s0-in-sku-err">the value &#39;&#39; does not fit', wrong.text)

    async def test_without_the_csrf_token_nothing_happens(
        self, mesh: Mesh, demo: dict[str, str]
    ) -> None:
        async with sign_in(mesh, "nadia") as nadia:
            page = await nadia.get(PAGE)
            before = await flow_count(nadia)
            data = {**builder_fields(page.text), "do": "start", "csrf": "forged"}
            resp = await nadia.post(PAGE, data=data)
            assert resp.status_code == 403
            assert await flow_count(nadia) == before


def gated_backend(gate: asyncio.Event, reached: asyncio.Event) -> FastAPI:
    app = FastAPI()

    @app.get("/slow/{sku}")
    async def slow(sku: str) -> dict[str, Any]:
        reached.set()
        await gate.wait()
        return {"sku": sku, "ok": True}

    return app


class TestLiveStatus:
    async def test_the_step_list_follows_the_flow_as_it_runs(self, mesh: Mesh) -> None:
        gate, reached = asyncio.Event(), asyncio.Event()
        async with serve_app(gated_backend(gate, reached)) as url, mesh.api() as api:
            nadia_token = mesh.bearer("nadia")
            for path, body in (
                ("/partners/northwind/backends", {"name": "slow-wms", "base_url": url}),
                (
                    "/partners/northwind/backends/slow-wms/operations",
                    {"name": "slow-check", "method": "GET", "path": "/slow/{sku}"},
                ),
            ):
                made = await api.post(path, headers=nadia_token, json=body)
                assert made.status_code in (201, 409), made.text
            async with sign_in(mesh, "nadia") as nadia:
                page = await nadia.get(PAGE)
                page = await press(nadia, page, "add", new_op="northwind.slow-check")
                last = len(step_operations(page.text)) - 1
                fields = builder_fields(page.text)
                only = {
                    "csrf": fields["csrf"],
                    "name": "Slow check",
                    "s0.op": "northwind.slow-check",
                    "s0.in.sku.src": "const",
                    "s0.in.sku.val": "C-3",
                    "do": "start",
                }
                assert fields[f"s{last}.op"] == "northwind.slow-check"
                started = await nadia.post(PAGE, data=only)
                assert started.url.path.startswith(PAGE + "/"), started.text[-2000:]
                await asyncio.wait_for(reached.wait(), 20)
                running = (await nadia.get(started.url.path)).text
                assert 'data-status="running"' in running
                assert f'href="{started.url.path}">Refresh</a>' in running, "without script"
                stream = re.search(r'data-flow-events="([^"]+)"', running)
                assert stream
                seen: list[str] = []
                async for kind, data in events(nadia, stream[1]):
                    seen.append(kind if kind != "flow" else data["status"])
                    if kind == "flow" and data["status"] == "running":
                        assert 'data-status="running"' in data["html"]
                        gate.set()
                    if kind == "flow" and data["status"] == "completed":
                        assert 'data-status="done"' in data["html"] and "C-3" in data["html"]
                assert seen[0] == "running" and seen[-2:] == ["completed", "end"], seen
                done = (await nadia.get(started.url.path)).text
                assert "data-flow-events" not in done and ">Refresh</a>" not in done
            async with sign_in(mesh, "felix") as other:
                resp = await other.get(stream[1])
                assert resp.status_code == 404 and "not found" in resp.json()["error"]
                assert (await other.get(started.url.path)).status_code == 404
