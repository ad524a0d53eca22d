"""Group commit: many callers' outbox rows in one transaction, each caller answered once
its rows are committed.

A request whose only write is an event (an audit record, say) need not pay for a
transaction of its own. It hands its rows to :meth:`GroupCommit.submit` (or its events to
:meth:`GroupCommit.add`) and waits; one transaction adds the rows of every caller waiting
at that moment, then all of them go on. There is no fixed wait: a batch is whatever
arrived while the previous commit ran (and, with ``settle``, during that many more turns
of the event loop), and up to ``depth`` batches commit at once, so the event loop never
idles waiting for the database. The events of a batch are joined
into one outbox row per subject where their type allows (:func:`mesh.outbox.batched`):
one row to insert, and one message for the relay to publish and have acknowledged.

Durability is the database's commit, nothing more and nothing less. On PostgreSQL (its
default ``synchronous_commit=on``) a committed batch survives a crash of the process, of
the operating system and a power loss. On a SQLite file under the kit's pragmas
(:mod:`mesh.db`: WAL, ``synchronous=NORMAL``) a committed batch survives a crash of the
process, but the last commits before an operating-system crash or a power loss may be
rolled back when the database is next opened (the WAL is fsynced at checkpoints, not at
every commit); a deployment that must keep those runs on PostgreSQL.

The rows are outbox rows by default. A caller whose only write is a row of another
table (the connector's audit records) gives its own ``writer`` and ``join`` (how a batch's
rows are combined before the write; :func:`list` keeps them as they are) and the same
promise holds: each caller returns once its rows are committed, and a failed commit fails
every caller it covered.

After each commit :attr:`GroupCommit.on_commit` hears of the committed rows (by default it
wakes the database's after-commit hooks, i.e. the outbox relay's polling round). A
publisher that sends the rows itself may report the acknowledged ones through
:meth:`GroupCommit.mark_published`: they are marked published in the next batch's
transaction instead of one of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, insert, update

from contracts.envelope import EventBase
from mesh.db import Database
from mesh.outbox import Outbox, OutboxRow, batched

log = logging.getLogger(__name__)

Batch = list[tuple[list[Any], "asyncio.Future[None]"]]
Marks = list[tuple[list[str], "asyncio.Future[None] | None"]]


class Writer(Protocol):
    """Commits a batch: inserts ``rows`` (outbox rows, unless the group commit was given
    another ``join``) and marks the events ``marks`` published, in one transaction."""

    async def write(self, rows: list[Any], marks: list[str]) -> None: ...

    async def close(self) -> None: ...


class SessionWriter:
    """A batch in one :meth:`Database.sessions` transaction (any engine)."""

    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        table = outbox.table
        self.table = table
        self._mark = (
            update(table)
            .where(table.c.published_at.is_(None))
            .where(table.c.event_id.in_(bindparam("ids", expanding=True)))
            .values(published_at=bindparam("published_at"))
        )

    async def write(self, rows: list[OutboxRow], marks: list[str]) -> None:
        now = datetime.now(UTC)
        async with self.db.sessions() as session, session.begin():
            if rows:
                values = [{**row._asdict(), "created_at": now} for row in rows]
                await session.execute(insert(self.table), values)
            if marks:
                await session.execute(self._mark, {"ids": marks, "published_at": now})

    async def close(self) -> None:
        return None


class GroupCommit:
    """Outbox rows of many callers, committed together (see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox | None,
        writer: Writer | None = None,
        depth: int = 2,
        linger: float = 0.0,
        join: Callable[[list[Any]], list[Any]] = batched,
        settle: int = 0,
    ) -> None:
        self.db = db
        if writer is None:
            if outbox is None:
                raise ValueError("a group commit without an outbox needs its own writer")
            writer = SessionWriter(db, outbox)
        self.writer: Writer = writer
        self.join = join  # a batch's rows as written: outbox rows joined per subject
        self.linger = linger  # seconds a batch waits for more callers (0: none)
        # Turns of the event loop a batch waits for more callers (0: none): each turn lets
        # the requests read meanwhile reach submit, for a few microseconds and no timer.
        self.settle = settle
        # Hears of every committed batch's rows; by default wakes the relay's polling round.
        self.on_commit: Callable[[list[OutboxRow]], None] = lambda _rows: db.committed()
        self._pending: Batch = []
        self._marks: Marks = []
        self._wake = asyncio.Event()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None  # run()'s, once running
        self._slots = asyncio.Semaphore(depth)

    @property
    def running(self) -> bool:
        return self._running

    async def add(self, events: list[EventBase]) -> None:
        """Return once ``events`` are committed to the outbox."""
        rows = [OutboxRow.of(e) for e in events]
        if not self._running:  # no background loop (tools, tests): commit right here
            await self.writer.write(rows, [])
            self.on_commit(rows)
            return
        await self.submit(rows)

    def submit(self, rows: list[Any]) -> asyncio.Future[None]:
        """A future done once ``rows`` are committed (needs the running loop, :meth:`run`)."""
        if not self._running or self._loop is None:
            raise RuntimeError("the group commit is not running")
        future: asyncio.Future[None] = self._loop.create_future()
        self._pending.append((rows, future))
        self._wake.set()
        return future

    def mark_published(self, event_ids: list[str]) -> asyncio.Future[None] | None:
        """Mark these events published in the next batch's transaction; a future done once
        they are (or could not be: the relay's polling round then sends them again).
        None when the loop is not running (they stay unpublished for the relay)."""
        if not self._running or self._loop is None:
            return None
        future: asyncio.Future[None] = self._loop.create_future()
        self._marks.append((list(event_ids), future))
        self._wake.set()
        return future

    async def run(self) -> None:
        """The background loop that commits batches, until cancelled."""
        self._loop = asyncio.get_running_loop()  # submit's futures: no lookup per call
        self._running = True
        commits: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._wake.wait()
                if self.linger:
                    await asyncio.sleep(self.linger)
                for _ in range(self.settle):
                    await asyncio.sleep(0)
                await self._slots.acquire()  # a batch grows while the earlier ones commit
                self._wake.clear()
                batch, self._pending = self._pending, []
                marks, self._marks = self._marks, []
                if not batch and not marks:
                    self._slots.release()
                    continue
                task = asyncio.create_task(self._commit(batch, marks))
                commits.add(task)
                task.add_done_callback(commits.discard)
        finally:
            self._running = False
            if commits:
                await asyncio.gather(*commits, return_exceptions=True)
            stopping = RuntimeError("the group commit is stopping")
            for _, waiter in self._pending:
                _settle(waiter, stopping)
            for _, marked in self._marks:
                _settle(marked, stopping)
            await self.writer.close()

    async def _commit(self, batch: Batch, marks: Marks) -> None:
        rows = self.join([row for rows, _ in batch for row in rows])
        try:
            await self.writer.write(rows, [i for ids, _ in marks for i in ids])
        except Exception as exc:
            log.exception("group commit failed")
            for _, waiter in batch:
                _settle(waiter, exc)
            for _, marked in marks:
                _settle(marked, exc)
            return
        finally:
            self._slots.release()
        for _, waiter in batch:
            _settle(waiter, None)
        for _, marked in marks:
            _settle(marked, None)
        if rows:
            try:
                self.on_commit(rows)
            except Exception:  # the rows are committed: the relay's polling round sends them
                log.exception("group commit: the after-commit hook failed")


def _settle(done: asyncio.Future[None] | None, exc: BaseException | None) -> None:
    """Tell a waiting caller how its commit went (unless it stopped waiting)."""
    if done is None or done.done():
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)
