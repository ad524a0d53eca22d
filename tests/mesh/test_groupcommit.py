"""The kit's group commit on each engine (its session writer): callers answered once their
rows are committed, many callers per transaction, at most ``depth`` commits at once,
failures told to their callers, published marks, and the after-commit hook."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from contracts.envelope import EventBase
from contracts.v1.identity import AuditData, AuditEvent
from mesh.db import Database
from mesh.groupcommit import GroupCommit, SessionWriter
from mesh.outbox import OutboxRow
from tests.support import outbox_writer


class CountingWriter(SessionWriter):
    """The session writer, counting its transactions and how many ran at once."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.transactions = 0
        self.running = 0
        self.most = 0

    async def write(self, rows: list[OutboxRow], marks: list[str]) -> None:
        self.transactions += 1
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(0.01)  # a slow disk: batches pile up behind it
            await super().write(rows, marks)
        finally:
            self.running -= 1


@pytest.fixture
async def group(database_url: str) -> AsyncIterator[tuple[GroupCommit, Database, CountingWriter]]:
    """A running group commit (depth 2) on a fresh database of each engine."""
    db = Database(database_url, outbox_writer.metadata)
    await db.create_all()
    writer = CountingWriter(db, outbox_writer.outbox)
    try:
        async with _running(GroupCommit(db, outbox_writer.outbox, writer, depth=2)) as gc:
            yield gc, db, writer
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def _running(gc: GroupCommit) -> AsyncIterator[GroupCommit]:
    """``gc`` with its loop running for the block."""
    task = asyncio.create_task(gc.run())
    await asyncio.sleep(0)
    try:
        yield gc
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _event(i: int) -> AuditEvent:
    return AuditEvent(ecosystem="acme", data=AuditData(action="x", details={"i": i}))


async def _rows(db: Database) -> list[dict[str, Any]]:
    table = outbox_writer.outbox.table
    async with db.sessions() as s:
        return [dict(r._mapping) for r in (await s.execute(select(table))).all()]


def _ids(rows: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for row in rows:
        payload = json.loads(row["payload"])
        found |= {e["id"] for e in (payload if isinstance(payload, list) else [payload])}
    return found


class TestGroupCommit:
    async def test_every_caller_returns_once_its_events_are_committed(
        self, group: tuple[GroupCommit, Database, CountingWriter]
    ) -> None:
        gc, db, writer = group
        events = [_event(i) for i in range(50)]

        async def add_then_read(event: AuditEvent) -> bool:
            await gc.add([event])
            return event.id in _ids(await _rows(db))  # committed by the time add returned

        assert all(await asyncio.gather(*(add_then_read(e) for e in events)))
        assert writer.transactions < len(events)  # shared transactions
        assert 1 <= writer.most <= 2  # never more than depth at once

    async def test_after_commit_hook_hears_the_committed_rows(
        self, group: tuple[GroupCommit, Database, CountingWriter]
    ) -> None:
        gc, db, _ = group
        heard: list[OutboxRow] = []
        gc.on_commit = heard.extend
        events = [_event(i) for i in range(5)]
        await asyncio.gather(*(gc.add([e]) for e in events))
        await asyncio.sleep(0)
        assert {r.event_id for r in heard} == {r["event_id"] for r in await _rows(db)}

    async def test_marks_published_in_a_later_transaction(
        self, group: tuple[GroupCommit, Database, CountingWriter]
    ) -> None:
        gc, db, _ = group
        events: list[EventBase] = [_event(i) for i in range(3)]
        await gc.add(events)
        rows = await _rows(db)
        assert all(r["published_at"] is None for r in rows)
        marked = gc.mark_published([r["event_id"] for r in rows])
        assert marked is not None
        await asyncio.wait_for(marked, 10)
        assert all(r["published_at"] is not None for r in await _rows(db))

    async def test_a_failed_commit_fails_its_callers_and_the_next_one_works(
        self, group: tuple[GroupCommit, Database, CountingWriter]
    ) -> None:
        gc, db, _ = group
        async with db.transaction() as s:
            await s.execute(text("DROP TABLE mesh_outbox"))
        with pytest.raises(DBAPIError):
            await asyncio.gather(*(gc.add([_event(i)]) for i in range(5)))
        await db.create_all()
        event = _event(100)
        await gc.add([event])
        assert _ids(await _rows(db)) == {event.id}

    async def test_without_the_loop_add_commits_in_place_and_submit_refuses(
        self, database_url: str
    ) -> None:
        db = Database(database_url, outbox_writer.metadata)
        await db.create_all()
        try:
            gc = GroupCommit(db, outbox_writer.outbox)
            event = _event(1)
            await gc.add([event])
            assert _ids(await _rows(db)) == {event.id}
            with pytest.raises(RuntimeError):
                gc.submit([OutboxRow.of(event)])
            assert gc.mark_published([event.id]) is None
        finally:
            await db.dispose()

    async def test_without_an_outbox_it_needs_a_writer_of_its_own(self, tmp_path: Path) -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", outbox_writer.metadata)
        try:
            with pytest.raises(ValueError, match="its own writer"):
                GroupCommit(db, None)
        finally:
            await db.dispose()

    @pytest.mark.parametrize("settle", [0, 3])
    async def test_a_settling_batch_takes_the_callers_of_the_next_turns_too(
        self, database_url: str, settle: int
    ) -> None:
        db = Database(database_url, outbox_writer.metadata)
        await db.create_all()
        writer = CountingWriter(db, outbox_writer.outbox)
        events = [_event(i) for i in range(3)]
        try:
            async with _running(GroupCommit(db, outbox_writer.outbox, writer, settle=settle)) as gc:

                async def after(turns: int, event: AuditEvent) -> None:
                    for _ in range(turns):
                        await asyncio.sleep(0)  # a caller reaching the group commit later
                    await gc.add([event])

                await asyncio.gather(*(after(turns, e) for turns, e in enumerate(events)))
            assert _ids(await _rows(db)) == {e.id for e in events}
            if settle:
                assert writer.transactions == 1  # all three waited for in one batch
            else:
                assert writer.transactions >= 2  # the first went alone
        finally:
            await db.dispose()
