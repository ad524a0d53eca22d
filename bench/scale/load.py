"""Load a generated ecosystem into each service's own database, once, and cache it.

Each database gets its schema from the service's own migrations (``mesh.migrate``),
then the rows by bulk Core inserts, then ``ANALYZE``. The cache is keyed by size and
generator version: on SQLite a directory of database files under ``var/scale/``; on
PostgreSQL one database per service named after the key, with a marker table written
last, so an interrupted load is dropped and made again, never half used.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
from sqlalchemy import text

from bench.scale.other_rows import collaboration_batches, connected, matching_batches
from bench.scale.profile_rows import Batch, profile_batches
from bench.scale.shape import Shape
from mesh.db import make_engine
from mesh.migrate import History, upgrade
from services.collaboration import models as collaboration_models
from services.matching import models as matching_models
from services.profile import models as profile_models

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "var" / "scale"
MARKER = "bench_scale_loaded"
SERVICES: dict[str, tuple[History, Callable[[Shape], Iterator[Batch]]]] = {
    "profile": (profile_models.history, lambda s: profile_batches(s, connected(s))),
    "collaboration": (collaboration_models.history, collaboration_batches),
    "matching": (matching_models.history, matching_batches),
}


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def pg_name(shape: Shape, service: str) -> str:
    return f"pm_scale_{shape.key().replace('-', '_')}_{service}"


def pg_url(admin_url: str, name: str) -> str:
    base = _dsn(admin_url).rpartition("/")[0]
    return f"{base}/{name}"


async def _pg_ready(admin_url: str, name: str) -> bool:
    """True when the database exists and its load finished; else it is made empty again."""
    admin = await asyncpg.connect(_dsn(admin_url))
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            conn = await asyncpg.connect(pg_url(admin_url, name))
            try:
                if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MARKER):
                    return True
            finally:
                await conn.close()
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        return False
    finally:
        await admin.close()


async def fill(url: str, service: str, shape: Shape) -> dict[str, float]:
    """Migrate ``url`` to head and insert the ``shape``'s rows of ``service``; seconds taken."""
    history, batches = SERVICES[service]
    started = time.perf_counter()
    await upgrade(url, history)
    migrated = time.perf_counter()
    engine = make_engine(url)
    rows = 0
    try:
        async with engine.begin() as conn:
            dialect = conn.dialect.name
            for stmt, chunk, only in batches(shape):
                if chunk and only in (None, dialect):
                    await conn.execute(stmt, chunk)
                    rows += len(chunk)
        inserted = time.perf_counter()
        async with engine.connect() as conn:
            if dialect == "postgresql":
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("ANALYZE"))
            else:
                await conn.execute(text("ANALYZE"))
                await conn.commit()
            await conn.execute(text(f"CREATE TABLE {MARKER} (rows_loaded INTEGER)"))
            await conn.commit()
    finally:
        await engine.dispose()
    return {
        "rows": rows,
        "migrate_s": round(migrated - started, 2),
        "insert_s": round(inserted - migrated, 2),
        "analyze_s": round(time.perf_counter() - inserted, 2),
    }


async def ensure(shape: Shape, postgres_admin: str | None = None) -> dict[str, object]:
    """The databases of ``shape`` (loading them unless cached): {service: url}, load timings."""
    urls: dict[str, str] = {}
    timings: dict[str, object] = {}
    for service in SERVICES:
        if postgres_admin:
            name = pg_name(shape, service)
            url = pg_url(postgres_admin, name)
            cached = await _pg_ready(postgres_admin, name)
        else:
            folder = CACHE / shape.key()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{service}.db"
            url = f"sqlite+aiosqlite:///{path}"
            done = folder / f"{service}.done"
            cached = done.exists()
            if not cached:
                for leftover in folder.glob(f"{service}.db*"):
                    leftover.unlink()
        if not cached:
            timings[service] = await fill(url, service, shape)
            if not postgres_admin:
                done.write_text(json.dumps(timings[service]))
        else:
            timings[service] = "cached"
        urls[service] = url
    return {"urls": urls, "load": timings}
