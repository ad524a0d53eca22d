"""SQL of webhooks: inbound endpoints and their seen ids, subscriptions, deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.connector.models import Delivery, InboundEndpoint, InboundSeen, Subscription


async def get_inbound(s: AsyncSession, eco: str, partner: str, name: str) -> InboundEndpoint | None:
    q = select(InboundEndpoint).where(
        InboundEndpoint.eco == eco,
        InboundEndpoint.partner == partner,
        InboundEndpoint.name == name,
    )
    return (await s.scalars(q)).first()


async def seen(s: AsyncSession, endpoint_id: str, webhook_id: str) -> InboundSeen | None:
    return await s.get(InboundSeen, (endpoint_id, webhook_id))


async def get_subscription(s: AsyncSession, eco: str, sub_id: str) -> Subscription | None:
    row = await s.get(Subscription, sub_id)
    return row if row is not None and row.eco == eco else None


async def list_subscriptions(s: AsyncSession, eco: str, partner: str) -> Sequence[Subscription]:
    q = select(Subscription).where(Subscription.eco == eco, Subscription.partner == partner)
    return (await s.scalars(q.order_by(Subscription.created_at))).all()


async def active_subscriptions(
    s: AsyncSession, eco: str, source_partner: str
) -> Sequence[Subscription]:
    q = select(Subscription).where(
        Subscription.eco == eco,
        Subscription.source_partner == source_partner,
        Subscription.active.is_(True),
    )
    return (await s.scalars(q)).all()


async def get_delivery(s: AsyncSession, eco: str, delivery_id: str) -> Delivery | None:
    row = await s.get(Delivery, delivery_id)
    return row if row is not None and row.eco == eco else None


async def find_delivery(s: AsyncSession, sub_id: str, webhook_id: str) -> Delivery | None:
    q = select(Delivery).where(
        Delivery.subscription_id == sub_id, Delivery.webhook_id == webhook_id
    )
    return (await s.scalars(q)).first()


async def list_deliveries(s: AsyncSession, sub_id: str) -> Sequence[Delivery]:
    q = select(Delivery).where(Delivery.subscription_id == sub_id).order_by(Delivery.created_at)
    return (await s.scalars(q)).all()


async def due_deliveries(s: AsyncSession, now: datetime, limit: int) -> Sequence[Delivery]:
    q = (
        select(Delivery)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    return (await s.scalars(q)).all()


async def lease_delivery(s: AsyncSession, d: Delivery, until: datetime) -> bool:
    """Claim a due delivery by moving its next attempt (fails if another worker moved it)."""
    result = await s.execute(
        update(Delivery)
        .where(
            Delivery.id == d.id,
            Delivery.status == "pending",
            Delivery.next_attempt_at == d.next_attempt_at,
        )
        .values(next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
