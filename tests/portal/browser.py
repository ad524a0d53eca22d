"""Helpers for the browser tests: sign in through the real pages, watch for CSP violations."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from identity.seed import PASSWORD
from tests.portal.mesh import Mesh

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}


@contextlib.asynccontextmanager
async def signed_in_page(
    browser: Any, mesh: Mesh, username: str, **context: Any
) -> AsyncIterator[Any]:
    """A page in a fresh browser context, signed in as ``username`` through the login form.

    Fails the test if the page reports any Content-Security-Policy violation.
    """
    ctx = await browser.new_context(**context)
    ctx.set_default_timeout(10_000)
    page = await ctx.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    try:
        await page.goto(mesh.portal_url + "/")
        await page.get_by_role("link", name="Sign in").first.click()
        await page.fill("#username", username)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(mesh.portal_url + "/")
        yield page
        assert not violations, f"CSP violations: {violations}"
    finally:
        await ctx.close()
