"""Run a real service in the test's event loop, on the test NATS and a fresh database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import MetaData

from mesh.runtime import ServiceRuntime, service_runtime
from mesh.settings import ServiceSettings
from mesh.tokens import TokenVerifier


@contextlib.asynccontextmanager
async def run_service(
    name: str,
    settings_cls: type[ServiceSettings],
    metadata: MetaData,
    register: Callable[[ServiceRuntime], None],
    *,
    nats_url: str,
    database_url: str,
    verifier: TokenVerifier,
    tracer_provider: Any = None,
    **settings: object,
) -> AsyncIterator[ServiceRuntime]:
    cfg = settings_cls(
        nats_url=nats_url,
        database_url=database_url,
        environment="test",
        **settings,  # type: ignore[arg-type]
    )
    async with service_runtime(
        name,
        cfg,
        metadata,
        verifier=verifier,
        setup_logging=False,
        tracer_provider=tracer_provider,
    ) as rt:
        register(rt)
        await rt.start()
        yield rt
