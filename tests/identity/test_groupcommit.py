"""Audit group commit: every event durable before its caller goes on, rows as the outbox
writes them, nothing half-written when the database fails, recovery afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from identity import models
from identity.context import audit_event
from identity.groupcommit import GroupCommit
from mesh.db import Database
from mesh.outbox import Outbox, outbox_table


@pytest.fixture
async def group(database_url: str) -> AsyncIterator[tuple[GroupCommit, Database]]:
    """A running group-commit loop on a fresh identity database (each engine)."""
    outbox = Outbox(models.metadata)
    db = Database(database_url, models.metadata)
    await db.create_all()
    gc = GroupCommit(db, outbox)
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


async def _rows(db: Database) -> list[dict[str, object]]:
    table = outbox_table(models.metadata)
    async with db.sessions() as s:
        return [dict(r._mapping) for r in (await s.execute(select(table))).all()]


class TestGroupCommit:
    async def test_concurrent_events_are_all_committed_like_outbox_rows(self, group):
        gc, db = group
        events = [_event(i) for i in range(60)]
        await asyncio.gather(*(gc.add([e]) for e in events))
        rows = {r["event_id"]: r for r in await _rows(db)}
        assert set(rows) == {e.id for e in events}  # all durable once add() returned
        for e in events:
            row = rows[e.id]
            assert json.loads(str(row["payload"])) == json.loads(e.model_dump_json())
            assert row["subject"] == "pm.v1.evt.acme.identity.audit"
            assert row["published_at"] is None and row["created_at"] is not None
        # the reference: what Outbox.add writes in a request's own transaction
        single = _event(999)
        async with db.transaction() as s:
            await Outbox(models.metadata).add(s, single)
        mine = {r["event_id"]: r for r in await _rows(db)}
        assert type(mine[single.id]["created_at"]) is type(rows[events[0].id]["created_at"])

    async def test_a_failed_commit_fails_its_callers_writes_nothing_and_recovers(self, group):
        gc, db = group
        async with db.transaction() as s:
            await s.execute(text("DROP TABLE mesh_outbox"))
        with pytest.raises((sqlite3.Error, DBAPIError)):  # the engine's own "no such table"
            await asyncio.gather(*(gc.add([_event(i)]) for i in range(5)))
        await db.create_all()
        await gc.add([_event(100)])
        rows = await _rows(db)
        assert [json.loads(str(r["payload"]))["data"]["details"]["jti"] for r in rows] == ["j100"]
