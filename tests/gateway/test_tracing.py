"""OpenTelemetry at the edge: a SERVER span per request, a CLIENT span per NATS hop, and
the NATS request carrying the CLIENT span's trace context into the service's own span."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts import headers as h
from contracts.v1 import system
from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer
from tests.support.tokens import TokenFactory

ECHO = "/v1/ecosystems/acme/echo"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
async def echo_headers(nc: Client) -> AsyncIterator[list[dict[str, str]]]:
    """A real NATS responder for the echo subject that records the headers it receives."""
    seen: list[dict[str, str]] = []

    async def handle(msg: Msg) -> None:
        seen.append(dict(msg.headers or {}))
        req = json.loads(msg.data)
        reply = system.EchoReply(
            message=req["message"],
            eco=req["eco"],
            sub="s",
            partner=None,
            client_id="c",
            service="recorder",
            instance="0",
        )
        await msg.respond(reply.model_dump_json().encode())

    sub = await nc.subscribe(system.ECHO.subject, cb=handle)
    await nc.flush()
    yield seen
    await sub.unsubscribe()


def by_kind(exporter: InMemorySpanExporter, kind: SpanKind) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.kind is kind]


class TestSpans:
    async def test_request_continues_the_callers_trace_into_nats(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        spans: tuple[TracerProvider, InMemorySpanExporter],
        echo_headers: list[dict[str, str]],
        tokens: TokenFactory,
    ) -> None:
        provider, exporter = spans
        async with start_gateway(tracer_provider=provider) as gw:
            r = await gw.get(
                ECHO, headers={**bearer(tokens.mint()), "traceparent": f"00-{TRACE}-{PARENT}-01"}
            )
        assert r.status_code == 200
        (server,) = by_kind(exporter, SpanKind.SERVER)
        (client,) = by_kind(exporter, SpanKind.CLIENT)
        assert f"{server.context.trace_id:032x}" == TRACE
        assert f"{server.parent.span_id:016x}" == PARENT
        assert client.parent.span_id == server.context.span_id
        assert server.name == "GET system.echo"
        assert server.attributes["http.response.status_code"] == 200
        assert client.attributes["messaging.destination.name"] == system.ECHO.subject
        sent = echo_headers[-1][h.TRACEPARENT]
        assert sent == f"00-{TRACE}-{client.context.span_id:016x}-01"

    async def test_the_trace_continues_through_nats_into_the_service(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        spans: tuple[TracerProvider, InMemorySpanExporter],
        traced_profile: ServiceRuntime,
        tokens: TokenFactory,
    ) -> None:
        provider, exporter = spans
        async with start_gateway(tracer_provider=provider) as gw:
            r = await gw.get(
                ECHO, headers={**bearer(tokens.mint()), "traceparent": f"00-{TRACE}-{PARENT}-01"}
            )
        assert r.status_code == 200
        (client,) = by_kind(exporter, SpanKind.CLIENT)
        (service,) = [
            s for s in by_kind(exporter, SpanKind.SERVER) if s.name.startswith("profile/")
        ]
        assert service.parent.span_id == client.context.span_id
        assert service.context.trace_id == client.context.trace_id
        assert f"{service.context.trace_id:032x}" == TRACE
        assert service.attributes["rpc.method"] == system.ECHO.name
        assert service.attributes["messaging.system"] == "nats"

    async def test_without_a_caller_trace_the_gateway_starts_one(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        spans: tuple[TracerProvider, InMemorySpanExporter],
        echo_headers: list[dict[str, str]],
        tokens: TokenFactory,
    ) -> None:
        provider, exporter = spans
        async with start_gateway(tracer_provider=provider) as gw:
            await gw.get(ECHO, headers=bearer(tokens.mint()))
        (server,) = by_kind(exporter, SpanKind.SERVER)
        assert server.parent is None
        assert echo_headers[-1][h.TRACEPARENT].split("-")[1] == f"{server.context.trace_id:032x}"

    async def test_each_mashup_item_gets_its_own_client_span(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        spans: tuple[TracerProvider, InMemorySpanExporter],
        echo_headers: list[dict[str, str]],
        tokens: TokenFactory,
    ) -> None:
        provider, exporter = spans
        batch = {"requests": [{"id": str(i), "path": ECHO} for i in range(3)]}
        async with start_gateway(tracer_provider=provider) as gw:
            r = await gw.post(
                "/v1/ecosystems/acme/mashup", json=batch, headers=bearer(tokens.mint())
            )
        assert r.json()["complete"] is True
        (server,) = by_kind(exporter, SpanKind.SERVER)
        clients = by_kind(exporter, SpanKind.CLIENT)
        assert len(clients) == 3
        assert {c.parent.span_id for c in clients} == {server.context.span_id}

    async def test_denials_and_failures_are_recorded(
        self,
        start_gateway: Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]],
        spans: tuple[TracerProvider, InMemorySpanExporter],
        tokens: TokenFactory,
    ) -> None:
        provider, exporter = spans
        async with start_gateway(tracer_provider=provider, request_timeout=0.2) as gw:
            denied = await gw.get(ECHO)
            unavailable = await gw.get(ECHO, headers=bearer(tokens.mint()))
        assert (denied.status_code, unavailable.status_code) == (401, 503)
        servers = by_kind(exporter, SpanKind.SERVER)
        assert [s.attributes["http.response.status_code"] for s in servers] == [401, 503]
        assert servers[1].status.is_ok is False
        assert len(by_kind(exporter, SpanKind.CLIENT)) == 1  # the denied call never left
