"""SQL of the connector's aggregates: invocations and webhook deliveries per UTC day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mesh.timeseries import utc_day
from services.connector.models import AuditRow, Delivery, Subscription


async def calls_per_day(
    s: AsyncSession, eco: str, partner: str | None, everyone: bool, start: datetime, end: datetime
) -> list[tuple[str, str, int]]:
    """``('calls' | 'errors', day, count)`` of the invocations in ``[start, end)`` where
    ``partner`` is the caller or the owner (every one with ``everyone``); an error is an
    invocation whose outcome is not ``ok``."""
    day = utc_day(AuditRow.at).label("day")
    failed = func.sum(case((AuditRow.outcome == "ok", 0), else_=1))
    query = (
        select(day, func.count(), failed)
        .where(AuditRow.eco == eco, AuditRow.at >= start, AuditRow.at < end)
        .group_by(day)
    )
    if not everyone:
        query = query.where(
            or_(AuditRow.caller_partner == partner, AuditRow.owner_partner == partner)
        )
    rows = (await s.execute(query)).all()
    return [("calls", str(d), int(n)) for d, n, _ in rows] + [
        ("errors", str(d), int(f or 0)) for d, _, f in rows
    ]


async def deliveries_per_day(
    s: AsyncSession, eco: str, partner: str | None, everyone: bool, start: datetime, end: datetime
) -> list[tuple[str, str, int]]:
    """``(status, day, count)`` of the outbound webhook deliveries created in
    ``[start, end)`` to the subscriptions of ``partner`` (every one with ``everyone``)."""
    day = utc_day(Delivery.created_at).label("day")
    query = (
        select(Delivery.status, day, func.count())
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.eco == eco, Delivery.created_at >= start, Delivery.created_at < end)
        .group_by(Delivery.status, day)
    )
    if not everyone:
        query = query.where(Subscription.partner == partner)
    return [(str(st), str(d), int(n)) for st, d, n in (await s.execute(query)).all()]
