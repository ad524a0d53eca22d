"""SQLAlchemy async engine and transactional sessions: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState

CONNECT_TIMEOUT_S = 5.0
# PostgreSQL connections each process keeps open (PM_DB_POOL_SIZE) and may open beyond them
# under load, closed again once returned (PM_DB_MAX_OVERFLOW). Every replica of every
# process holds its pool: size them so that all replicas together stay under the server's
# max_connections (100 by default).
POOL_SIZE_ENV, MAX_OVERFLOW_ENV = "PM_DB_POOL_SIZE", "PM_DB_MAX_OVERFLOW"


def pool_setting(name: str, default: int, least: int) -> int:
    """A whole-number pool setting from the environment, refused clearly when malformed."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value < least:
        raise ValueError(f"{name} must be at least {least}, not {value}")
    return value


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        # The pool's rollback of every returned connection is a round trip to the
        # driver's thread even after a commit; :func:`_end_open_transaction` rolls back
        # only a connection still in a transaction.
        kwargs.setdefault("pool_reset_on_return", None)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine.pool, "reset", _end_open_transaction)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    # A server that does not answer fails a connect in seconds (asyncpg waits 60 s by
    # default), so callers get a quick 503 and consumers retry, instead of hanging.
    kwargs.setdefault("connect_args", {"timeout": CONNECT_TIMEOUT_S})
    return create_async_engine(
        url,
        pool_size=pool_setting(POOL_SIZE_ENV, 10, least=1),
        max_overflow=pool_setting(MAX_OVERFLOW_ENV, 10, least=0),
        pool_pre_ping=True,
        pool_timeout=CONNECT_TIMEOUT_S,
        **kwargs,
    )


def _end_open_transaction(
    dbapi_conn: Any, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """A SQLite connection back in the pool with its transaction still open (a caller
    that neither committed nor rolled back) is rolled back; one that ended its
    transaction costs nothing more."""
    driver = record.driver_connection
    if state.asyncio_safe and driver is not None and driver.in_transaction:
        dbapi_conn.rollback()


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached right now (down, restarting,
    cut off, locked for too long, its pool exhausted), not that the request was wrong: a
    caller gets 503 and may retry, a consumer retries later."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, ConnectionError | TimeoutError | OSError):
        return True
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError)


class Database:
    """A service's own database: an engine, a session factory and after-commit hooks."""

    def __init__(self, url: str, metadata: MetaData) -> None:
        self.url = url
        self.metadata = metadata
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._after_commit: list[Callable[[], None]] = []
        # SQLite has one writer: the process's writers wait here in turn (see writing()).
        self._write_turn = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def on_commit(self, hook: Callable[[], None]) -> None:
        self._after_commit.append(hook)

    async def create_all(self) -> None:
        """Create the tables straight from the models: for tests whose subject is not the
        schema. Processes migrate instead (:mod:`mesh.migrate`)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self.metadata.create_all)

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """The process's turn to write, for a block that writes and commits. On SQLite,
        one block at a time per process: SQLite has a single writer anyway, and waiting
        in line here is fair and prompt, where SQLite's busy handler polls with growing
        sleeps (up to 100 ms) and lets a busy writer starve another (the outbox relay's
        marks behind the requests' commits). Elsewhere no wait at all."""
        if self._write_turn is None:
            yield
            return
        async with self._write_turn:
            yield

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session
        self.committed()

    def committed(self) -> None:
        """Run the after-commit hooks (for writers that commit outside :meth:`transaction`)."""
        for hook in self._after_commit:
            hook()

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
