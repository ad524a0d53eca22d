"""Start-up that waits instead of crashing: NATS and the database, retried with backoff.

A process started before its dependencies (a new cluster, a database still starting)
keeps trying, logging each failure, and reports not ready meanwhile.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client

from mesh.backoff import Backoff, retry
from mesh.db import Database
from mesh.nats import BusAuth, connect


async def database_answers(db: Database, timeout: float = 2.0) -> bool:
    """The database answers a ping within ``timeout`` (an unreachable server may hang)."""
    try:
        return await asyncio.wait_for(db.ping(), timeout)
    except TimeoutError:
        return False


async def wait_for_database(db: Database, name: str) -> None:
    """Return once ``db`` answers; until then retry with backoff (it may start later)."""

    async def ping() -> None:
        if not await database_answers(db, 10.0):
            raise ConnectionError(f"database of {name} does not answer")

    await retry(f"{name}: connecting to its database", ping, Backoff(0.5, 10.0))


async def connect_nats(url: str, name: str, auth: BusAuth | None = None) -> Client:
    """:func:`mesh.nats.connect`, retried with backoff until a server answers (nats-py
    gives up at once when none does at the first connect)."""
    return await retry(
        f"{name}: connecting to NATS at {url}",
        lambda: connect(url, name, auth),
        Backoff(0.5, 10.0),
    )
