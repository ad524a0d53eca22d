"""Fixtures for gateway tests: a real gateway under uvicorn, real NATS, the real profile service."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from mesh.identityroute import default_tls
from mesh.runtime import ServiceRuntime
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support.infra import serve_app
from tests.support.services import run_service
from tests.support.tokens import TEST_IDENTITY_URL, TestKeys


def gateway_settings(nats_url: str, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "identity_url": TEST_IDENTITY_URL,
        "environment": "test",
        "request_timeout": 2.0,
        "rate_limit_key_prefix": f"pm:test:{uuid.uuid4().hex}:",
    }
    values.update(overrides)
    return GatewaySettings(**values)


@pytest.fixture
def start_gateway(
    nats_url: str, test_keys: TestKeys
) -> Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Starts a real gateway (uvicorn on loopback) with given settings; yields a client for it."""

    @contextlib.asynccontextmanager
    async def start(
        operations: Any = None, tracer_provider: Any = None, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = gateway_settings(nats_url, **overrides)
        kwargs = {"operations": operations} if operations is not None else {}
        app = create_app(
            settings, verifier=test_keys.verifier(), tracer_provider=tracer_provider, **kwargs
        )
        # The process's TLS context (a context of its own would read the CA bundle again).
        async with (
            serve_app(app) as url,
            httpx.AsyncClient(base_url=url, timeout=10, verify=default_tls()) as client,
        ):
            yield client

    return start


@pytest.fixture
async def gateway(
    start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    """A client for a real gateway with default settings."""
    async with start_gateway() as client:
        yield client


@pytest.fixture
async def profile(
    nats_url: str, tmp_path: Path, test_keys: TestKeys
) -> AsyncIterator[ServiceRuntime]:
    """The real profile service (it serves the echo operation) on the test NATS.

    The gateway holds no data, so its tests run the service on SQLite only; the
    authorization matrix runs every service on every configured engine.
    """
    async with run_service(
        "profile",
        ProfileSettings,
        models.metadata,
        handlers.register,
        nats_url=nats_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'profile.db'}",
        verifier=test_keys.verifier(),
    ) as rt:
        yield rt


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
