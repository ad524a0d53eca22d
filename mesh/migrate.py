"""Schema migrations (Alembic), one history per process that owns a database.

A process declares its history beside its tables, in its ``models.py``::

    history = History("profile", metadata, Path(__file__).with_name("migrations"),
                      outbox=True, inbox=True)

The revisions live in that ``migrations/`` folder; the environment (``env.py``) and the
template new revisions start from are shared, in ``mesh/migrations/``. Everything is
configured here, programmatically: no ``alembic.ini``.

:func:`upgrade` applies the pending revisions under a lock, so replicas starting together
never race: a PostgreSQL advisory lock (one key per history) held by the transaction that
applies them, or SQLite's write lock (``BEGIN IMMEDIATE``). Both DDL and the version row
are in that one transaction, so a failed upgrade leaves the database as it was.

A database made by ``create_all`` before there were migrations (its tables present, no
``alembic_version``) is adopted: stamped at the baseline revision (at the head when it
matches the models exactly), data kept, then upgraded like any other.

:func:`prepare` is what a process runs before it serves: apply pending revisions when its
settings allow (development, tests), else wait, not ready, until the ``migrate`` step has
brought the database to this code's head.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import json
import logging
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, MetaData, event, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from mesh.consumer import inbox_table
from mesh.db import Database
from mesh.outbox import outbox_table

log = logging.getLogger(__name__)

ENVIRONMENT = Path(__file__).with_name("migrations")  # env.py + script.py.mako, shared
VERSION_TABLE = "alembic_version"


@dataclass(eq=False)
class History:
    """The migration history of one process's database.

    ``directory`` holds the revisions. ``outbox``/``inbox`` add the kit's tables to
    ``metadata`` (they are part of the schema). ``unmanaged`` names objects that revisions
    create but the metadata cannot describe (an FTS5 virtual table and its shadow tables,
    an expression index): comparing the models with a database skips them.
    """

    name: str
    metadata: MetaData
    directory: Path
    outbox: bool = False
    inbox: bool = False
    unmanaged: tuple[str, ...] = ()
    lock_key: int = field(init=False)
    _script: Any = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if self.outbox:
            outbox_table(self.metadata)
        if self.inbox:
            inbox_table(self.metadata)
        digest = hashlib.blake2b(f"partnermesh.migrate.{self.name}".encode(), digest_size=8)
        self.lock_key = int.from_bytes(digest.digest(), "big", signed=True)
        if self.metadata.info.setdefault("history", self) is not self:
            raise ValueError(
                f"this metadata already has a history: {self.metadata.info['history']}"
            )

    def include_name(self, name: str | None, type_: str, _parents: Any) -> bool:
        """Autogenerate's filter: the version table and unmanaged objects are not models."""
        if name is None:
            return True
        if name == VERSION_TABLE:
            return False
        return not any(name == u or name.startswith(f"{u}_") for u in self.unmanaged)

    def config(self, connection: Connection | None = None) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(ENVIRONMENT))
        cfg.set_main_option("version_locations", str(self.directory))
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
        if importlib.util.find_spec("ruff") is not None:  # new revisions come formatted
            cfg.set_section_option("post_write_hooks", "hooks", "ruff")
            cfg.set_section_option("post_write_hooks", "ruff.type", "module")
            cfg.set_section_option("post_write_hooks", "ruff.module", "ruff")
            cfg.set_section_option(
                "post_write_hooks", "ruff.options", "format REVISION_SCRIPT_FILENAME"
            )
        cfg.attributes["history"] = self
        cfg.attributes["connection"] = connection
        return cfg

    def script(self, fresh: bool = False) -> Any:
        """The revisions (read once: they do not change while a process runs)."""
        from alembic.script import ScriptDirectory

        if fresh or self._script is None:
            self._script = ScriptDirectory.from_config(self.config())
        return self._script


def history_of(metadata: MetaData) -> History:
    try:
        history: History = metadata.info["history"]
    except KeyError:
        raise RuntimeError(
            "this metadata has no migration history; declare one in the process's models.py "
            "(mesh.migrate.History)"
        ) from None
    return history


# -- state -------------------------------------------------------------------------------


class State(StrEnum):
    CURRENT = "current"  # at this code's head
    BEHIND = "behind"  # revisions of this code are pending (an empty database too)
    AHEAD = "ahead"  # at a revision this code does not know: a newer release migrated it
    UNVERSIONED = "unversioned"  # tables made by create_all, no version table: adopt


@dataclass(frozen=True)
class Status:
    process: str
    state: State
    current: tuple[str, ...]
    head: tuple[str, ...]
    adopted: bool = False
    applied: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "state": self.state.value,
            "current": list(self.current),
            "head": list(self.head),
            "adopted": self.adopted,
            "applied": list(self.applied),
        }


def _status(conn: Connection, history: History) -> Status:
    from alembic.runtime.migration import MigrationContext

    script = history.script()
    head = tuple(sorted(script.get_heads()))
    tables = set(inspect(conn).get_table_names())
    if VERSION_TABLE not in tables and tables & set(history.metadata.tables):
        return Status(history.name, State.UNVERSIONED, (), head)
    current = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    if current == head:
        state = State.CURRENT
    elif all(_known(script, rev) for rev in current):
        state = State.BEHIND
    else:
        state = State.AHEAD
    return Status(history.name, state, current, head)


def _known(script: Any, revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


# -- engines and the lock ---------------------------------------------------------------


def _engine(url: str, write: bool = True) -> AsyncEngine:
    """A one-connection engine for migrating (``write``) or looking: on SQLite the
    driver's own transaction handling is switched off so that a migration's transaction
    is one ``BEGIN IMMEDIATE`` (the write lock, taken at once, covering DDL too); foreign
    keys stay off, as batch table rebuilds need. See :func:`_wal` for the journal mode."""
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return create_async_engine(url, poolclass=NullPool)
    engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": 600})
    if not write:
        return engine

    @event.listens_for(engine.sync_engine, "connect")
    def _autocommit_driver(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


async def _wal(conn: AsyncConnection, timeout: float = 600.0) -> None:
    """Put a SQLite file in WAL mode (every process's engine asks for it) before migrating.

    Switching a new file's journal mode needs it unlocked and, unlike a write, does not
    wait for a lock: done here, retrying, it never fails a process that starts while
    another holds the write lock; once in WAL mode, asking again changes nothing.
    """
    if conn.dialect.name != "sqlite":
        return
    raw: Any = (await conn.get_raw_connection()).driver_connection  # aiosqlite's
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await (await raw.execute("PRAGMA journal_mode=WAL")).close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


@contextmanager
def _locked(conn: Connection, history: History) -> Iterator[None]:
    """One transaction holding the history's migration lock until it commits."""
    with conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": history.lock_key})
        yield


def _upgrade(conn: Connection, history: History, target: str) -> Status:
    from alembic import command

    with _locked(conn, history):
        before = _status(conn, history)
        cfg = history.config(conn)
        adopted = before.state is State.UNVERSIONED
        if adopted:
            # Made by create_all: of an earlier release (the baseline's schema), or of this
            # code (its models exactly, as test fixtures do).
            at = "heads" if not _compare(conn, history) else history.script().get_base()
            command.stamp(cfg, at)
            log.warning(
                "adopted a database made before migrations: stamped its revision",
                extra={"history": history.name, "revision": at},
            )
            before = _status(conn, history)
        if before.state is State.AHEAD:
            log.warning(
                "database is at a revision this code does not know (a newer release); "
                "left as it is",
                extra={"history": history.name, "revision": ",".join(before.current)},
            )
            return before
        command.upgrade(cfg, target)
        after = _status(conn, history)
    applied = _applied(history, before.current, after.current)
    return Status(history.name, after.state, after.current, after.head, adopted, applied)


def _applied(history: History, before: tuple[str, ...], after: tuple[str, ...]) -> tuple[str, ...]:
    """The revisions between ``before`` (excluded) and ``after``, oldest first."""
    if before == after or not after:
        return ()
    script = history.script()
    upper = [r.revision for r in script.iterate_revisions(after, "base")]
    lower = {r.revision for r in script.iterate_revisions(before, "base")} if before else set()
    return tuple(reversed([r for r in upper if r not in lower]))


async def upgrade(url: str, history: History, target: str = "head") -> Status:
    """Apply the pending revisions (up to ``target``) under the lock; adopt an unversioned
    database first. Returns the state afterwards, with what was applied."""
    engine = _engine(url)
    try:
        async with engine.connect() as conn:
            await _wal(conn)
            status: Status = await conn.run_sync(_upgrade, history, target)
    finally:
        await engine.dispose()
    if status.applied or status.adopted:
        log.info("migrated", extra={"migration": status.as_dict()})
    return status


async def status(url: str, history: History) -> Status:
    engine = _engine(url, write=False)
    try:
        async with engine.connect() as conn:
            result: Status = await conn.run_sync(_status, history)
            return result
    finally:
        await engine.dispose()


# -- a process's start ------------------------------------------------------------------


class SchemaBehind(RuntimeError):
    pass


async def prepare(db: Database, apply: bool, wait: bool = True, retry_s: float = 2.0) -> Status:
    """Make sure ``db`` has this code's schema before the process serves.

    ``apply``: run :func:`upgrade` (under the lock). Else check: current, or ahead (a newer
    release migrated it, expand/contract keeps this code working) go on; behind or
    unversioned waits, retrying every ``retry_s`` (the process is not ready meanwhile)
    when ``wait``, else raises :class:`SchemaBehind`.
    """
    history = history_of(db.metadata)
    if apply:
        return await upgrade(db.url, history)
    while True:
        st = await status(db.url, history)
        if st.state in (State.CURRENT, State.AHEAD):
            return st
        message = (
            f"the {history.name} database is {st.state.value} (at {list(st.current)}, "
            f"this code needs {list(st.head)}): run `partnermesh migrate {history.name}`"
        )
        if not wait:
            raise SchemaBehind(message)
        log.warning(message + "; waiting", extra={"migration": st.as_dict()})
        await asyncio.sleep(retry_s)


# -- the models and the migrations agree -------------------------------------------------


def _compare(conn: Connection, history: History) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(
        conn,
        opts={
            "include_name": history.include_name,
            "compare_type": True,
            "target_metadata": history.metadata,
        },
    )
    return list(compare_metadata(context, history.metadata))


async def differences(url: str, history: History) -> list[Any]:
    """What autogenerate would change to make the database match the models ([] = agree)."""
    engine = _engine(url, write=False)
    try:
        async with engine.connect() as conn:
            result: list[Any] = await conn.run_sync(_compare, history)
            return result
    finally:
        await engine.dispose()


# -- writing a revision ------------------------------------------------------------------


def _revise(conn: Connection, history: History, message: str, autogenerate: bool) -> Any:
    from alembic import command

    cfg = history.config(conn)
    with _locked(conn, history):
        command.upgrade(cfg, "head")
    number = len(list(history.script(fresh=True).walk_revisions())) + 1
    with conn.begin():
        script = command.revision(cfg, message, autogenerate=autogenerate, rev_id=f"{number:04d}")
    history.script(fresh=True)  # the new revision is part of the history from now on
    return script


async def revision(history: History, message: str, autogenerate: bool = True) -> Path:
    """Write the next revision of ``history``: autogenerated against a scratch SQLite
    database at the current head (review it: autogenerate misses renames, data moves and
    objects outside the metadata). Returns its path."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        engine = _engine(f"sqlite+aiosqlite:///{scratch}/head.db")
        try:
            async with engine.connect() as conn:
                script = await conn.run_sync(_revise, history, message, autogenerate)
        finally:
            await engine.dispose()
    return Path(script.path)


# -- the ``migrate`` command of a process -------------------------------------------------


def main(history: History, url: str, argv: list[str]) -> int:
    """``python -m <process> migrate [--status] [--to REV]``: apply pending revisions."""
    parser = argparse.ArgumentParser(prog=f"{history.name} migrate")
    parser.add_argument("--status", action="store_true", help="show the state, change nothing")
    parser.add_argument("--to", default="head", help="target revision (default head)")
    args = parser.parse_args(argv)
    if args.status:
        st = asyncio.run(status(url, history))
    else:
        st = asyncio.run(upgrade(url, history, args.to))
    print(json.dumps(st.as_dict()))
    return 0 if st.state in (State.CURRENT, State.AHEAD) or args.to != "head" else 1


def run_environment(context: Any) -> None:
    """The body of the shared ``env.py``: migrate the connection handed in by
    :class:`History.config`, inside the caller's transaction."""
    history: History = context.config.attributes["history"]
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        sys.exit("partnermesh migrations run through mesh.migrate, not the alembic command")
    context.configure(
        connection=connection,
        target_metadata=history.metadata,
        include_name=history.include_name,
        compare_type=True,
        render_as_batch=True,  # SQLite alters tables by rebuilding them
        user_module_prefix="sa.",
    )
    with context.begin_transaction():
        context.run_migrations()
