"""OpenTelemetry for every process, off unless its ``OTEL`` setting is true.

The gateway records a SERVER span per HTTP request and a CLIENT span per NATS
request; a service records a SERVER span per operation it handles, continuing the
``traceparent`` the request carried, so one trace runs from the caller through the
gateway and NATS into the service. Spans go to OTLP/HTTP when
``opentelemetry-exporter-otlp`` is installed and ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
set, else to stderr.

Disabled (the default), nothing here is imported on the request path; W3C trace
context still travels (``mesh.context``) and names the trace in every log line.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any


def traceparent_of(span: Any) -> str:
    """The W3C ``traceparent`` naming ``span``."""
    sc = span.get_span_context()
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def parent_context(traceparent: str | None) -> Any:
    """An OpenTelemetry context whose parent is ``traceparent`` (empty if none or invalid)."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(
        {"traceparent": traceparent} if traceparent else {}
    )


def sdk_provider(service: str, instance: str) -> Any:
    """A tracer provider for process ``service``, exporting in batches."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.name": service, "service.instance.id": instance})
    provider = TracerProvider(resource=resource)
    exporter: Any = ConsoleSpanExporter()
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        with contextlib.suppress(ImportError):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
