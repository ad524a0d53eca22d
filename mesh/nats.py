"""NATS connection with reconnects, and the JetStream event stream."""

from __future__ import annotations

import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

from contracts.subjects import EVENT_STREAM, EVENT_STREAM_SUBJECTS

log = logging.getLogger(__name__)


async def connect(url: str, name: str) -> Client:
    async def on_disconnect() -> None:
        log.warning("nats disconnected", extra={"conn": name})

    async def on_reconnect() -> None:
        log.info("nats reconnected", extra={"conn": name})

    async def on_error(exc: Exception) -> None:
        log.warning("nats error", extra={"conn": name, "error": str(exc)})

    return await nats.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )


async def ensure_event_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """Create (or keep) the one stream that holds every event, with a de-dup window."""
    config = StreamConfig(
        name=EVENT_STREAM,
        subjects=EVENT_STREAM_SUBJECTS,
        duplicate_window=600.0,
        num_replicas=replicas,
        max_age=30 * 24 * 3600.0,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        # Already there with another config (e.g. more replicas): keep it.
        await js.stream_info(EVENT_STREAM)
