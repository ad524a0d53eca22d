"""Group commit of audit events for stateless token requests.

A client-credentials or token-exchange request changes no state: its only write is its
``token.issued`` audit event. Rather than one write transaction per token, requests hand
their events here and wait; one transaction adds the events of every waiting request to
the outbox, then all of them answer. Each token is still only returned after its audit
event is durably in the outbox — many tokens just share one commit.

There is no fixed wait: a batch is whatever arrived while the previous commit ran. On
SQLite the loop keeps one connection of the engine's pool and writes a batch with one
``executemany`` and one ``commit`` on the driver connection (two hops to aiosqlite's
thread instead of a session's half dozen); other engines use a session transaction.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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
        self._conn: AsyncConnection | None = None  # SQLite: held by the loop
        table = outbox.table
        dialect = db.engine.dialect
        columns = ["event_id", "subject", "payload", "created_at"]
        self._sql = str(insert(table).compile(dialect=dialect, column_keys=columns))
        self._stamp = table.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)

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
            await self._release()

    async def _commit(self, batch: list[tuple[list[EventBase], asyncio.Future[None]]]) -> None:
        events = [e for events, _ in batch for e in events]
        try:
            if self.db.dialect == "sqlite":
                await self._write_sqlite(events)
            else:
                async with self.db.transaction() as session:
                    await self._insert(session, events)
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

    async def _write_sqlite(self, events: list[EventBase]) -> None:
        if self._conn is None:
            self._conn = await self.db.engine.connect()
        raw: Any = (await self._conn.get_raw_connection()).driver_connection  # aiosqlite
        now = datetime.now(UTC)
        stamp = self._stamp(now) if self._stamp else now
        rows = [
            (e.id, event_subject(e.ecosystem, e.type), e.model_dump_json(), stamp) for e in events
        ]
        try:
            await raw.executemany(self._sql, rows)  # opens the transaction (implicit BEGIN)
            await raw.commit()
        except BaseException:
            await self._release()  # rolls back; the next batch takes a fresh connection
            raise
        self.db.committed()

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception:
                log.warning("closing the audit connection failed", exc_info=True)
