"""Outbox and consumers: no event lost across a crash, none applied twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import headers
from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.registry import decode_events
from contracts.subjects import event_filter, event_subject
from contracts.v1.identity import (
    AuditData,
    AuditEvent,
    RevokedToken,
    TokenRevoked,
    TokenRevokedData,
)
from mesh.consumer import EventConsumer, Inbox
from mesh.db import Database
from mesh.errors import MeshError
from mesh.nats import ensure_event_stream
from mesh.outbox import OutboxRelay, OutboxRow, _acknowledged, batched
from tests.support import outbox_writer


@pytest.fixture
def eco() -> str:
    """A fresh ecosystem name, so each test sees only its own events in the shared stream."""
    return f"eco{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def js(nc: Client) -> JetStreamContext:
    """JetStream on the test NATS with the event stream in place."""
    js = nc.jetstream()
    await ensure_event_stream(js)
    return js


class Recorder:
    """A consumer's own database where handled events are counted (one row per handling)."""

    def __init__(self, url: str) -> None:
        self.metadata = MetaData()
        self.seen = Table(
            "seen",
            self.metadata,
            Column("n", Integer, primary_key=True),
            Column("event_id", String(64)),
        )
        self.inbox = Inbox(self.metadata)
        self.db = Database(url, self.metadata)

    async def handle(self, session: AsyncSession, event: EventBase) -> None:
        await session.execute(insert(self.seen).values(event_id=event.id))

    async def count(self, event_id: str | None = None) -> int:
        async with self.db.transaction() as s:
            q = select(func.count()).select_from(self.seen)
            if event_id:
                q = q.where(self.seen.c.event_id == event_id)
            return int((await s.execute(q)).scalar_one())

    async def wait_for(self, n: int, timeout: float = 10.0) -> None:
        for _ in range(int(timeout / 0.05)):
            if await self.count() >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {n} handled events, saw {await self.count()}")


@pytest.fixture
async def recorder(tmp_path: Path, js: JetStreamContext, eco: str) -> AsyncIterator[Recorder]:
    """A running durable consumer of this test's ecosystem's events, recording what it handles."""
    rec = Recorder(f"sqlite+aiosqlite:///{tmp_path / 'consumer.db'}")
    await rec.db.create_all()
    consumer = EventConsumer(js, rec.db, rec.inbox, f"rec-{eco}", [event_filter(eco)], rec.handle)
    task = asyncio.create_task(consumer.run())
    yield rec
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await rec.db.dispose()


class TestOutbox:
    async def test_event_commits_with_state_and_is_relayed(
        self, nc: Client, database_url: str, js: JetStreamContext, recorder: Recorder, eco: str
    ) -> None:
        db = Database(database_url, outbox_writer.metadata)
        await db.create_all()
        relay = OutboxRelay(db, outbox_writer.outbox, nc, "test")
        task = asyncio.create_task(relay.run())
        try:
            event = AuditEvent(ecosystem=eco, data=AuditData(action="x"))
            async with db.transaction() as session:
                await session.execute(insert(outbox_writer.widgets).values(name="a"))
                await outbox_writer.outbox.add(session, event)
            await recorder.wait_for(1)
            assert await relay.pending() == 0
        finally:
            task.cancel()
            await db.dispose()

    async def test_rolled_back_change_publishes_nothing(
        self, nc: Client, database_url: str, js: JetStreamContext, eco: str
    ) -> None:
        db = Database(database_url, outbox_writer.metadata)
        await db.create_all()
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await outbox_writer.outbox.add(
                    session, AuditEvent(ecosystem=eco, data=AuditData(action="x"))
                )
                raise RuntimeError("the state change failed")
        relay = OutboxRelay(db, outbox_writer.outbox, nc, "test")
        assert await relay.relay_once() == 0
        await db.dispose()

    async def test_survives_kill_9_between_commit_and_publish(
        self, nc: Client, tmp_path: Path, js: JetStreamContext, recorder: Recorder, eco: str
    ) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'writer.db'}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.outbox_writer", url, eco],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.startswith("committed "), line
        event_id = line.split()[1]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        await asyncio.sleep(0.3)
        assert await recorder.count() == 0  # nothing was published before the crash

        db = Database(url, outbox_writer.metadata)  # "the restarted process"
        relay = OutboxRelay(db, outbox_writer.outbox, nc, "test")
        assert await relay.pending() == 1
        assert await relay.relay_once() == 1
        await recorder.wait_for(1)
        assert await relay.relay_once() == 0
        await asyncio.sleep(0.3)
        assert await recorder.count(event_id) == 1
        await db.dispose()

    async def test_published_but_unmarked_row_is_deduplicated(
        self, nc: Client, tmp_path: Path, js: JetStreamContext, recorder: Recorder, eco: str
    ) -> None:
        """A crash after publish but before marking republishes; the stream drops the copy."""
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}", outbox_writer.metadata)
        await db.create_all()
        event = AuditEvent(ecosystem=eco, data=AuditData(action="x"))
        async with db.transaction() as session:
            await outbox_writer.outbox.add(session, event)
        # What the relay had sent just before dying:
        await js.publish(
            event_subject(eco, event.type),
            event.model_dump_json().encode(),
            headers={headers.MSG_ID: event.id},
        )
        relay = OutboxRelay(db, outbox_writer.outbox, nc, "test")
        assert await relay.relay_once() == 1
        await recorder.wait_for(1)
        await asyncio.sleep(0.3)
        assert await recorder.count(event.id) == 1
        await db.dispose()

    async def test_refused_rows_stay_and_are_retried(
        self, nc: Client, database_url: str, js: JetStreamContext, recorder: Recorder, eco: str
    ) -> None:
        """In one batch, rows no stream takes stay unpublished; the acknowledged ones do not."""
        db = Database(database_url, outbox_writer.metadata)
        await db.create_all()
        t = outbox_writer.outbox.table
        good = [AuditEvent(ecosystem=eco, data=AuditData(action=f"ok{i}")) for i in range(3)]
        stray = [AuditEvent(ecosystem=eco, data=AuditData(action=f"no{i}")) for i in range(2)]
        outside = f"nostream{eco}.audit"  # a subject no stream captures: "no responders"
        async with db.transaction() as session:
            for ok, no in zip(good, stray, strict=False):
                await outbox_writer.outbox.add(session, ok)
                await session.execute(
                    insert(t).values(
                        event_id=no.id,
                        subject=outside,
                        payload=no.model_dump_json(),
                        created_at=datetime.now(UTC),
                    )
                )
            await outbox_writer.outbox.add(session, good[2])
        relay = OutboxRelay(db, outbox_writer.outbox, nc, "test", ack_timeout=5)
        try:
            assert await relay.relay_once() == 3
            await recorder.wait_for(3)
            assert await unpublished(db, t) == {e.id for e in stray}
            assert await relay.relay_once() == 0  # retried, refused again, still there
            assert await unpublished(db, t) == {e.id for e in stray}
            # Once a stream takes the subject, the same rows go out, exactly once each.
            await js.add_stream(name=f"S{eco}", subjects=[f"nostream{eco}.>"])
            try:
                assert await relay.relay_once() == 2
                assert await relay.pending() == 0
                assert (await js.stream_info(f"S{eco}")).state.messages == 2
            finally:
                await js.delete_stream(f"S{eco}")
            assert await recorder.count() == 3  # nothing sent twice to the event stream
        finally:
            await relay.close()
            await db.dispose()

    async def test_absent_stream_leaves_the_batch_for_later(
        self, nc: Client, database_url: str, js: JetStreamContext, eco: str
    ) -> None:
        """A stream temporarily gone refuses everything: nothing is marked; later all goes."""
        db = Database(database_url, outbox_writer.metadata)
        await db.create_all()
        t = outbox_writer.outbox.table
        subject = f"later{eco}.audit"
        events = [AuditEvent(ecosystem=eco, data=AuditData(action=f"e{i}")) for i in range(4)]
        async with db.transaction() as session:
            for e in events:
                await session.execute(
                    insert(t).values(
                        event_id=e.id,
                        subject=subject,
                        payload=e.model_dump_json(),
                        created_at=datetime.now(UTC),
                    )
                )
        relay = OutboxRelay(db, outbox_writer.outbox, nc, "test", ack_timeout=5)
        try:
            assert await relay.relay_once() == 0
            assert await unpublished(db, t) == {e.id for e in events}
            await js.add_stream(name=f"L{eco}", subjects=[f"later{eco}.>"])
            try:
                assert await relay.relay_once() == 4
                assert await unpublished(db, t) == set()
                assert (await js.stream_info(f"L{eco}")).state.messages == 4
            finally:
                await js.delete_stream(f"L{eco}")
        finally:
            await relay.close()
            await db.dispose()

    async def test_stream_error_reply_leaves_only_that_row(
        self, nc: Client, database_url: str, js: JetStreamContext, eco: str
    ) -> None:
        """A stream that answers with an error (here: full, discard new) keeps that row back."""
        db = Database(database_url, outbox_writer.metadata)
        await db.create_all()
        t = outbox_writer.outbox.table
        subject = f"full{eco}.audit"
        events = [AuditEvent(ecosystem=eco, data=AuditData(action=f"e{i}")) for i in range(3)]
        async with db.transaction() as session:
            for e in events:
                await session.execute(
                    insert(t).values(
                        event_id=e.id,
                        subject=subject,
                        payload=e.model_dump_json(),
                        created_at=datetime.now(UTC),
                    )
                )
        await js.add_stream(
            name=f"F{eco}", subjects=[f"full{eco}.>"], max_msgs=2, discard=DiscardPolicy.NEW
        )
        relay = OutboxRelay(db, outbox_writer.outbox, nc, "test", ack_timeout=5)
        try:
            assert await relay.relay_once() == 2
            assert await unpublished(db, t) == {events[2].id}  # the one the full stream refused
            await js.purge_stream(f"F{eco}")
            assert await relay.relay_once() == 1
            assert await relay.pending() == 0
        finally:
            await js.delete_stream(f"F{eco}")
            await relay.close()
            await db.dispose()


def _audit(eco: str, action: str = "x") -> AuditEvent:
    return AuditEvent(ecosystem=eco, data=AuditData(action=action))


def _row(event) -> OutboxRow:  # type: ignore[no-untyped-def]
    return OutboxRow.of(event)


class TestBatched:
    def test_joins_each_batchable_subject_in_order_and_leaves_the_rest(self) -> None:
        a = [_audit("a", f"a{i}") for i in range(3)]
        b = [_audit("b", f"b{i}") for i in range(2)]
        revoked = TokenRevoked(
            ecosystem="a", data=TokenRevokedData(tokens=[RevokedToken(jti="j", exp=1)])
        )
        rows = [_row(a[0]), _row(b[0]), _row(revoked), _row(a[1]), _row(b[1]), _row(a[2])]
        out = batched(rows)
        assert [r.subject for r in out] == [
            "pm.v1.evt.a.identity.audit",
            "pm.v1.evt.b.identity.audit",
            "pm.v1.evt.a.identity.token_revoked",
        ]
        assert out[2] == _row(revoked)  # not batchable: as it was
        assert [e.id for e in decode_events(out[0].payload)] == [e.id for e in a]
        assert [e.id for e in decode_events(out[1].payload)] == [e.id for e in b]
        assert decode_events(out[0].payload) == a  # every event whole
        assert len({r.event_id for r in out} | {e.id for e in a + b}) == 3 + 5  # fresh ids

    def test_a_lone_event_stays_a_plain_event(self) -> None:
        one = _row(_audit("a"))
        assert batched([one]) == [one]
        assert batched([one, _row(_audit("b"))])[0] == one

    @pytest.mark.parametrize(("max_events", "max_chars"), [(4, 10**6), (100, 1500)])
    def test_batches_are_bounded(self, max_events: int, max_chars: int) -> None:
        events = [_audit("a", f"a{i}") for i in range(10)]
        out = batched([_row(e) for e in events], max_events=max_events, max_chars=max_chars)
        assert len(out) > 1
        got = [e for r in out for e in decode_events(r.payload)]
        assert [e.id for e in got] == [e.id for e in events]
        for r in out:
            assert len(decode_events(r.payload)) <= max_events
            assert len(r.payload) <= max_chars or len(decode_events(r.payload)) == 1

    async def test_a_batch_is_published_once_with_its_content_type(
        self, nc: Client, database_url: str, js: JetStreamContext, eco: str
    ) -> None:
        db = Database(database_url, outbox_writer.metadata)
        await db.create_all()
        events = [_audit(eco, f"e{i}") for i in range(5)]
        (row,) = batched([_row(e) for e in events])
        async with db.transaction() as session:
            values = {**row._asdict(), "created_at": datetime.now(UTC)}
            await session.execute(insert(outbox_writer.outbox.table).values(**values))
        relay = OutboxRelay(db, outbox_writer.outbox, nc, "test")
        try:
            assert await relay.relay_once() == 1
            # published again (a crash before the mark): the stream drops the copy
            assert await relay.publish([(1, row.event_id, row.subject, row.payload)]) == [1]
            sub = await js.subscribe(row.subject, ordered_consumer=True)
            msg = await sub.next_msg(timeout=5)
            assert msg.headers is not None
            assert msg.headers[headers.MSG_ID] == row.event_id
            assert msg.headers[headers.CONTENT_TYPE] == headers.EVENT_BATCH
            assert decode_events(msg.data) == events
            with pytest.raises(TimeoutError):
                await sub.next_msg(timeout=0.5)
            await sub.unsubscribe()
        finally:
            await db.dispose()


async def unpublished(db: Database, t: Table) -> set[str]:
    async with db.sessions() as s:
        query = select(t.c.event_id).where(t.c.published_at.is_(None))
        return set((await s.execute(query)).scalars())


class TestConsumer:
    async def test_replayed_event_changes_nothing(
        self, js: JetStreamContext, recorder: Recorder, eco: str
    ) -> None:
        event = AuditEvent(ecosystem=eco, data=AuditData(action="x"))
        payload = event.model_dump_json().encode()
        for _ in range(3):  # no Msg-Id: the stream keeps all three copies
            await js.publish(event_subject(eco, event.type), payload)
        other = AuditEvent(ecosystem=eco, data=AuditData(action="y"))
        await js.publish(event_subject(eco, other.type), other.model_dump_json().encode())
        await recorder.wait_for(2)
        await asyncio.sleep(0.3)
        assert await recorder.count(event.id) == 1
        assert await recorder.count() == 2

    async def test_each_event_of_a_batch_is_handled_once(
        self, js: JetStreamContext, recorder: Recorder, eco: str
    ) -> None:
        events = [_audit(eco, f"e{i}") for i in range(4)]
        (row,) = batched([_row(e) for e in events])
        for _ in range(2):  # a redelivered batch changes nothing
            await js.publish(row.subject, row.payload.encode())
        await recorder.wait_for(4)
        await asyncio.sleep(0.3)
        assert [await recorder.count(e.id) for e in events] == [1, 1, 1, 1]
        assert await recorder.count() == 4

    async def test_a_failing_event_has_its_batch_redelivered_without_repeats(
        self, tmp_path: Path, js: JetStreamContext, eco: str
    ) -> None:
        """The second event fails once: the whole batch comes again and the first is not
        handled a second time; one rejected for good is skipped, not retried."""
        rec = Recorder(f"sqlite+aiosqlite:///{tmp_path / 'flaky.db'}")
        await rec.db.create_all()
        events = [_audit(eco, a) for a in ("first", "flaky", "third", "refused", "last")]
        failed: list[str] = []

        async def flaky(session: AsyncSession, event: EventBase) -> None:
            if event.data.action == "flaky" and not failed:
                failed.append(event.id)
                raise RuntimeError("the database blinked")
            if event.data.action == "refused":
                raise MeshError(ErrorCode.VALIDATION_FAILED, "not for this consumer")
            await rec.handle(session, event)

        (row,) = batched([_row(e) for e in events])
        consumer = EventConsumer(js, rec.db, rec.inbox, f"flaky-{eco}", [event_filter(eco)], flaky)
        task = asyncio.create_task(consumer.run())
        try:
            await js.publish(row.subject, row.payload.encode())
            await rec.wait_for(4)
            await asyncio.sleep(0.3)
            counts = [await rec.count(e.id) for e in events]
            assert failed == [events[1].id] and counts == [1, 1, 1, 0, 1]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await rec.db.dispose()

    async def test_undecodable_event_does_not_block_the_stream(
        self, js: JetStreamContext, recorder: Recorder, eco: str
    ) -> None:
        await js.publish(event_subject(eco, "pm.v1.identity.audit"), b'{"not": "an event"}')
        await js.publish(event_subject(eco, "pm.v1.identity.audit"), b'[{"not": "an event"}]')
        good = AuditEvent(ecosystem=eco, data=AuditData(action="after-poison"))
        await js.publish(event_subject(eco, good.type), good.model_dump_json().encode())
        await recorder.wait_for(1)
        assert await recorder.count(good.id) == 1

    async def test_stopping_finishes_the_event_in_hand(
        self, tmp_path: Path, js: JetStreamContext, eco: str
    ) -> None:
        rec = Recorder(f"sqlite+aiosqlite:///{tmp_path / 'slow.db'}")
        await rec.db.create_all()
        started, release = asyncio.Event(), asyncio.Event()

        async def slow(session: AsyncSession, event: EventBase) -> None:
            await rec.handle(session, event)  # inside the transaction, then wait
            started.set()
            await release.wait()

        consumer = EventConsumer(js, rec.db, rec.inbox, f"slow-{eco}", [event_filter(eco)], slow)
        task = asyncio.create_task(consumer.run())
        try:
            first = AuditEvent(ecosystem=eco, data=AuditData(action="in-hand"))
            second = AuditEvent(ecosystem=eco, data=AuditData(action="after-stop"))
            for event in (first, second):
                await js.publish(event_subject(eco, event.type), event.model_dump_json().encode())
            await asyncio.wait_for(started.wait(), 10)
            consumer.stop()
            release.set()
            await asyncio.wait_for(task, 10)  # it leaves by itself: nothing was cancelled
            assert await rec.count(first.id) == 1, "the event in hand was committed"
            assert await rec.count(second.id) == 0, "nothing new was started after stop()"
            # The rest was handed back (nak), not left to time out: the next replica to
            # start on the same durable takes it at once (ack_wait is 30 s), and the event
            # in hand is not applied a second time.
            again = EventConsumer(
                js, rec.db, rec.inbox, f"slow-{eco}", [event_filter(eco)], rec.handle
            )
            task = asyncio.create_task(again.run())
            await rec.wait_for(2, timeout=10)
            assert (await rec.count(first.id), await rec.count(second.id)) == (1, 1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await rec.db.dispose()


@pytest.mark.parametrize(
    ("reply", "acknowledged"),
    [
        (b'{"stream":"PM_EVENTS","seq":42}', True),
        (b'{"stream":"PM_EVENTS","seq":42,"duplicate":true}', True),
        (b'{"stream":"PM_EVENTS", "seq":42}', True),
        (b'{"error":{"code":503,"err_code":10077,"description":"full"}}', False),
        (b'{"stream":"PM_EVENTS","error":{"code":400,"description":"bad"}}', False),
        (b"", False),  # no responders: no stream on the subject
        (b"not json", False),
        (b"[1]", False),
    ],
)
def test_what_counts_as_a_pub_ack(reply: bytes, acknowledged: bool) -> None:
    assert _acknowledged(reply) is acknowledged
