"""SQL of durable flows: their rows and the lease that lets one runner drive each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.connector.models import Flow

ACTIVE = ("running", "compensating")


async def get_flow(s: AsyncSession, eco: str, flow_id: str) -> Flow | None:
    row = await s.get(Flow, flow_id)
    return row if row is not None and row.eco == eco else None


async def list_flows(
    s: AsyncSession, eco: str, partner: str | None, everyone: bool
) -> Sequence[Flow]:
    q = select(Flow).where(Flow.eco == eco)
    if not everyone:
        q = q.where(Flow.owner_partner == partner)
    return (await s.scalars(q.order_by(Flow.created_at.desc()).limit(200))).all()


async def runnable(s: AsyncSession, now: datetime, limit: int = 10) -> Sequence[Flow]:
    q = (
        select(Flow)
        .where(Flow.status.in_(ACTIVE), or_(Flow.lease_until.is_(None), Flow.lease_until < now))
        .order_by(Flow.updated_at)
        .limit(limit)
    )
    return (await s.scalars(q)).all()


async def claim(s: AsyncSession, flow: Flow, owner: str, until: datetime) -> bool:
    """Take the lease of a flow whose lease has expired (no other runner moved it meanwhile)."""
    cond = (
        Flow.lease_until.is_(None)
        if flow.lease_until is None
        else (Flow.lease_until == flow.lease_until)
    )
    result = await s.execute(
        update(Flow)
        .where(Flow.id == flow.id, cond)
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def renew(s: AsyncSession, flow_id: str, owner: str, until: datetime) -> bool:
    result = await s.execute(
        update(Flow)
        .where(Flow.id == flow_id, Flow.lease_owner == owner)
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def held(s: AsyncSession, flow_id: str, owner: str) -> Flow | None:
    """The flow, locked for update, if ``owner`` still holds its lease."""
    q = select(Flow).where(Flow.id == flow_id, Flow.lease_owner == owner).with_for_update()
    return (await s.scalars(q)).first()
