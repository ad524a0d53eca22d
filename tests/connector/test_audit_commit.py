"""Audit records are group-committed: every reply waits for its own record, and a commit
that fails fails every call it covered (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.errors import MeshError
from services.connector.models import AuditRow
from tests.connector.backends import BackendState
from tests.connector.conftest import Mesh, declare, register

CALLS = 24  # concurrent invocations, enough for several to share a commit

REFUSE = {
    "sqlite": [
        "CREATE TRIGGER audit_refused BEFORE INSERT ON connector_audit "
        "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION audit_refused() RETURNS trigger AS "
        "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER audit_refused BEFORE INSERT ON connector_audit "
        "FOR EACH ROW EXECUTE FUNCTION audit_refused()",
    ],
}
ALLOW = {
    "sqlite": ["DROP TRIGGER audit_refused"],
    "postgresql": [
        "DROP TRIGGER audit_refused ON connector_audit",
        "DROP FUNCTION audit_refused()",
    ],
}


@pytest.fixture
async def item(mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None) -> str:
    """fabrikam's ``item`` operation, granted to contoso."""
    url, _state = backend
    await register(mesh, url)
    await declare(mesh, "item", "/items/{item_id}")
    await mesh(c.CREATE_GRANT, "fatima", {"operation": "fabrikam.item", "grantee": "contoso"})
    return "fabrikam.item"


async def invoke(mesh: Mesh, op: str, n: int) -> c.InvokeReply:
    reply: c.InvokeReply = await mesh(
        c.INVOKE, "carlos", {"operation": op, "input": {"item_id": f"a{n}"}}
    )
    return reply


async def audit_ids(engine: AsyncEngine) -> set[str]:
    """The committed audit records, read on a connection of their own."""
    async with engine.connect() as conn:
        return set((await conn.scalars(select(AuditRow.id))).all())


async def run_sql(engine: AsyncEngine, statements: list[str]) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


class TestGroupCommittedAudit:
    async def test_each_reply_comes_after_its_own_record_is_committed(
        self, mesh: Mesh, item: str, connector: Any
    ) -> None:
        engine = connector.db.engine
        assert connector.connector.audit.running

        async def call_and_look(n: int) -> tuple[str, bool]:
            reply = await invoke(mesh, item, n)
            return reply.audit_id, reply.audit_id in await audit_ids(engine)

        seen = await asyncio.gather(*(call_and_look(n) for n in range(CALLS)))
        assert all(committed for _, committed in seen)
        assert len({audit_id for audit_id, _ in seen}) == CALLS
        assert await audit_ids(engine) == {audit_id for audit_id, _ in seen}

    async def test_a_failed_commit_fails_every_call_it_covered(
        self, mesh: Mesh, item: str, connector: Any
    ) -> None:
        engine = connector.db.engine
        dialect = engine.dialect.name
        await invoke(mesh, item, 0)  # the plan is cached: the calls below only audit
        before = await audit_ids(engine)
        await run_sql(engine, REFUSE[dialect])
        try:
            outcomes = await asyncio.gather(
                *(invoke(mesh, item, n) for n in range(CALLS)), return_exceptions=True
            )
        finally:
            await run_sql(engine, ALLOW[dialect])
        # every call is refused (the code is the kit's for that database error: the
        # trigger's abort reads as a constraint on SQLite), none answered as recorded
        assert all(isinstance(o, MeshError) for o in outcomes), outcomes
        codes = {o.code for o in outcomes if isinstance(o, MeshError)}
        assert not codes - {ErrorCode.INTERNAL, ErrorCode.CONFLICT}
        assert await audit_ids(engine) == before  # nothing answered, nothing recorded
        reply = await invoke(mesh, item, 1)  # the next commit works again
        assert reply.audit_id in await audit_ids(engine)
        async with engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(AuditRow)) == 2
