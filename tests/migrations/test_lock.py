"""Replicas migrating one database at once: the lock serialises them, all succeed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from deploy.migrations import history
from mesh.db import make_engine
from mesh.migrate import History, State, differences, upgrade
from tests.migrations.conftest import PROFILE_REVISIONS


async def wait_for(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        assert time.monotonic() < deadline, f"never saw {what}"
        await asyncio.sleep(0.02)


class TestConcurrentUpgrades:
    async def test_replicas_starting_together_on_a_fresh_database(self, database_url: str) -> None:
        profile = history("profile")
        results = await asyncio.gather(*(upgrade(database_url, profile) for _ in range(4)))
        revisions = PROFILE_REVISIONS
        assert [r.state for r in results] == [State.CURRENT] * 4
        assert sorted(r.applied for r in results) == [(), (), (), revisions]
        assert await differences(database_url, profile) == []

    async def test_every_process_at_once_twice_over(
        self, database_url: str, process_history: History
    ) -> None:
        results = await asyncio.gather(*(upgrade(database_url, process_history) for _ in range(3)))
        assert [r.state for r in results] == [State.CURRENT] * 3
        assert sum(1 for r in results if r.applied) == 1
        assert await differences(database_url, process_history) == []


class TestTheLock:
    async def test_postgres_upgrade_waits_for_the_advisory_lock(self, database_url: str) -> None:
        if not database_url.startswith("postgresql"):
            return  # SQLite: see the write-lock test below
        profile = history("profile")
        holder = make_engine(database_url)
        try:
            async with holder.connect() as conn:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": profile.lock_key}
                )
                migrating = asyncio.create_task(upgrade(database_url, profile))

                async def waiting() -> bool:
                    found = await conn.execute(
                        text(
                            "SELECT count(*) FROM pg_locks "
                            "WHERE locktype = 'advisory' AND NOT granted"
                        )
                    )
                    count: int = found.scalar_one()
                    return count == 1

                await wait_for(waiting, "the upgrade waiting for the lock")
                untouched = await conn.execute(text("SELECT to_regclass('alembic_version')"))
                assert untouched.scalar_one() is None and not migrating.done()
                await conn.commit()  # releases the transaction's advisory lock
            status = await migrating
        finally:
            await holder.dispose()
        assert status.state is State.CURRENT and status.applied == PROFILE_REVISIONS

    async def test_another_process_history_does_not_wait(self, database_url: str) -> None:
        if not database_url.startswith("postgresql"):
            return
        holder = make_engine(database_url)
        try:
            async with holder.connect() as conn:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": history("profile").lock_key}
                )
                status = await upgrade(database_url, history("portal"))
                await conn.rollback()
        finally:
            await holder.dispose()
        assert status.state is State.CURRENT

    async def test_sqlite_upgrade_waits_for_the_write_lock(self, database_url: str) -> None:
        if not database_url.startswith("sqlite"):
            return
        path = database_url.split(":///", 1)[1]
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # what a writer in another process holds
            migrating = asyncio.create_task(upgrade(database_url, history("profile")))
            await asyncio.sleep(0.5)  # time for it to try; it cannot get past the lock
            tables = {r[0] for r in holder.execute("SELECT name FROM sqlite_master")}
            assert "alembic_version" not in tables and not migrating.done()
            holder.execute("COMMIT")
            status = await migrating
        finally:
            holder.close()
        assert status.state is State.CURRENT and status.applied == PROFILE_REVISIONS
