"""The events of one fetch handled in one transaction, for consumers that opt in.

A consumer whose handler is state-based and touches the same rows event after event (the
tag clouds: one person's and one company's sums per post) gains from committing a
fetched batch together: one commit, and the handler may merge its writes across the
batch (see :data:`mesh.consumer.EventConsumer`'s ``together``). The promise is the same
as one event per transaction: each event has its inbox row in the transaction that
applies it, and its message is acknowledged only after that commit. Anything unusual
(a message delivered before, one that does not decode, a handler that raises, the
database away) rolls the whole batch back, and the consumer handles the messages one
by one as it always does, with its retries and dead letters.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventBase
from mesh.db import Database

log = logging.getLogger(__name__)

Claim = Callable[[AsyncSession, str, str], Awaitable[bool]]
Handler = Callable[[AsyncSession, EventBase], Awaitable[None]]


async def handle_together(
    db: Database, claim: Claim, durable: str, handler: Handler, events: list[EventBase]
) -> list[bool] | None:
    """Claim and handle ``events`` in order in one transaction. Returns, per event,
    whether it was fresh (False: handled before), or None when the transaction failed
    and was rolled back (nothing of it is committed)."""
    fresh: list[bool] = []
    try:
        async with db.transaction() as session:
            for event in events:
                new = await claim(session, durable, event.id)
                if new:
                    await handler(session, event)
                fresh.append(new)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.info(
            "batch rolled back; handling its events one by one",
            extra={"consumer": durable, "error": f"{exc.__class__.__name__}: {exc}"[:300]},
        )
        return None
    return fresh
