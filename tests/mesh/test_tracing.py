"""OpenTelemetry in the service base: a SERVER span per handled operation, continuing the
trace context the NATS request carries, only when tracing is on."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from nats.aio.client import Client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from contracts import headers as h
from contracts.claims import Claims, Scope
from contracts.errors import ErrorCode
from contracts.subjects import request_subject
from contracts.v1 import system
from mesh.client import request_raw
from mesh.errors import MeshError
from mesh.runtime import ServiceRuntime, service_runtime
from mesh.service import MeshService
from services.profile import models
from services.profile.settings import ProfileSettings
from tests.support.tokens import TestKeys, TokenFactory

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
ECHO = b'{"eco": "acme", "message": "hi"}'


async def echo(nc: Client, token: str, traceparent: str | None = None) -> bytes:
    extra = {h.TRACEPARENT: traceparent} if traceparent else None
    return await request_raw(nc, system.ECHO.subject, ECHO, token, 2.0, extra)


class TestServiceSpans:
    async def test_a_handled_request_continues_the_callers_trace(
        self,
        nc: Client,
        traced_profile: ServiceRuntime,
        spans: tuple[TracerProvider, InMemorySpanExporter],
        tokens: TokenFactory,
    ) -> None:
        _, exporter = spans
        await echo(nc, tokens.mint(), f"00-{TRACE}-{PARENT}-01")
        (span,) = exporter.get_finished_spans()
        assert span.kind is SpanKind.SERVER
        assert f"{span.context.trace_id:032x}" == TRACE
        assert span.parent is not None and span.attributes is not None
        assert f"{span.parent.span_id:016x}" == PARENT
        assert span.name == "profile/system.echo"
        assert span.attributes["messaging.system"] == "nats"
        assert span.attributes["messaging.destination.name"] == system.ECHO.subject
        assert span.attributes["rpc.method"] == "system.echo"
        assert span.status.status_code is StatusCode.UNSET

    async def test_without_a_trace_the_service_starts_one(
        self,
        nc: Client,
        traced_profile: ServiceRuntime,
        spans: tuple[TracerProvider, InMemorySpanExporter],
        tokens: TokenFactory,
    ) -> None:
        _, exporter = spans
        await echo(nc, tokens.mint())
        (span,) = exporter.get_finished_spans()
        # mesh.client always sends a traceparent: the span continues that fresh trace
        assert span.parent is not None and span.parent.is_remote

    async def test_a_refused_caller_is_recorded_but_not_a_server_error(
        self,
        nc: Client,
        traced_profile: ServiceRuntime,
        spans: tuple[TracerProvider, InMemorySpanExporter],
        tokens: TokenFactory,
    ) -> None:
        _, exporter = spans
        with pytest.raises(MeshError):
            await echo(nc, tokens.mint(scope=Scope.PROFILE_READ.value))
        (span,) = exporter.get_finished_spans()
        assert span.attributes is not None
        assert span.attributes["error.type"] == "forbidden"
        assert span.status.status_code is StatusCode.UNSET

    async def test_a_failure_of_the_service_marks_the_span_as_an_error(
        self,
        nc: Client,
        spans: tuple[TracerProvider, InMemorySpanExporter],
        tokens: TokenFactory,
        test_keys: TestKeys,
    ) -> None:
        provider, exporter = spans
        explode = dataclasses.replace(
            system.ECHO, name="testing.explode", subject=request_subject("testing", "explode")
        )

        async def fail(claims: Claims, req: object) -> BaseModel:
            raise RuntimeError("boom")

        service = MeshService(
            nc, "testing", "0.0.1", test_keys.verifier(), tracer=provider.get_tracer("t")
        )
        service.register(explode, fail)
        await service.start()
        try:
            with pytest.raises(MeshError) as err:
                await request_raw(nc, explode.subject, ECHO, tokens.mint(), 2.0)
        finally:
            await service.stop()
        assert err.value.code is ErrorCode.INTERNAL
        (span,) = exporter.get_finished_spans()
        assert span.name == "testing/testing.explode"
        assert span.attributes is not None
        assert span.attributes["error.type"] == "internal"
        assert span.status.status_code is StatusCode.ERROR


class TestSwitch:
    async def test_off_by_default_and_no_tracer(
        self, nats_url: str, tmp_path: Path, test_keys: TestKeys
    ) -> None:
        settings = ProfileSettings(
            nats_url=nats_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
            environment="test",
        )
        assert settings.otel is False
        async with service_runtime(
            "profile", settings, models.metadata, test_keys.verifier(), setup_logging=False
        ) as rt:
            assert rt.service.tracer is None

    async def test_the_service_setting_turns_it_on(
        self, nats_url: str, tmp_path: Path, test_keys: TestKeys, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PM_PROFILE_OTEL", "true")
        settings = ProfileSettings(
            nats_url=nats_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}",
            environment="test",
        )
        assert settings.otel is True
        async with service_runtime(
            "profile", settings, models.metadata, test_keys.verifier(), setup_logging=False
        ) as rt:
            assert rt.service.tracer is not None
