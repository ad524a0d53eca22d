"""Prometheus metrics of every process (one registry per process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

nats_requests = Counter(
    "pm_service_requests_total", "NATS requests handled", ["service", "operation", "code"]
)
nats_latency = Histogram(
    "pm_service_request_seconds",
    "NATS request handling time",
    ["service", "operation"],
    buckets=LATENCY_BUCKETS,
)
http_requests = Counter(
    "pm_http_requests_total", "HTTP requests", ["process", "route", "status", "partner"]
)
http_latency = Histogram(
    "pm_http_request_seconds", "HTTP request time", ["process", "route"], buckets=LATENCY_BUCKETS
)
rate_limited = Counter(
    "pm_rate_limited_total", "Requests refused by a rate limit", ["process", "partner"]
)
events_published = Counter("pm_events_published_total", "Outbox events published", ["service"])
events_consumed = Counter("pm_events_consumed_total", "Events consumed", ["consumer", "outcome"])
bus_permission_violations = Counter(
    "pm_nats_permission_violations_total",
    "Publishes and subscriptions the NATS server refused as outside this connection's grants",
    ["conn"],
)
# Consumers (mesh.consumer): whether each can pull, how far behind it is, what came back.
consumer_up = Gauge(
    "pm_consumer_up", "1 while the durable consumer can pull from its stream", ["consumer"]
)
consumer_pending = Gauge(
    "pm_consumer_pending", "Messages of the stream the consumer has yet to get", ["consumer"]
)
consumer_ack_pending = Gauge(
    "pm_consumer_ack_pending", "Messages delivered to the consumer and not yet acked", ["consumer"]
)
events_redelivered = Counter(
    "pm_events_redelivered_total", "Messages delivered again (after a failure)", ["consumer"]
)
dead_letters = Counter(
    "pm_dead_letters_total",
    "Events put on the dead-letter stream (alert on any increase)",
    ["consumer", "reason"],
)
# The revocation feed (mesh.revocation): seconds since it last heard from the stream.
revocation_feed_age = Gauge(
    "pm_revocation_feed_age_seconds", "Seconds since the revocation feed last heard from JetStream"
)
revocation_feed_up = Gauge("pm_revocation_feed_up", "1 while the revocation feed can pull")


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
