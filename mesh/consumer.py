"""Durable, idempotent JetStream consumers.

Each event is handled in one database transaction together with an inbox row
keyed by (consumer, event id): a redelivered or replayed event finds its row and
changes nothing. The message is acknowledged only after that commit.

A message may carry a CloudEvents batch (see :func:`mesh.outbox.batched`): its events
are handled in order, each in its own transaction with its own inbox row. One that
fails for now has the whole message redelivered later, and the events already handled
find their inbox rows then; one rejected for good is counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventBase
from contracts.registry import decode_events
from contracts.subjects import EVENT_STREAM
from mesh import metrics
from mesh.db import Database
from mesh.errors import MeshError
from mesh.outbox import stop_if_cancelled

log = logging.getLogger(__name__)

EventHandler = Callable[[AsyncSession, EventBase], Awaitable[None]]
MAX_DELIVERIES = 8


def inbox_table(metadata: MetaData) -> Table:
    if "mesh_inbox" in metadata.tables:
        return metadata.tables["mesh_inbox"]
    return Table(
        "mesh_inbox",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


class Inbox:
    def __init__(self, metadata: MetaData) -> None:
        self.table = inbox_table(metadata)

    async def claim(self, session: AsyncSession, consumer: str, event_id: str) -> bool:
        """Record the event as processed by ``consumer``; False if it already was."""
        t = self.table
        seen = await session.execute(
            select(t.c.event_id).where(t.c.consumer == consumer, t.c.event_id == event_id)
        )
        if seen.first() is not None:
            return False
        await session.execute(
            insert(t).values(consumer=consumer, event_id=event_id, processed_at=datetime.now(UTC))
        )
        return True


class EventConsumer:
    """A durable pull consumer that hands each event to ``handler`` exactly once in effect."""

    def __init__(
        self,
        js: JetStreamContext,
        db: Database,
        inbox: Inbox,
        durable: str,
        filter_subjects: list[str],
        handler: EventHandler,
        batch: int = 64,
    ) -> None:
        self.js = js
        self.db = db
        self.inbox = inbox
        self.durable = durable
        self.filter_subjects = filter_subjects
        self.handler = handler
        self.batch = batch
        self._stopping = False
        self._in_hand = False

    def stop(self) -> None:
        """Take no new event; :meth:`run` returns once the event in hand is done.

        Cancelling mid-event would cut its database transaction short; while waiting
        for messages there is nothing to finish (see :attr:`busy`).
        """
        self._stopping = True

    @property
    def busy(self) -> bool:
        """Handling an event now (stop by waiting), not waiting for one (stop by cancelling)."""
        return self._in_hand

    async def run(self) -> None:
        config = ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30.0,
            max_deliver=MAX_DELIVERIES,
            filter_subjects=self.filter_subjects,
        )
        await self.js.add_consumer(EVENT_STREAM, config)
        sub = await self.js.pull_subscribe_bind(durable=self.durable, stream=EVENT_STREAM)
        try:
            while not self._stopping:
                try:
                    msgs = await sub.fetch(self.batch, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    stop_if_cancelled()
                    continue
                for i, msg in enumerate(msgs):
                    if self._stopping:  # hand the rest back for another replica, now
                        for rest in msgs[i:]:
                            with contextlib.suppress(Exception):
                                await rest.nak()
                        break
                    self._in_hand = True
                    try:
                        await self._process(msg)
                    finally:
                        self._in_hand = False
                stop_if_cancelled()
        finally:
            # A fetch cut short leaves messages queued on the subscription, and a
            # connection drain would wait for them forever: let go of it first.
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _process(self, msg: object) -> None:
        data = msg.data  # type: ignore[attr-defined]
        try:
            events = decode_events(data)
        except ValidationError:
            log.error("undecodable event dropped", extra={"consumer": self.durable})
            metrics.events_consumed.labels(self.durable, "poison").inc()
            await msg.term()  # type: ignore[attr-defined]
            return
        outcomes = []
        for event in events:
            outcome = await self._handle(event)
            metrics.events_consumed.labels(self.durable, outcome).inc()
            if outcome == "retry":
                await msg.nak(delay=1.0)  # type: ignore[attr-defined]
                return
            outcomes.append(outcome)
        if outcomes == ["rejected"]:
            await msg.term()  # type: ignore[attr-defined]
        else:
            await msg.ack()  # type: ignore[attr-defined]

    async def _handle(self, event: EventBase) -> str:
        """Handle one event once in effect: ``ok``, ``duplicate``, ``rejected`` (a
        permanent failure, recorded) or ``retry`` (to be delivered again)."""
        try:
            async with self.db.transaction() as session:
                fresh = await self.inbox.claim(session, self.durable, event.id)
                if fresh:
                    await self.handler(session, event)
        except MeshError as exc:
            # Expected, permanent failure of this event: record and move on.
            log.warning("event rejected", extra={"event_id": event.id, "error": str(exc)})
            return "rejected"
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event handler failed; will retry", extra={"event_id": event.id})
            return "retry"
        return "ok" if fresh else "duplicate"
