"""Reading events back from the real JetStream stream, as a consumer would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from nats.js.api import ConsumerConfig, DeliverPolicy

from contracts.registry import decode_events


async def first_event(
    nc: Any, subject: str, predicate: Callable[[Any], bool], what: str, timeout: float = 10.0
) -> Any:
    """The first event on ``subject`` (from the start of the stream, batches read event by
    event) for which ``predicate`` holds; fails the test after ``timeout`` seconds."""
    sub = await nc.jetstream().subscribe(
        subject,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            try:
                msg = await sub.next_msg(timeout=1)
            except TimeoutError:
                continue
            for event in decode_events(msg.data):
                if predicate(event):
                    return event
        raise AssertionError(f"no {what} on {subject}")
    finally:
        await sub.unsubscribe()
