"""The lean path's audit writer: batches of outbox rows into a SQLite file, with the
event loop never waiting for the database, and their hand-over to the relay.

Identity group-commits the ``token.issued`` events of stateless grants through the kit's
:class:`mesh.groupcommit.GroupCommit` (each token is answered once its event is committed;
durability is stated there: on a SQLite file a commit survives a crash of the process,
not a power loss). With the lean path on and a SQLite file, the batches go through
:class:`SqliteWriter` instead of a SQLAlchemy session: one ``BEGIN IMMEDIATE``, one
``executemany``, ``COMMIT`` on a connection of its own (the same file and pragmas as the
engine's: WAL, ``synchronous=NORMAL``), a fifth of what a session transaction costs
through aiosqlite.

The batch is written right on the event loop when the write lock is free at once: a WAL
commit with ``synchronous=NORMAL`` writes the log without fsync, about 10 µs a row, which
costs the loop less than handing the batch to a thread and back. The loop never waits for
the lock: when another connection holds it, the batch goes to the writer thread, which
waits with the engine's busy timeout. Checkpoints, the part that fsyncs, never run on the
loop: its connection has automatic checkpoints off and the thread checkpoints
(``RESTART``, so that the WAL starts over instead of growing) every ``CHECKPOINT_EVERY``
commits made on the loop.

:class:`HandOverRelay` publishes the rows of each committed batch straight away instead of
reading them back in a polling round; the acknowledged events are marked published in
the next batch's transaction (:meth:`GroupCommit.mark_published`), and the polling round
still sends whatever was not acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import insert

from identity.store.relay import LingeringRelay
from mesh import metrics
from mesh.db import Database
from mesh.groupcommit import GroupCommit
from mesh.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 256  # loop commits between two checkpoints by the writer thread
BUSY_TIMEOUT_MS = 30000  # the writer thread's wait for the lock, as the engine's
RESTART_WAIT_MS = 100  # a checkpoint's wait for writers and readers before it gives up
MARKS_PER_STATEMENT = 500  # bound parameters per UPDATE (SQLite allows 32766)


class HandOverRelay(LingeringRelay):
    """A relay that also publishes what ``group`` has just committed, without reading it
    back; the polling round leaves those rows alone until they are marked published."""

    def __init__(self, *args: Any, group: GroupCommit, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group
        self._inflight: set[str] = set()  # handed over, not yet marked published
        self._sending: set[asyncio.Task[None]] = set()
        self._queued: list[OutboxRow] = []  # committed while the previous send was out
        self._stopped = False
        group.on_commit = self.send_now

    @property
    def in_flight(self) -> int:
        """Events handed over and not yet marked published."""
        return len(self._inflight)

    def unclaimed(self, rows: Sequence[Any]) -> Sequence[Any]:
        if not self._inflight:
            return rows
        return [r for r in rows if r.event_id not in self._inflight]

    async def run(self) -> None:
        self._stopped = False
        try:
            await super().run()
        finally:
            self._stopped = True
            self._queued = []  # unsent and unacknowledged rows stay for the next start
            for task in list(self._sending):
                task.cancel()
            if self._sending:
                await asyncio.gather(*self._sending, return_exceptions=True)

    def send_now(self, rows: list[OutboxRow]) -> None:
        """Publish rows just committed (the group commit's after-commit hook).

        One send at a time: the rows of commits made while a send waits for its acks go
        out together in the next one (one flush, one wait for their acks), so a busy
        provider wakes the NATS server once per send rather than once per commit."""
        if self._stopped:
            return  # stopping: the rows stay unpublished in the table for the next start
        self._inflight.update(r.event_id for r in rows)
        self._queued.extend(rows)
        if self._sending:
            return  # the running sender takes them next
        task = asyncio.create_task(self._send_queued())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_queued(self) -> None:
        while self._queued:
            rows, self._queued = self._queued, []
            await self._send(rows)

    async def _send(self, rows: list[OutboxRow]) -> None:
        acked: list[str] = []
        try:
            acked = await self.publish(
                [(r.event_id, r.event_id, r.subject, r.payload) for r in rows]
            )
        except Exception:
            log.warning(
                "audit relay: publishing %d committed rows failed", len(rows), exc_info=True
            )
        if len(acked) < len(rows):
            done = set(acked)
            self._release([r.event_id for r in rows if r.event_id not in done])
            self.db.committed()  # wakes the polling round, which sends them again
        if not acked:
            return
        metrics.events_published.labels(self.service).inc(len(acked))
        marked = self.group.mark_published(acked)
        if marked is None:
            self._release(acked)
        else:
            marked.add_done_callback(lambda f: self._marked(f, acked))

    def _marked(self, future: asyncio.Future[None], event_ids: list[str]) -> None:
        """Marked published (or not: the polling round then sends them again)."""
        if not future.cancelled():
            future.exception()  # retrieved: a failed mark is the polling round's to repair
        self._release(event_ids)

    def _release(self, event_ids: Sequence[str]) -> None:
        self._inflight.difference_update(event_ids)


# Event-loop turns a lean audit batch waits for more tokens before it is taken. Under
# load the requests of one turn reach the group commit over the next few: waiting two
# turns (a few microseconds, no timer) makes batches about a fifth bigger, so fewer
# commits and relay rounds per token.
SETTLE_TURNS = 2


def lean_writer(db: Database, outbox: Outbox) -> SqliteWriter | None:
    """The lean audit writer for ``db`` when it is a SQLite file; None otherwise."""
    return SqliteWriter.for_database(db, outbox)


def lean_group(db: Database, outbox: Outbox) -> GroupCommit:
    """The group commit of the lean path's audit events: its own writer on a SQLite file,
    batches that settle for :data:`SETTLE_TURNS` turns of the loop."""
    return GroupCommit(db, outbox, lean_writer(db, outbox), settle=SETTLE_TURNS)


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
        """Copy the WAL into the database and have the next commit start it over.

        A ``PASSIVE`` checkpoint alongside the loop's commits never catches up with them,
        so the WAL would grow for as long as tokens are issued (about 2 kB a token: 118 MB
        after 60,000 tokens) and every page lookup would search a longer WAL index. ``RESTART``
        holds new writers back while it runs (the loop's batches meanwhile come to this
        thread, queued behind it) and then lets the next commit write the WAL from its
        start. It waits at most ``RESTART_WAIT_MS`` for readers; a busy one leaves the
        checkpoint to the next turn."""
        try:
            if self._conn is None:
                self._conn = self._connect(wait=True)
            conn = self._conn
            conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except sqlite3.Error:
            log.warning(
                "audit writer: WAL checkpoint failed; the next one catches up", exc_info=True
            )

    def _connect(self, wait: bool) -> sqlite3.Connection:
        """A connection with the engine's pragmas; the loop's (``wait=False``) never waits
        for a lock and never checkpoints."""
        conn = sqlite3.connect(self.path, timeout=30 if wait else 0, isolation_level=None)
        pragmas = ["journal_mode=WAL", "synchronous=NORMAL"]
        pragmas += (
            [f"busy_timeout={BUSY_TIMEOUT_MS}"]
            if wait
            else ["busy_timeout=0", "wal_autocheckpoint=0"]
        )
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
