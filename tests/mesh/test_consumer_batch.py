"""A consumer that handles each fetched batch in one transaction (``together``): every event
once, in stream order, and a batch with a failing event falls back to one by one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nats
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventBase
from contracts.subjects import event_filter
from mesh.consumer import EventConsumer, Inbox, RetrySchedule
from mesh.db import Database
from tests.mesh.test_consumer import FAST, audit, eventually, publish_event


class Ledger:
    """Each handling of an event, with the transaction it ran in."""

    def __init__(self, url: str, fail_first: set[str]) -> None:
        self.metadata = MetaData()
        self.seen = Table(
            "seen",
            self.metadata,
            Column("n", Integer, primary_key=True),
            Column("event_id", String(64)),
            Column("tx", String(32)),
        )
        self.inbox = Inbox(self.metadata)
        self.db = Database(url, self.metadata)
        self.fail_first = set(fail_first)  # these fail on their first handling only

    async def handle(self, session: AsyncSession, event: EventBase) -> None:
        tx = session.info.setdefault("tx", uuid.uuid4().hex)
        await session.execute(insert(self.seen).values(event_id=event.id, tx=tx))
        if event.id in self.fail_first:
            self.fail_first.discard(event.id)
            raise RuntimeError("a peer did not answer")

    async def rows(self) -> list[tuple[str, str]]:
        async with self.db.transaction() as s:
            query = select(self.seen.c.event_id, self.seen.c.tx).order_by(self.seen.c.n)
            return [(r.event_id, r.tx) for r in await s.execute(query)]


@pytest.fixture
def eco() -> str:
    return f"eco{uuid.uuid4().hex[:10]}"


async def run_consumer(nats_url: str, ledger: Ledger, durable: str, eco: str, n: int) -> Any:
    """Publish ``n`` events, then consume them together until all are handled."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    events = [audit(eco, f"step-{i}") for i in range(n)]
    for event in events:
        await publish_event(js, event)
    schedule = RetrySchedule((0.2, 0.2), max_deliver=5, ack_wait=5)
    consumer = EventConsumer(
        js, ledger.db, ledger.inbox, durable, [event_filter(eco)], ledger.handle,
        schedule=schedule, together=True, fetch_timeout=FAST["fetch_timeout"],
        check_interval=FAST["check_interval"],
    )  # fmt: skip
    task = asyncio.create_task(consumer.run())
    try:

        async def all_handled() -> bool:
            return {e for e, _ in await ledger.rows()} >= {e.id for e in events}

        await eventually(all_handled, "every event handled")
        await asyncio.sleep(0.5)  # nothing more arrives (no second handling)
    finally:
        consumer.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await nc.drain()
    return [e.id for e in events]


async def test_a_batch_commits_together_each_event_once_in_order(
    nats_url: str, tmp_path: Any, eco: str
) -> None:
    ledger = Ledger(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", set())
    await ledger.db.create_all()
    try:
        ids = await run_consumer(nats_url, ledger, f"together-{eco}", eco, 20)
        rows = await ledger.rows()
        assert [e for e, _ in rows] == ids, "each event once, in stream order"
        assert len({tx for _, tx in rows}) < len(ids), "events shared transactions"
    finally:
        await ledger.db.dispose()


async def test_a_failing_event_sends_its_batch_one_by_one(
    nats_url: str, tmp_path: Any, eco: str
) -> None:
    ledger = Ledger(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", set())
    await ledger.db.create_all()
    try:
        durable = f"fallback-{eco}"
        # The fifth event's handler fails once: its batch rolls back (its handlings are
        # not committed), the others go one by one, the fifth is delivered again later.
        probe = audit(eco, "probe")
        ledger.fail_first = {probe.id}
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        before = [audit(eco, f"a-{i}") for i in range(4)]
        after = [audit(eco, f"b-{i}") for i in range(4)]
        for event in [*before, probe, *after]:
            await publish_event(js, event)
        await nc.drain()
        await run_consumer(nats_url, ledger, durable, eco, 0)

        async def probe_done() -> bool:
            return probe.id in {e for e, _ in await ledger.rows()}

        await eventually(probe_done, "the failed event handled on its redelivery")
        committed = [e for e, _ in await ledger.rows()]
        expected = {e.id for e in [*before, probe, *after]}
        assert sorted(committed) == sorted(expected), "each committed once, none lost"
        assert not ledger.fail_first, "the failing handler did run (and fail) once"
    finally:
        await ledger.db.dispose()
