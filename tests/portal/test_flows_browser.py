"""The flow builder and a flow's live status in a real browser (headless Chromium): a
flow across three partners' back-ends built from scratch, started, and watched to its end
without a reload, at phone width (screenshots in test-artifacts/)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.portal.browser import (
    ARTIFACTS,
    PHONE,
    SERIOUS,
    axe_source,
    axe_violations,
    signed_in_page,
)
from tests.portal.mesh import Mesh
from tests.portal.test_flows import gated_backend
from tests.support.infra import serve_app

pytestmark = pytest.mark.browser


async def add_step(page: Page, operation: str) -> None:
    steps = page.locator(".build-step")
    n = await steps.count()
    await page.select_option("#f-new", operation)
    await page.get_by_role("button", name="Add step").click()
    await expect(steps).to_have_count(n + 1)


async def value(page: Page, field: str, text: str) -> None:
    """Feed the input ``field`` (its id, e.g. ``s0-in-sku``) a value typed in."""
    box = page.locator(f"#{field}-val")
    await expect(box).to_be_hidden()  # no value box until "this value" is chosen
    await page.select_option(f"#{field}-src", "const")
    await expect(box).to_be_visible()
    await box.fill(text)


async def no_sideways_scroll(page: Page, name: str) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at phone width"


async def accessible(page: Page, name: str) -> None:
    serious = [v for v in await axe_violations(page, axe_source()) if v["impact"] in SERIOUS]
    assert not serious, f"{name}: {serious}"


@pytest.fixture
async def gate(mesh: Mesh) -> AsyncIterator[asyncio.Event]:
    """northwind's ``gate-check``, on a back-end that answers once the test sets the event:
    the flow is still running when its page opens, whatever the machine's speed."""
    gate, reached = asyncio.Event(), asyncio.Event()
    async with serve_app(gated_backend(gate, reached)) as url, mesh.api() as api:
        for path, body in (
            ("/partners/northwind/backends", {"name": "gate-wms", "base_url": url}),
            (
                "/partners/northwind/backends/gate-wms/operations",
                {"name": "gate-check", "method": "GET", "path": "/slow/{sku}"},
            ),
        ):
            made = await api.post(path, headers=mesh.bearer("nadia"), json=body)
            assert made.status_code == 201, made.text
        yield gate
        gate.set()


class TestFlowBuilderInTheBrowser:
    async def test_build_a_three_partner_flow_and_watch_it_complete(
        self, browser: Any, mesh: Mesh, demo: dict[str, str], gate: asyncio.Event
    ) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        async with signed_in_page(browser, mesh, "nadia", **PHONE) as page:
            await page.goto(f"{mesh.portal_url}/connectors/flows")
            steps = page.locator(".build-step")
            while n := await steps.count():  # from scratch: the example goes
                await page.locator("#step-0").get_by_role("button", name="Remove").click()
                await expect(steps).to_have_count(n - 1)
            await page.fill("#f-name", "Restock built in the browser")
            await add_step(page, "fabrikam.demand-forecast")
            await value(page, "s0-in-sku", "A-1")
            await add_step(page, "contoso.reserve")
            await value(page, "s1-in-sku", "A-1")
            await page.select_option("#s1-in-qty-src", "demand-forecast.units")
            # Choosing an undo operation brings its inputs (the script posts the form).
            await page.select_option("#s1-comp", "contoso.release")
            await page.select_option("#s1-cin-reservation-src", "reserve.id")
            await add_step(page, "northwind.ship")
            await page.select_option("#s2-in-reservation-src", "reserve.id")
            await value(page, "s2-in-destination", "Rotterdam DC")
            await add_step(page, "northwind.gate-check")  # holds the flow until the test says
            await value(page, "s3-in-sku", "A-1")
            assert await page.input_value("#s0-in-sku-val") == "A-1", "kept across posts"
            assert await page.input_value("#f-name") == "Restock built in the browser"
            await no_sideways_scroll(page, "the builder")
            await accessible(page, "the builder")
            await page.screenshot(
                path=str(ARTIFACTS / "portal-phone-flow-builder.png"), full_page=True
            )
            await page.get_by_role("button", name="Start", exact=True).click()
            await page.wait_for_url(f"{mesh.portal_url}/connectors/flows/*")
            url = page.url
            # Followed live: no reload, the stream updates the list until the flow ends.
            box = page.locator("[data-flow-events]")
            held = page.locator(".flow-step[data-step='gate-check'][data-status='running']")
            await expect(held).to_be_visible(timeout=30_000)
            await expect(box).to_have_attribute("data-live", "open")
            assert await page.locator("#flow-live a", has_text="Refresh").count() == 1
            await page.screenshot(
                path=str(ARTIFACTS / "portal-phone-flow-running.png"), full_page=True
            )
            gate.set()
            await expect(page.locator("#flow-status")).to_have_text("completed", timeout=30_000)
            await expect(box).to_have_attribute("data-live", "ended")
            assert page.url == url
            done = page.locator(".flow-step[data-status='done']")
            await expect(done).to_have_count(4)
            names = await page.locator(".flow-step").evaluate_all(
                "els => els.map(e => e.getAttribute('data-step'))"
            )
            assert names == ["demand-forecast", "reserve", "ship", "gate-check"]
            text = await page.inner_text("#flow-steps")
            assert (
                text.count("succeeded") == 4
                and "Fabrikam" in text
                and "Northwind" in text
                and "Contoso" in text
            )
            await expect(page.locator("#flow-live")).to_be_hidden()
            await no_sideways_scroll(page, "the flow's status")
            await accessible(page, "the flow's status")
            await page.screenshot(
                path=str(ARTIFACTS / "portal-phone-flow-status.png"), full_page=True
            )
