"""Metrics of the gateway itself (exposed with the process-wide ones of ``mesh.metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from mesh.metrics import LATENCY_BUCKETS, http_latency, http_requests, rate_limited

__all__ = [
    "http_latency",
    "http_requests",
    "mashup_items",
    "rate_limited",
    "upstream_latency",
    "upstream_requests",
]

upstream_requests = Counter(
    "pm_gateway_upstream_requests_total",
    "Operations the gateway forwarded over NATS, by outcome code",
    ["operation", "code"],
)
upstream_latency = Histogram(
    "pm_gateway_upstream_seconds",
    "Time from forwarding an operation over NATS to its reply",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
mashup_items = Counter(
    "pm_gateway_mashup_items_total", "Sub-requests of mashups, by status", ["status"]
)
