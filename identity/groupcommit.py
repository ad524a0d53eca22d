"""Group commit of audit events for stateless token requests.

A client-credentials or token-exchange request changes no state: its only write is its
``token.issued`` audit event. Rather than one write transaction per token, requests hand
their events here and wait; one transaction adds the events of every waiting request to
the outbox, then all of them answer. Each token is still only returned after its audit
event is durably in the outbox — many tokens just share one commit.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventBase
from contracts.subjects import event_subject
from mesh.db import Database
from mesh.outbox import Outbox

log = logging.getLogger(__name__)


class GroupCommit:
    def __init__(self, db: Database, outbox: Outbox, linger: float = 0.0) -> None:
        self.db = db
        self.outbox = outbox
        self.linger = linger
        self._pending: list[tuple[list[EventBase], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._running = False

    async def add(self, events: list[EventBase]) -> None:
        """Return once ``events`` are committed to the outbox."""
        if not self._running:  # no background loop (tools, tests): commit right here
            async with self.db.transaction() as session:
                await self._insert(session, events)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((events, future))
        self._wake.set()
        await future

    async def run(self) -> None:
        self._running = True
        try:
            while True:
                await self._wake.wait()
                await asyncio.sleep(self.linger)
                self._wake.clear()
                batch, self._pending = self._pending, []
                if batch:
                    await self._commit(batch)
        finally:
            self._running = False
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(RuntimeError("identity is shutting down"))

    async def _commit(self, batch: list[tuple[list[EventBase], asyncio.Future[None]]]) -> None:
        try:
            async with self.db.transaction() as session:
                await self._insert(session, [e for events, _ in batch for e in events])
        except Exception as exc:
            log.exception("audit group commit failed")
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _insert(self, session: AsyncSession, events: list[EventBase]) -> None:
        """The rows ``Outbox.add`` writes, for many events in one executemany."""
        if not events:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "event_id": e.id,
                "subject": event_subject(e.ecosystem, e.type),
                "payload": e.model_dump_json(),
                "created_at": now,
            }
            for e in events
        ]
        await session.execute(insert(self.outbox.table), rows)
