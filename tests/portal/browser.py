"""Helpers for the browser tests: sign in through the real pages, watch for CSP violations."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from identity.cli.seed import PASSWORD
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


AXE_VERSION = "4"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def axe_source() -> str:
    """axe-core's axe.min.js from the npm registry, installed once under test-artifacts/
    (``PARTNERMESH_AXE_JS`` may point at a vendored copy instead)."""
    given = os.environ.get("PARTNERMESH_AXE_JS")
    if given:
        return Path(given).read_text()
    prefix = ARTIFACTS / ".axe"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip(
                "the accessibility check needs npm (apt-get install npm) or PARTNERMESH_AXE_JS"
            )
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(prefix),
             f"axe-core@{AXE_VERSION}"],
            check=True,
            timeout=300,
        )  # fmt: skip
    return script.read_text()


SERIOUS = ("serious", "critical")


async def axe_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """WCAG 2 A/AA violations of the page, as axe-core reports them (``impact`` tells how
    bad: minor, moderate, serious, critical)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(source)  # not a <script>: the portal's CSP forbids inline ones
    result = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
            });
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
        }"""
    )
    return list(result)
