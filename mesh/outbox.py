"""Transactional outbox: the state change and its event commit together; a relay publishes.

The relay publishes each row to JetStream with ``Nats-Msg-Id`` set to the event
id, so a row published just before a crash (and not yet marked) is published
again after restart and de-duplicated by the stream; consumers de-duplicate too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import headers
from contracts.envelope import EventBase
from contracts.subjects import event_subject
from mesh import metrics
from mesh.db import Database

log = logging.getLogger(__name__)


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop but a library swallowed it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def outbox_table(metadata: MetaData) -> Table:
    if "mesh_outbox" in metadata.tables:
        return metadata.tables["mesh_outbox"]
    return Table(
        "mesh_outbox",
        metadata,
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("subject", String(255), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True, index=True),
    )


class Outbox:
    """Adds events to the outbox in the caller's transaction."""

    def __init__(self, metadata: MetaData) -> None:
        self.table = outbox_table(metadata)

    async def add(self, session: AsyncSession, event: EventBase) -> None:
        await session.execute(
            insert(self.table).values(
                event_id=event.id,
                subject=event_subject(event.ecosystem, event.type),
                payload=event.model_dump_json(),
                created_at=datetime.now(UTC),
            )
        )


class OutboxRelay:
    """Publishes committed outbox rows in order, then marks them published."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        js: JetStreamContext,
        service: str,
        poll_interval: float = 1.0,
        batch: int = 200,
        ack_timeout: float = 10.0,
    ) -> None:
        self.db = db
        self.table = outbox.table
        self.js = js
        self.service = service
        self.poll_interval = poll_interval
        self.batch = batch
        self.ack_timeout = ack_timeout
        self._wake = asyncio.Event()
        db.on_commit(self._wake.set)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                sent = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
                sent = 0
                await asyncio.sleep(self.poll_interval)
            if sent < self.batch:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
                # cancellation that races with the wake-up, and the relay would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
            stop_if_cancelled()

    async def relay_once(self) -> int:
        """Publish up to one batch; returns how many rows were published."""
        t = self.table
        # Not db.transaction(): the relay's own commits must not wake the relay.
        async with self.db.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(t.c.seq, t.c.event_id, t.c.subject, t.c.payload)
                    .where(t.c.published_at.is_(None))
                    .order_by(t.c.seq)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            await self._publish(rows)
            if rows:
                await session.execute(
                    update(t)
                    .where(t.c.seq.in_([r.seq for r in rows]))
                    .values(published_at=datetime.now(UTC))
                )
        if rows:
            metrics.events_published.labels(self.service).inc(len(rows))
        return len(rows)

    async def _publish(self, rows: Sequence[Any]) -> None:
        """Publish in order without waiting for each ack in turn, then wait for all acks.

        Any failed or missing ack raises, so the batch stays unpublished and is sent
        again (the stream de-duplicates on the event id).
        """
        acks: list[asyncio.Future[Any]] = []
        try:
            for row in rows:
                hdrs = {headers.MSG_ID: row.event_id}
                acks.append(
                    await self.js.publish_async(row.subject, row.payload.encode(), headers=hdrs)
                )
            async with asyncio.timeout(self.ack_timeout):
                await asyncio.gather(*acks)
        finally:
            for ack in acks:
                ack.cancel()  # no-op when done; frees the slot of an ack that never came

    async def pending(self) -> int:
        async with self.db.sessions() as session:
            query = select(func.count()).where(self.table.c.published_at.is_(None))
            return int((await session.execute(query)).scalar_one())
