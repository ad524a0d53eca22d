"""The audit of invocations: one record per call, committed before the call is answered.

Most calls write nothing but their audit record, so those records are group-committed
(:class:`mesh.groupcommit.GroupCommit` with :class:`AuditWriter`): the records of every
call finishing while the previous commit runs share one transaction, and each call is
answered only once its own record is committed. Durability is the database's commit
(stated in :mod:`mesh.groupcommit`: PostgreSQL survives a crash and a power loss; a
SQLite file in WAL with ``synchronous=NORMAL`` survives a crash of the process). A commit
that fails fails every call it covered: none is answered as if it had been recorded.

A call that also settles its idempotency record writes its audit record in that same
transaction instead (:func:`services.connector.invocation.invoke`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.claims import Claims
from contracts.v1 import connector as c
from mesh.db import Database
from mesh.groupcommit import GroupCommit
from services.connector import access, alliances
from services.connector import repository as repo
from services.connector.models import AuditRow, OperationRow


class AuditWriter:
    """Audit records (column values) in one transaction per batch (a group commit's
    writer: :class:`mesh.groupcommit.Writer`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def write(self, rows: list[dict[str, Any]], marks: list[str]) -> None:
        assert not marks  # audit records are no outbox rows: nothing to mark published
        if rows:
            await repo.insert_audits(self.engine, rows)

    async def close(self) -> None:
        return None


def audit_commit(db: Database) -> GroupCommit:
    """The group commit of ``db``'s audit records (run it as a background task)."""
    group = GroupCommit(db, None, AuditWriter(db.engine), join=list)
    group.on_commit = _nothing  # no outbox relay to wake: audit records are no events
    return group


def _nothing(_rows: list[Any]) -> None:
    return None


async def commit(group: GroupCommit, values: dict[str, Any]) -> None:
    """Return once the audit record ``values`` is committed (in a batch while the group
    commit runs; in a transaction of its own before it starts or after it stopped)."""
    if group.running:
        await group.submit([values])
    else:
        await group.writer.write([values], [])


def new_row(
    op: OperationRow,
    partner: str | None,
    sub: str,
    outcome: str,
    status: int | None,
    started: float,
    attempts: int,
    flow: str | None,
) -> AuditRow:
    return AuditRow(
        id=uuid.uuid4().hex,
        eco=op.eco,
        operation=op.id,
        owner_partner=op.partner,
        caller_partner=partner,
        caller=sub,
        outcome=outcome,
        status=status,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        attempts=attempts,
        flow=flow,
        at=repo.now(),
    )


def values_of(row: AuditRow) -> dict[str, Any]:
    return {key: getattr(row, key) for key in repo.AUDIT_COLUMNS}


def audit_record(r: AuditRow) -> c.AuditRecord:
    return c.AuditRecord(
        id=r.id,
        operation=r.operation,
        owner_eco=r.eco,
        owner_partner=r.owner_partner,
        caller_eco=r.caller_eco or r.eco,
        caller_partner=r.caller_partner,
        caller=r.caller,
        outcome=r.outcome,
        status=r.status,
        latency_ms=r.latency_ms,
        attempts=r.attempts,
        flow=r.flow,
        at=r.at,
    )


async def list_audit(cx: Any, claims: Claims, req: c.AuditRequest) -> c.AuditList:
    """Records of the ecosystem's operations and of its partners' calls across alliances."""
    alliances.own_routes_only(claims, "the audit")
    async with cx.db.transaction() as s:
        rows = await repo.list_audit(
            s, req.eco, claims.partner, access.is_operator(claims), req.operation, req.limit
        )
        return c.AuditList(items=[audit_record(r) for r in rows])
