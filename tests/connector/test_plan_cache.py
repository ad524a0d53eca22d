"""What an invocation reuses of the registry still honours every change: at once when the
change is committed through this connector, within ``plan_cache_ttl_s`` when another
replica commits it, and on the very next call with the cache off."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.db import Database
from services.connector import handlers, models
from services.connector import repository as repo
from services.connector.plans import PlanCache, Snapshot
from services.connector.settings import ConnectorSettings
from tests.connector.backends import BackendState, backend_app
from tests.connector.conftest import FAST, Mesh, declare, register
from tests.connector.test_invoke import refused
from tests.support.infra import serve_app
from tests.support.services import run_service

LONG = 300.0  # far longer than any test: only invalidation can make a change apply


@pytest.fixture
async def connector(
    request: pytest.FixtureRequest, nats_url: str, database_url: str, test_keys: Any
) -> AsyncIterator[Any]:
    """A real connector whose plan cache lives ``request.param`` seconds (LONG by default)."""

    def wire(rt: Any) -> None:
        rt.connector = handlers.register(rt)

    async with run_service(
        "connector",
        ConnectorSettings,
        models.metadata,
        wire,
        nats_url=nats_url,
        database_url=database_url,
        verifier=test_keys.verifier(),
        webhook_consumer=f"connector-webhooks-{uuid.uuid4().hex[:8]}",
        plan_cache_ttl_s=getattr(request, "param", LONG),
        **FAST,
    ) as rt:
        yield rt


@pytest.fixture
async def item(
    mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None
) -> c.GrantReply:
    """fabrikam's item operation, granted to contoso; one call has filled the cache."""
    url, _state = backend
    await register(mesh, url)
    await declare(mesh, "item", "/items/{item_id}")
    grant: c.GrantReply = await mesh(
        c.CREATE_GRANT, "fatima", {"operation": "fabrikam.item", "grantee": "contoso"}
    )
    assert (await call_item(mesh)).status == 200
    return grant


async def call_item(mesh: Mesh, who: str = "carlos") -> c.InvokeReply:
    reply: c.InvokeReply = await mesh(
        c.INVOKE, who, {"operation": "fabrikam.item", "input": {"item_id": "a1"}}
    )
    return reply


async def outcomes(mesh: Mesh) -> list[str]:
    audit = await mesh(c.AUDIT, "fatima", {"operation": "fabrikam.item"})
    return [r.outcome for r in audit.items]


@pytest.fixture
async def other_replica(database_url: str) -> AsyncIterator[Database]:
    """Another writer of the same database: what a second connector replica is to this one."""
    db = Database(database_url, models.metadata)
    try:
        yield db
    finally:
        await db.dispose()


async def revoke_elsewhere(db: Database, grant_id: str) -> None:
    async with db.transaction() as s:
        grant = await repo.get_grant(s, "acme", grant_id)
        assert grant is not None
        await repo.revoke_grant(s, grant)


class TestChangesThroughThisConnector:
    async def test_a_revoked_grant_denies_the_next_call(
        self, mesh: Mesh, item: c.GrantReply
    ) -> None:
        await mesh(c.REVOKE_GRANT, "fatima", {"operation": "fabrikam.item", "grant": item.id})
        err = await refused(call_item(mesh))
        assert err.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)
        assert (await outcomes(mesh)).count("ok") == 1  # the call before the revocation

    async def test_a_narrowed_allowlist_refuses_the_next_call(
        self, mesh: Mesh, item: c.GrantReply
    ) -> None:
        await mesh(c.SET_ALLOWLIST, "olivia", {"entries": []})
        err = await refused(call_item(mesh))
        assert err.code is ErrorCode.BAD_GATEWAY and "egress refused" in err.detail
        assert (await outcomes(mesh))[0] == "egress_refused"

    async def test_a_moved_backend_gets_the_next_call(
        self, mesh: Mesh, item: c.GrantReply, backend: tuple[str, BackendState]
    ) -> None:
        _url, first = backend
        second = BackendState()
        async with serve_app(backend_app(second)) as url2:
            ref = {"partner": "fabrikam", "backend": "erp"}
            await mesh(c.UPDATE_BACKEND, "fatima", {**ref, "base_url": url2})
            before = first.hits["/items/a1"]
            assert (await call_item(mesh)).status == 200
        assert second.hits["/items/a1"] == 1 and first.hits["/items/a1"] == before

    async def test_a_new_grant_applies_at_once(self, mesh: Mesh, item: c.GrantReply) -> None:
        err = await refused(call_item(mesh, "nadia"))
        assert err.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)
        await mesh(c.CREATE_GRANT, "fatima", {"operation": "fabrikam.item", "grantee": None})
        assert (await call_item(mesh, "nadia")).status == 200


class TestChangesThroughAnotherReplica:
    @pytest.mark.parametrize("connector", [0.5], indirect=True)
    async def test_a_revocation_applies_within_the_bound(
        self, mesh: Mesh, item: c.GrantReply, other_replica: Database
    ) -> None:
        await revoke_elsewhere(other_replica, item.id)
        revoked = time.monotonic()
        while True:
            try:
                await call_item(mesh)
            except Exception as exc:
                assert getattr(exc, "code", None) in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)
                break
            await asyncio.sleep(0.02)
        # The bound (0.5 s) plus the time of one call on a loaded machine.
        assert time.monotonic() - revoked < 0.5 + 1.0
        for _ in range(5):  # and it stays denied
            err = await refused(call_item(mesh))
            assert err.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)

    @pytest.mark.parametrize("connector", [0.0], indirect=True)
    async def test_with_the_cache_off_a_revocation_applies_to_the_next_call(
        self, mesh: Mesh, item: c.GrantReply, other_replica: Database
    ) -> None:
        await revoke_elsewhere(other_replica, item.id)
        err = await refused(call_item(mesh))
        assert err.code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN)
        assert (await outcomes(mesh)).count("ok") == 1  # the call before the revocation


class TestPlanCache:
    async def test_a_load_overtaken_by_a_change_is_not_kept(self) -> None:
        cache, loads = PlanCache(LONG), 0
        empty = Snapshot(None, (), None, ())

        async def load_during_a_change() -> Snapshot:
            nonlocal loads
            loads += 1
            cache.invalidate()  # a registry commit lands while the snapshot is read
            return empty

        async def load() -> Snapshot:
            nonlocal loads
            loads += 1
            return empty

        assert (await cache.get("acme", "x.op", load_during_a_change)) == (empty, True)
        assert (await cache.get("acme", "x.op", load)) == (empty, True)
        assert (await cache.get("acme", "x.op", load)) == (empty, False)
        assert loads == 2

    async def test_entries_expire_after_their_lifetime(self) -> None:
        cache, loads = PlanCache(0.05), 0

        async def load() -> Snapshot:
            nonlocal loads
            loads += 1
            return Snapshot(None, (), None, ())

        await cache.get("acme", "x.op", load)
        await cache.get("acme", "x.op", load)
        assert loads == 1
        await asyncio.sleep(0.08)
        await cache.get("acme", "x.op", load)
        assert loads == 2

    async def test_off_keeps_nothing(self) -> None:
        cache, loads = PlanCache(0), 0

        async def load() -> Snapshot:
            nonlocal loads
            loads += 1
            return Snapshot(None, (), None, ())

        for _ in range(3):
            assert (await cache.get("acme", "x.op", load))[1] is True
        assert loads == 3


class TestTwoConnectorsInOneProcess:
    async def test_each_cache_hears_only_of_its_own_database(self, tmp_path: Path) -> None:
        """Session events are process-wide: a commit to one connector's registry drops
        that connector's cache, whichever other connectors listen too."""
        dbs = [
            Database(f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}", models.metadata)
            for n in ("a", "b")
        ]
        caches = [PlanCache(LONG), PlanCache(LONG)]
        try:
            for db, cache in zip(dbs, caches, strict=True):
                await db.create_all()
                cache.watch(db.engine.sync_engine)
            for n in (1, 0):  # the other connector's listener runs first, then last
                before = [cache.generation for cache in caches]
                async with dbs[n].transaction() as s:
                    s.add(models.Allowed(eco="acme", entry=f"h{n}.example:443"))
                assert caches[n].generation == before[n] + 1
                assert caches[1 - n].generation == before[1 - n]
        finally:
            for db, cache in zip(dbs, caches, strict=True):
                cache.unwatch()
                await db.dispose()
