"""Tracing fixtures: spans kept in memory, and a real profile service that records them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mesh.runtime import ServiceRuntime
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support.services import run_service
from tests.support.tokens import TestKeys


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A tracer provider that keeps finished spans in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@pytest.fixture
async def traced_profile(
    nats_url: str,
    tmp_path: Path,
    test_keys: TestKeys,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> AsyncIterator[ServiceRuntime]:
    """The real profile service, recording its spans with the ``spans`` provider."""
    async with run_service(
        "profile",
        ProfileSettings,
        models.metadata,
        handlers.register,
        nats_url=nats_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'profile.db'}",
        verifier=test_keys.verifier(),
        tracer_provider=spans[0],
    ) as rt:
        yield rt
