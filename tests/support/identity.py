"""A real identity provider for tests: seeded demo ecosystem, served by uvicorn."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from contracts.registry import decode_events
from identity.cli import commands, seed
from identity.domain.crypto import Passwords
from identity.http.app import create_app
from identity.settings import IdentitySettings
from identity.store import models
from mesh.db import Database
from mesh.outbox import outbox_table
from tests.support import infra


@pytest.fixture(scope="session")
def demo_hashes() -> dict[str, str]:
    """argon2id hashes of the demo password, computed once per test session."""
    settings = IdentitySettings()
    pw = Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    return seed.hash_demo_passwords(pw)


async def start_idp(
    nats_url: str,
    database_url: str,
    workdir: Path,
    hashes: dict[str, str],
    public_host: str = "127.0.0.1",
    **overrides: Any,
) -> tuple[IdentitySettings, dict[str, Any], Any]:
    """``public_host``: the host of the issuer URLs (served on 127.0.0.1 either way);
    ``localhost`` for WebAuthn in a browser, whose RP ID must be a domain."""
    port = infra.free_port()
    settings = IdentitySettings(
        public_url=f"http://{public_host}:{port}",
        port=port,
        database_url=database_url,
        nats_url=nats_url,
        relay_poll_interval=0.2,
        environment="test",
        **overrides,
    )
    creds = await commands.seed_demo(settings, workdir / "demo-identity.json", hashes)
    return settings, creds, create_app(settings)


@contextlib.asynccontextmanager
async def serve_idp(
    app: Callable[..., Any], port: int | None = None, **options: Any
) -> AsyncIterator[str]:
    """The identity app under uvicorn as ``python -m identity`` serves it; yields the base
    URL."""
    options.setdefault("proxy_headers", False)  # as python -m identity: see trusted_proxies
    async with infra.serve_app(app, port, **options) as url:
        yield url


async def outbox_events(database_url: str) -> list[dict[str, Any]]:
    """Every event in identity's outbox as its JSON, those of batch rows one by one, each
    checked against its contract."""
    db = Database(database_url, models.metadata)
    try:
        async with db.sessions() as s:
            rows = (await s.execute(select(outbox_table(models.metadata).c.payload))).all()
    finally:
        await db.dispose()
    events = []
    for row in rows:
        decode_events(row.payload)  # raises on anything off contract
        found = json.loads(row.payload)
        events += found if isinstance(found, list) else [found]
    return events


async def refresh_grant(
    http: httpx.AsyncClient,
    issuer: str,
    refresh_token: str,
    client_id: str = "mesh-cli",
    **extra: str,
) -> httpx.Response:
    """A refresh-token grant at ``issuer``'s token endpoint, for a public client."""
    return await http.post(
        f"{issuer}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            **extra,
        },
    )
