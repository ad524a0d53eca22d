"""OpenTelemetry spans at the edge, when enabled (``PM_GATEWAY_OTEL=true``).

One SERVER span per request, continuing the caller's W3C trace context, and one
CLIENT span per operation forwarded over NATS; the NATS request carries the CLIENT
span's ``traceparent``, so the owning service continues the same trace (with its
own span when its ``OTEL`` setting is on; see ``mesh.tracing``).

Disabled (the default), the edge still continues W3C trace context itself
(``mesh.context``) and nothing here runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from contracts.policy import Operation
from gateway.settings import GatewaySettings
from mesh import context
from mesh.tracing import parent_context, sdk_provider, traceparent_of

__all__ = ["Tracing", "finish_server_span", "make_tracing", "traceparent_of"]


class Tracing:
    """Starts spans with ``tracer`` (an OpenTelemetry Tracer), or does nothing without one."""

    def __init__(self, tracer: Any = None) -> None:
        self.tracer = tracer

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    @contextlib.contextmanager
    def server(self, method: str, path: str, parent: str | None) -> Iterator[Any]:
        """The request's span; ``mesh.context.traceparent`` then names it."""
        from opentelemetry.trace import SpanKind

        ctx = parent_context(parent)
        attributes = {"http.request.method": method, "url.path": path}
        with self.tracer.start_as_current_span(
            method, context=ctx, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            context.traceparent.set(traceparent_of(span))
            yield span

    @contextlib.contextmanager
    def client(self, op: Operation) -> Iterator[dict[str, str]]:
        """A span around one NATS request; yields the headers that carry it."""
        if self.tracer is None:
            yield {}
            return
        from opentelemetry.trace import SpanKind

        attributes = {
            "messaging.system": "nats",
            "messaging.destination.name": op.subject,
            "rpc.method": op.name,
        }
        with self.tracer.start_as_current_span(
            f"{op.subject} request", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield {"traceparent": traceparent_of(span)}


def finish_server_span(span: Any, route: str, status: int) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.update_name(f"{span.name} {route}")
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("partnermesh.route", route)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))


def make_tracing(settings: GatewaySettings, provider: Any = None) -> Tracing:
    """Tracing as configured: ``provider`` (tests), else an SDK provider when enabled."""
    if provider is None and not settings.otel:
        return Tracing()
    if provider is None:
        provider = sdk_provider("partnermesh-gateway", settings.instance)
    return Tracing(provider.get_tracer("partnermesh.gateway"))
