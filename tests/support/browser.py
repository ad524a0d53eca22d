"""Debian's headless Chromium for browser tests, driven by Playwright.

A journey in the browser runs on one database engine: PostgreSQL when the run has it
(production's engine), else SQLite. The portal only speaks HTTP to the mesh; what differs
between the engines is proven by the services' own tests and the portal's HTTP tests, which
run on both. Running every browser journey twice doubled the suite's longest lane.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import infra

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Debian's headless Chromium driven by Playwright (skipped, with the reason, without it)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("browser tests need the playwright package (pip install playwright)")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


def _on_sqlite(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "sqlite" in callspec.params.values()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With PostgreSQL in the run, browser journeys on SQLite are deselected (see above)."""
    if "postgres" not in infra.database_engines():
        return
    twice = [i for i in items if "browser" in getattr(i, "fixturenames", ()) and _on_sqlite(i)]
    if twice:
        config.hook.pytest_deselected(items=twice)
        dropped = set(map(id, twice))
        items[:] = [i for i in items if id(i) not in dropped]
