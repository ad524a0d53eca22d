"""Fixtures of the fault drills: a production-like topology per test, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.load import Drill
from tests.support.topology import Topology, TopologyConfig


@pytest.fixture(scope="module", autouse=True)
def fresh_event_stream() -> None:
    """Nothing to purge: every drill has a NATS cluster of its own (replaces the
    suite-wide fixture, which would start a server the drills never use)."""


@pytest.fixture
def pg_admin(postgres_admin_url: str | None) -> str:
    """The PostgreSQL the drills create their databases in; skips without one."""
    if not postgres_admin_url:
        pytest.skip(
            "the fault drills run on PostgreSQL: set PARTNERMESH_TEST_POSTGRES_URL "
            "(CI does), e.g. postgresql://postgres@127.0.0.1:5432/test"
        )
    return postgres_admin_url


@pytest.fixture
async def topology(tmp_path: Path, pg_admin: str) -> AsyncIterator[Topology]:
    """A 3-node NATS cluster, a database per process behind a proxy the test controls,
    and two replicas of identity, the gateway and every service; stopped afterwards."""
    topo = Topology(tmp_path / "mesh", pg_admin, TopologyConfig())
    try:
        await topo.start()
        yield topo
    finally:
        await topo.stop()


@pytest.fixture
async def drill(topology: Topology) -> AsyncIterator[Drill]:
    """Signed-in people, one forum thread per writer, and the load (not yet started)."""
    d = Drill(topology)
    await d.prepare()
    try:
        yield d
    finally:
        await d.stop()
        await d.client.aclose()
