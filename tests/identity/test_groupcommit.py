"""Audit group commit (the kit's :class:`mesh.groupcommit.GroupCommit` with identity's lean
writer on a SQLite file, the kit's session writer on PostgreSQL): every event committed
before its caller goes on, rows as the outbox writes them, nothing half-written when the
database fails, recovery afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from contracts.registry import decode_events
from identity.lean.audit import CHECKPOINT_EVERY, HandOverRelay, SqliteWriter, lean_writer
from identity.store import models
from identity.store.transaction import audit_event
from mesh.db import Database
from mesh.groupcommit import GroupCommit
from mesh.nats import ensure_event_stream
from mesh.outbox import Outbox, OutboxRelay, OutboxRow, outbox_table


@pytest.fixture
async def group(database_url: str) -> AsyncIterator[tuple[GroupCommit, Database]]:
    """A running group-commit loop on a fresh identity database (each engine)."""
    outbox = Outbox(models.metadata)
    db = Database(database_url, models.metadata)
    await db.create_all()
    gc = GroupCommit(db, outbox, lean_writer(db, outbox))
    task = asyncio.create_task(gc.run())
    await asyncio.sleep(0)
    try:
        yield gc, db
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await db.dispose()


def _event(i: int):  # type: ignore[no-untyped-def]
    return audit_event("acme", "token.issued", actor="c", target="c", jti=f"j{i}", scope="s")


async def _rows(db: Database) -> list[dict[str, Any]]:
    table = outbox_table(models.metadata)
    async with db.sessions() as s:
        return [dict(r._mapping) for r in (await s.execute(select(table))).all()]


def _events_of(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of an outbox row (a batch row holds several), checked against contract."""
    decode_events(row["payload"])
    found = json.loads(row["payload"])
    return found if isinstance(found, list) else [found]


def _by_event(rows: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Event id -> (the row holding it, the event's JSON); no event in two rows."""
    found = [(e["id"], (row, e)) for row in rows for e in _events_of(row)]
    assert len(found) == len({event_id for event_id, _ in found})
    return dict(found)


class TestGroupCommit:
    async def test_concurrent_events_are_all_committed_like_outbox_rows(
        self, group: tuple[GroupCommit, Database]
    ) -> None:
        gc, db = group
        events = [_event(i) for i in range(60)]
        await asyncio.gather(*(gc.add([e]) for e in events))
        rows = await _rows(db)
        found = _by_event(rows)
        assert set(found) == {e.id for e in events}  # all durable once add() returned
        assert len(rows) < len(events)  # joined: one row per batch and ecosystem
        for e in events:
            row, payload = found[e.id]
            assert payload == json.loads(e.model_dump_json())
            assert row["subject"] == "pm.v1.evt.acme.identity.audit"
            assert row["published_at"] is None and row["created_at"] is not None
        # the reference: what Outbox.add writes in a request's own transaction
        single = _event(999)
        async with db.transaction() as s:
            await Outbox(models.metadata).add(s, single)
        mine = {r["event_id"]: r for r in await _rows(db)}
        assert type(mine[single.id]["created_at"]) is type(rows[0]["created_at"])

    async def test_events_of_each_ecosystem_get_their_own_batch(
        self, group: tuple[GroupCommit, Database]
    ) -> None:
        gc, db = group
        events = [
            audit_event(eco, "token.issued", actor="c", jti=f"{eco}{i}")
            for i in range(10)
            for eco in ("acme", "globex")
        ]
        await asyncio.gather(*(gc.add([e]) for e in events))
        rows = await _rows(db)
        for row in rows:
            eco = row["subject"].split(".")[3]
            assert {e["ecosystem"] for e in _events_of(row)} == {eco}
        assert set(_by_event(rows)) == {e.id for e in events}

    async def test_a_failed_commit_fails_its_callers_writes_nothing_and_recovers(
        self, group: tuple[GroupCommit, Database]
    ) -> None:
        gc, db = group
        async with db.transaction() as s:
            await s.execute(text("DROP TABLE mesh_outbox"))
        with pytest.raises((sqlite3.Error, DBAPIError)):  # the engine's own "no such table"
            await asyncio.gather(*(gc.add([_event(i)]) for i in range(5)))
        await db.create_all()
        await gc.add([_event(100)])
        rows = await _rows(db)
        assert [json.loads(str(r["payload"]))["data"]["details"]["jti"] for r in rows] == ["j100"]


@pytest.fixture
async def relayed(
    database_url: str, nc: Any
) -> AsyncIterator[tuple[GroupCommit, Database, Any, Any]]:
    """A running group commit handing its batches to a relay whose polling round sleeps
    for a minute: what reaches the stream here went through the hand-over."""
    js = nc.jetstream()
    await ensure_event_stream(js)
    outbox = Outbox(models.metadata)
    db = Database(database_url, models.metadata)
    await db.create_all()
    writer = lean_writer(db, outbox)
    assert (writer is not None) == (db.dialect == "sqlite")  # the SQLite writer hands over
    gc = GroupCommit(db, outbox, writer)
    if writer is not None:
        relay: Any = HandOverRelay(
            db, outbox, nc, "test", poll_interval=60, ack_timeout=5, group=gc, linger=0
        )
    else:  # PG: the commit wakes the relay's polling round
        relay = OutboxRelay(db, outbox, nc, "test", poll_interval=60, ack_timeout=5)
    tasks = [asyncio.create_task(gc.run()), asyncio.create_task(relay.run())]
    await asyncio.sleep(0.05)  # the relay's first (empty) polling round is over
    try:
        yield gc, db, relay, js
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await relay.close()
        await db.dispose()


async def _eventually(check: Any, within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class TestHandOverToTheRelay:
    async def test_committed_rows_are_published_then_marked(
        self, relayed: tuple[GroupCommit, Database, Any, Any]
    ) -> None:
        gc, db, relay, js = relayed
        eco = f"eco{uuid.uuid4().hex[:10]}"
        events = [
            audit_event(eco, "token.issued", actor="c", target="c", jti=f"j{i}") for i in range(40)
        ]
        await asyncio.gather(*(gc.add([e]) for e in events))
        subject = f"pm.v1.evt.{eco}.identity.audit"

        async def all_marked() -> bool:
            rows = await _rows(db)
            return all(r["published_at"] is not None for r in rows) and set(_by_event(rows)) == {
                e.id for e in events
            }

        await _eventually(all_marked)
        assert getattr(relay, "in_flight", 0) == 0
        seen = []  # what the stream holds: batches with their content type, or single events
        sub = await js.subscribe(subject, ordered_consumer=True)
        with contextlib.suppress(TimeoutError):
            while True:
                msg = await sub.next_msg(timeout=1.0)
                batch = (msg.headers or {}).get("Content-Type")
                found = decode_events(msg.data)
                assert batch == ("application/cloudevents-batch+json" if len(found) > 1 else None)
                seen += [e.id for e in found]
        await sub.unsubscribe()
        assert sorted(seen) == sorted(e.id for e in events)  # each event once, none lost
        assert len(await _rows(db)) < len(events)

    async def test_refused_rows_stay_for_the_polling_round(
        self, relayed: tuple[GroupCommit, Database, Any, Any]
    ) -> None:
        gc, db, relay, js = relayed
        if db.dialect != "sqlite":
            pytest.skip("only the SQLite writer hands its rows over")
        assert isinstance(relay, HandOverRelay)  # what the fixture runs on SQLite
        eco = f"eco{uuid.uuid4().hex[:10]}"
        rows = [
            OutboxRow(e.id, f"later{eco}.audit", e.model_dump_json())
            for e in (audit_event(eco, "token.issued", jti=f"j{i}") for i in range(5))
        ]
        await gc.submit(rows)  # no stream listens on that subject yet: every row is refused

        async def settled() -> bool:
            return relay.in_flight == 0

        await _eventually(settled)
        table = outbox_table(models.metadata)
        async with db.sessions() as s:
            query = select(table.c.event_id).where(table.c.published_at.is_(None))
            assert set((await s.execute(query)).scalars()) >= {r.event_id for r in rows}
        await js.add_stream(name=f"L{eco}", subjects=[f"later{eco}.>"])
        try:
            assert await relay.relay_once() == len(rows)
            assert (await js.stream_info(f"L{eco}")).state.messages == len(rows)
        finally:
            await js.delete_stream(f"L{eco}")


class TestOnTheLoopOrOnTheThread:
    async def test_a_taken_write_lock_sends_the_batch_to_the_thread(
        self, group: tuple[GroupCommit, Database]
    ) -> None:
        """The loop never waits for SQLite's lock: the batch waits on the writer thread and
        is committed, and answered, once the other writer lets go."""
        gc, db = group
        writer = gc.writer
        if not isinstance(writer, SqliteWriter):
            pytest.skip("only SQLite files have the writer")
        await gc.add([_event(1)])  # written on the loop
        assert writer.handed_over == 0
        other = sqlite3.connect(writer.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
            pending = asyncio.ensure_future(gc.add([_event(2)]))
            await asyncio.sleep(0.3)
            assert not pending.done() and writer.handed_over == 1
            other.execute("COMMIT")
            await asyncio.wait_for(pending, 10)
        finally:
            other.close()
        jtis = [e["data"]["details"]["jti"] for r in await _rows(db) for e in _events_of(r)]
        assert sorted(jtis) == ["j1", "j2"]
        await gc.add([_event(3)])  # and the loop writes again once the lock is free
        assert writer.handed_over == 1

    async def test_the_wal_starts_over_while_commits_go_on(
        self, group: tuple[GroupCommit, Database]
    ) -> None:
        """Checkpoints keep up with a provider that never stops committing: the WAL is
        written from its start again after each, instead of growing with every token."""
        gc, db = group
        writer = gc.writer
        if not isinstance(writer, SqliteWriter):
            pytest.skip("only SQLite files have the writer")
        wal = Path(writer.path + "-wal")
        await gc.add([_event(-1)])
        started = _wal_restarts(wal)
        commits = 6 * CHECKPOINT_EVERY
        for i in range(commits):  # one batch after another, never a pause for the thread
            await gc.add([_event(i)])
        assert _wal_restarts(wal) - started >= 3  # most of the six checkpoints restarted it
        assert len(await _rows(db)) == commits + 1


def _wal_restarts(wal: Path) -> int:
    """The WAL header's checkpoint sequence number: one more each time the WAL starts over
    (SQLite's file format, "WAL File Format")."""
    with wal.open("rb") as f:
        return int.from_bytes(f.read(16)[12:16], "big")
