"""Group commit of audit events for stateless token requests.

A client-credentials or token-exchange request changes no state: its only write is its
``token.issued`` audit event. Rather than one write transaction per token, requests hand
their events here and wait; one transaction adds the events of every waiting request to
the outbox, then all of them answer. Each token is still only returned after its audit
event is durably in the outbox — many tokens just share one commit.

There is no fixed wait: a batch is whatever arrived while the previous commit ran, and
the next batch may start while one is still committing (at most ``depth`` at once), so
the event loop never idles waiting for the database. The events of a batch are joined
into one outbox row per ecosystem, a CloudEvents JSON batch (:func:`mesh.outbox.batched`):
one row to insert and one message to publish and have acknowledged, not one per token;
that was about a fifth of the process's CPU per token. On a SQLite file each batch is
one ``BEGIN IMMEDIATE``, one ``executemany``, ``COMMIT`` on a connection of the writer's
own (the same file and pragmas as the engine's) — a fifth of what a session transaction
costs through aiosqlite. Other engines use a session transaction per batch.

On SQLite the batch is written right on the event loop when the write lock is free at
once: a WAL commit with ``synchronous=NORMAL`` writes the log without fsync, about 10 µs
a row, which costs the loop less than handing the batch to a thread and back (and the
thread's GIL traffic slowed every signature on the loop). The loop never waits for the
lock: when another connection holds it, the batch goes to the writer thread, which
waits with the engine's busy timeout. Checkpoints, the part that fsyncs, never run on
the loop: its connection has automatic checkpoints off and the thread checkpoints
(``PASSIVE``) every ``CHECKPOINT_EVERY`` commits made on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventBase
from mesh.db import Database
from mesh.outbox import Outbox, OutboxRelay, OutboxRow, batched

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 256  # loop commits between two checkpoints by the writer thread
MARKS_PER_STATEMENT = 500  # bound parameters per UPDATE (SQLite allows 32766)
# called once the rows are committed: with None, or with what made the commit fail
Done = Callable[[BaseException | None], None]
Batch = list[tuple[list[OutboxRow], "asyncio.Future[None] | Done"]]


class GroupCommit:
    def __init__(self, db: Database, outbox: Outbox, linger: float = 0.0, depth: int = 2) -> None:
        self.db = db
        self.outbox = outbox
        self.linger = linger
        self._pending: Batch = []
        self._wake = asyncio.Event()
        self._running = False
        self._slots = asyncio.Semaphore(depth)
        self._writer = SqliteWriter.for_database(db, outbox)
        self._relay: OutboxRelay | None = None
        self._marks: list[str] = []  # event ids acknowledged by the stream, to mark published

    def attach(self, relay: OutboxRelay) -> bool:
        """Hand each committed batch straight to ``relay`` instead of waking its polling
        round (SQLite writer only; returns whether it was attached). The relay reports the
        acknowledged events back through :meth:`mark`; they are marked published in the
        next batch's transaction."""
        if self._writer is None:
            return False
        self._relay = relay
        return True

    def mark(self, event_ids: list[str]) -> None:
        self._marks.extend(event_ids)
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._running

    async def add(self, events: list[EventBase]) -> None:
        """Return once ``events`` are committed to the outbox."""
        rows = [OutboxRow.of(e) for e in events]
        if not self._running:  # no background loop (tools, tests): commit right here
            async with self.db.transaction() as session:
                await self._insert(session, rows)
            return
        await self.submit(rows)

    def submit(self, rows: list[OutboxRow]) -> asyncio.Future[None]:
        """A future done once ``rows`` are committed (needs the running background loop)."""
        if not self._running:
            raise RuntimeError("the audit group commit is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._wake.set()
        return future

    def submit_then(self, rows: list[OutboxRow], done: Done) -> None:
        """Call ``done`` once ``rows`` are committed (or could not be), right from the
        commit: no future, no callback round through the event loop, for a caller that
        answers many requests per batch (:mod:`identity.wire`)."""
        if not self._running:
            raise RuntimeError("the audit group commit is not running")
        self._pending.append((rows, done))
        self._wake.set()

    async def run(self) -> None:
        self._running = True
        commits: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._wake.wait()
                await asyncio.sleep(self.linger)
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
            for _, waiter in self._pending:
                _notify(waiter, RuntimeError("identity is shutting down"))
            if self._writer is not None:
                await self._writer.close()

    async def _commit(self, batch: Batch, marks: list[str]) -> None:
        rows = batched([row for rows, _ in batch for row in rows])
        relay = self._relay
        try:
            if self._writer is not None:
                await self._writer.write(rows, marks)
                if relay is None:
                    self.db.committed()
            else:
                async with self.db.transaction() as session:
                    await self._insert(session, rows)
        except Exception as exc:
            log.exception("audit group commit failed")
            for _, waiter in batch:
                _notify(waiter, exc)
            return
        finally:
            self._slots.release()
            if relay is not None and marks:
                relay.released(marks)  # marked, or failed: the polling round sends them again
        for _, waiter in batch:
            _notify(waiter, None)
        if relay is not None and rows:
            relay.send_now(rows, self.mark)

    async def _insert(self, session: AsyncSession, rows: list[OutboxRow]) -> None:
        """The rows ``Outbox.add`` writes, for many events in one executemany."""
        if not rows:
            return
        now = datetime.now(UTC)
        values = [
            {"event_id": r.event_id, "subject": r.subject, "payload": r.payload, "created_at": now}
            for r in rows
        ]
        await session.execute(insert(self.outbox.table), values)


def _notify(waiter: asyncio.Future[None] | Done, failure: BaseException | None) -> None:
    """Tell a waiting caller how its commit went (see :meth:`GroupCommit.submit_then`)."""
    if isinstance(waiter, asyncio.Future):
        _settle(waiter, failure)
        return
    try:
        waiter(failure)
    except Exception:  # one caller's failure must not keep the batch's others waiting
        log.exception("audit group commit: a caller failed on hearing of its commit")


class SqliteWriter:
    """Outbox rows into a SQLite file from one thread with one connection of its own."""

    COLUMNS = ("event_id", "subject", "payload", "created_at")

    def __init__(self, path: str, sql: str, stamp: Any, table: str = "mesh_outbox") -> None:
        self.path = path
        self.sql = sql
        self.mark_sql = (
            f"UPDATE {table} SET published_at = ? "  # noqa: S608 (our table name, no input)
            "WHERE published_at IS NULL AND event_id IN (%s)"
        )
        self.stamp = stamp  # the engine's own DateTime bind processor: identical rows
        self._jobs: queue.SimpleQueue[_Job | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # started by the first write
        self._conn: sqlite3.Connection | None = None  # the thread's
        self._inline: sqlite3.Connection | None = None  # the event loop's
        self._inline_commits = 0
        self.handed_over = 0  # batches the loop found the lock taken for (for tests, metrics)

    @classmethod
    def for_database(cls, db: Database, outbox: Outbox) -> SqliteWriter | None:
        """A writer for ``db`` when it is a SQLite file; None otherwise (or in memory)."""
        url = db.engine.url
        path = url.database or ""
        if url.get_backend_name() != "sqlite" or path in ("", ":memory:") or url.query:
            return None
        dialect = db.engine.dialect
        table = outbox.table
        sql = str(insert(table).compile(dialect=dialect, column_keys=list(cls.COLUMNS)))
        stamp = table.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        return cls(path, sql, stamp, table.name)

    async def write(self, rows: list[OutboxRow], marks: list[str] | None = None) -> None:
        """Insert ``rows`` and mark the events ``marks`` published, in one transaction:
        on the event loop when the write lock is free, else on the writer thread.

        The thread is fed through a ``SimpleQueue`` and answers with one
        ``call_soon_threadsafe``: a fraction of what ``run_in_executor`` costs the event
        loop per batch (executor lock, work item, chained concurrent future)."""
        now = datetime.now(UTC)
        stamp = self.stamp(now) if self.stamp else now
        values = [(*row, stamp) for row in rows]
        if self._write_inline(values, marks or [], stamp):
            return
        self.handed_over += 1
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._start()
        self._jobs.put(_Job(values, marks or [], stamp, loop, done))
        await done

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="identity-audit", daemon=True)
            self._thread.start()

    def _write_inline(self, rows: list[tuple[Any, ...]], marks: list[str], stamp: Any) -> bool:
        """The batch written on the loop; False (nothing done) when the lock is taken."""
        if self._inline is None:
            self._inline = self._connect(wait=False)
        conn = self._inline
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return False
            raise
        try:
            _apply(conn, self.sql, self.mark_sql, rows, marks, stamp)
        except BaseException:
            self._inline = None
            _abandon(conn)
            raise
        self._inline_commits += 1
        if self._inline_commits % CHECKPOINT_EVERY == 0:
            self._start()
            self._jobs.put(CHECKPOINT)
        return True

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job == CHECKPOINT:
                self._checkpoint()
                continue
            assert isinstance(job, _Job)
            try:
                self._write(job.values, job.marks, job.stamp)
            except BaseException as exc:  # handed to the waiting caller
                job.loop.call_soon_threadsafe(_settle, job.done, exc)
            else:
                job.loop.call_soon_threadsafe(_settle, job.done, None)
        self._close()

    def _checkpoint(self) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect(wait=True)
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            log.warning(
                "audit writer: WAL checkpoint failed; the next one catches up", exc_info=True
            )

    def _connect(self, wait: bool) -> sqlite3.Connection:
        """A connection with the engine's pragmas; the loop's (``wait=False``) never waits
        for a lock and never checkpoints."""
        conn = sqlite3.connect(self.path, timeout=30 if wait else 0, isolation_level=None)
        pragmas = ["journal_mode=WAL", "synchronous=NORMAL"]
        pragmas += ["busy_timeout=30000"] if wait else ["busy_timeout=0", "wal_autocheckpoint=0"]
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        return conn

    def _write(self, rows: list[tuple[Any, ...]], marks: list[str], stamp: Any) -> None:
        if self._conn is None:
            self._conn = self._connect(wait=True)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            _apply(conn, self.sql, self.mark_sql, rows, marks, stamp)
        except BaseException:
            self._conn = None  # the next batch takes a fresh connection
            _abandon(conn)
            raise

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        """Let the thread finish what it was given, close the connections and stop."""
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            await asyncio.to_thread(thread.join)


CHECKPOINT = "checkpoint"  # a job for the writer thread


def _apply(
    conn: sqlite3.Connection,
    sql: str,
    mark_sql: str,
    rows: list[tuple[Any, ...]],
    marks: list[str],
    stamp: Any,
) -> None:
    """The batch's statements and ``COMMIT``, in the transaction begun on ``conn``."""
    if rows:
        conn.executemany(sql, rows)
    for start in range(0, len(marks), MARKS_PER_STATEMENT):
        chunk = marks[start : start + MARKS_PER_STATEMENT]
        conn.execute(mark_sql % ",".join("?" * len(chunk)), [stamp, *chunk])
    conn.execute("COMMIT")


def _abandon(conn: sqlite3.Connection) -> None:
    """Roll back what failed and close the connection (a fresh one takes over)."""
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass
    finally:
        conn.close()


class _Job(NamedTuple):
    values: list[tuple[Any, ...]]
    marks: list[str]
    stamp: Any
    loop: asyncio.AbstractEventLoop
    done: asyncio.Future[None]


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():
        return  # its caller was cancelled meanwhile
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)
