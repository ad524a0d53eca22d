"""SQL of the connector's registry: vault rows, back-ends, operations, grants, audit, allow-list."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from mesh import textsearch
from services.connector.models import (
    Allowed,
    AuditRow,
    Backend,
    Grant,
    IdempotencyRecord,
    OperationRow,
    VaultSecret,
)


def now() -> datetime:
    return datetime.now(UTC)


# --- vault -----------------------------------------------------------------------------------


async def put_secret(s: AsyncSession, secret_id: str, ciphertext: str) -> None:
    row = await s.get(VaultSecret, secret_id)
    if row is None:
        s.add(VaultSecret(id=secret_id, ciphertext=ciphertext, updated_at=now()))
    else:
        row.ciphertext, row.updated_at = ciphertext, now()
    await s.flush()


async def get_secret(s: AsyncSession, secret_id: str) -> str | None:
    row = await s.get(VaultSecret, secret_id)
    return row.ciphertext if row else None


async def all_secrets(s: AsyncSession) -> Sequence[VaultSecret]:
    return (await s.scalars(select(VaultSecret))).all()


async def delete_secret(s: AsyncSession, secret_id: str) -> None:
    await s.execute(delete(VaultSecret).where(VaultSecret.id == secret_id))


# --- back-ends and operations ----------------------------------------------------------------


async def add(s: AsyncSession, row: object) -> None:
    s.add(row)
    await s.flush()


async def get_backend(s: AsyncSession, eco: str, partner: str, name: str) -> Backend | None:
    q = select(Backend).where(Backend.eco == eco, Backend.partner == partner, Backend.name == name)
    return (await s.scalars(q)).first()


async def get_backend_by_id(s: AsyncSession, backend_id: str) -> Backend | None:
    return await s.get(Backend, backend_id)


async def list_backends(s: AsyncSession, eco: str, partner: str) -> Sequence[Backend]:
    q = select(Backend).where(Backend.eco == eco, Backend.partner == partner).order_by(Backend.name)
    return (await s.scalars(q)).all()


async def get_operation(s: AsyncSession, eco: str, op_id: str) -> OperationRow | None:
    return await s.get(OperationRow, (eco, op_id))


async def list_operations(
    s: AsyncSession, eco: str, words: Sequence[str] = ()
) -> Sequence[OperationRow]:
    """The ecosystem's operations; with ``words``, those having every word (literally)."""
    q = select(OperationRow).where(OperationRow.eco == eco).order_by(OperationRow.id)
    if words:
        columns = [OperationRow.id, OperationRow.name, OperationRow.description]
        q = q.where(textsearch.matches_all(columns, words))
    return (await s.scalars(q)).all()


# --- grants ----------------------------------------------------------------------------------


async def get_grant(s: AsyncSession, eco: str, grant_id: str) -> Grant | None:
    row = await s.get(Grant, grant_id)
    return row if row is not None and row.eco == eco else None


async def list_grants(s: AsyncSession, eco: str, kind: str, resource: str) -> Sequence[Grant]:
    q = (
        select(Grant)
        .where(Grant.eco == eco, Grant.kind == kind, Grant.resource == resource)
        .order_by(Grant.created_at)
    )
    return (await s.scalars(q)).all()


async def grants_owned(s: AsyncSession, eco: str, kind: str, owner: str) -> Sequence[Grant]:
    q = (
        select(Grant)
        .where(Grant.eco == eco, Grant.kind == kind, Grant.owner_partner == owner)
        .order_by(Grant.created_at)
    )
    return (await s.scalars(q)).all()


async def active_grants(
    s: AsyncSession, eco: str, kind: str, grantee: str | None, resource: str | None = None
) -> Sequence[Grant]:
    """Unrevoked grants of ``kind`` to ``grantee`` of ``eco`` or to the whole ecosystem
    (not those across an alliance)."""
    q = select(Grant).where(
        Grant.eco == eco,
        Grant.kind == kind,
        Grant.revoked_at.is_(None),
        Grant.grantee_eco.is_(None),
        or_(Grant.grantee.is_(None), Grant.grantee == grantee),
    )
    if resource is not None:
        q = q.where(Grant.resource == resource)
    return (await s.scalars(q.order_by(Grant.created_at))).all()


async def granted_across(
    s: AsyncSession, home: str, grantee: str | None, words: Sequence[str] = ()
) -> Sequence[tuple[Grant, OperationRow]]:
    """Unrevoked grants of other ecosystems' operations to partners of ``home`` (to
    ``grantee`` only, unless None), with their operations; with ``words``, operations
    having every word."""
    q = (
        select(Grant, OperationRow)
        .join(OperationRow, and_(OperationRow.eco == Grant.eco, OperationRow.id == Grant.resource))
        .where(Grant.grantee_eco == home, Grant.kind == "operation", Grant.revoked_at.is_(None))
    )
    if grantee is not None:
        q = q.where(Grant.grantee == grantee)
    if words:
        columns = [OperationRow.id, OperationRow.name, OperationRow.description]
        q = q.where(textsearch.matches_all(columns, words))
    rows = await s.execute(q.order_by(Grant.eco, OperationRow.id, Grant.created_at))
    return [(g, op) for g, op in rows.all()]


AUDIT_COLUMNS = tuple(c.key for c in inspect(AuditRow).column_attrs)


async def insert_audits(engine: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    """Commit audit records (column values) in one short transaction, without an ORM
    session."""
    async with engine.begin() as conn:
        await conn.execute(insert(AuditRow), rows)


async def revoke_grant(s: AsyncSession, grant: Grant) -> None:
    grant.revoked_at = now()
    await s.flush()


# --- egress allow-list -----------------------------------------------------------------------


async def allowlist(s: AsyncSession, eco: str) -> list[str]:
    q = select(Allowed.entry).where(Allowed.eco == eco).order_by(Allowed.entry)
    return list((await s.scalars(q)).all())


async def set_allowlist(s: AsyncSession, eco: str, entries: list[str]) -> None:
    await s.execute(delete(Allowed).where(Allowed.eco == eco))
    s.add_all(Allowed(eco=eco, entry=e) for e in dict.fromkeys(entries))
    await s.flush()


# --- audit and rate limits -------------------------------------------------------------------


async def list_audit(
    s: AsyncSession,
    eco: str,
    partner: str | None,
    everyone: bool,
    operation: str | None,
    limit: int,
) -> Sequence[AuditRow]:
    """Records of ``eco``: of its operations, and of its partners' calls across an alliance
    (``caller_eco``); unless ``everyone``, those where ``partner`` is owner or caller."""
    mine = AuditRow.eco == eco
    theirs = AuditRow.caller_eco == eco  # calls of eco's partners to allied operations
    if everyone:
        q = select(AuditRow).where(or_(mine, theirs))
    else:
        q = select(AuditRow).where(
            or_(
                and_(mine, AuditRow.owner_partner == partner),
                and_(mine, AuditRow.caller_eco.is_(None), AuditRow.caller_partner == partner),
                and_(theirs, AuditRow.caller_partner == partner),
            )
        )
    if operation:
        q = q.where(AuditRow.operation == operation)
    return (await s.scalars(q.order_by(AuditRow.at.desc()).limit(limit))).all()


NOT_SENT = ("rate_limited", "denied", "invalid_input", "replayed")  # no call reached the back-end


async def count_calls(
    s: AsyncSession,
    eco: str,
    operation: str,
    caller_partner: str,
    since: datetime,
    caller_eco: str | None = None,
) -> int:
    q = select(func.count()).where(
        AuditRow.eco == eco,
        AuditRow.operation == operation,
        AuditRow.caller_partner == caller_partner,
        AuditRow.caller_eco.is_(None) if caller_eco is None else AuditRow.caller_eco == caller_eco,
        AuditRow.at >= since,
        AuditRow.outcome.notin_(NOT_SENT),
    )
    return int((await s.execute(q)).scalar_one())


# --- idempotency -----------------------------------------------------------------------------


async def get_idempotency(
    s: AsyncSession, eco: str, partner: str, operation: str, key: str
) -> IdempotencyRecord | None:
    return await s.get(IdempotencyRecord, (eco, partner, operation, key))


async def reclaim_idempotency(
    s: AsyncSession, rec: IdempotencyRecord, stale_before: datetime
) -> bool:
    """Take over an unfinished record older than ``stale_before`` (its caller died)."""
    result = await s.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.eco == rec.eco,
            IdempotencyRecord.caller_partner == rec.caller_partner,
            IdempotencyRecord.operation == rec.operation,
            IdempotencyRecord.key == rec.key,
            IdempotencyRecord.status.is_(None),
            IdempotencyRecord.created_at < stale_before,
        )
        .values(created_at=now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
