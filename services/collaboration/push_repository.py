"""SQL of Web Push: push subscriptions and the kinds each person opted in to push."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.collaboration.models import PushKindRow, PushSubscriptionRow


async def subscriptions_of(
    session: AsyncSession, eco: str, person: str
) -> list[PushSubscriptionRow]:
    query = (
        select(PushSubscriptionRow)
        .where(PushSubscriptionRow.eco == eco, PushSubscriptionRow.person == person)
        .order_by(PushSubscriptionRow.created_at, PushSubscriptionRow.id)
        .limit(50)
    )
    return list((await session.scalars(query)).all())


async def by_endpoint(session: AsyncSession, endpoint_hash: str) -> PushSubscriptionRow | None:
    query = select(PushSubscriptionRow).where(PushSubscriptionRow.endpoint_hash == endpoint_hash)
    return (await session.scalars(query)).first()


async def delete_subscription(
    session: AsyncSession, subscription: str, eco: str | None = None, person: str | None = None
) -> bool:
    """Delete one subscription (of ``person`` in ``eco`` when given); whether it was there."""
    where = [PushSubscriptionRow.id == subscription]
    if eco is not None and person is not None:
        where += [PushSubscriptionRow.eco == eco, PushSubscriptionRow.person == person]
    result = await session.execute(delete(PushSubscriptionRow).where(*where))
    return bool(getattr(result, "rowcount", 0))


async def pushed_kinds(session: AsyncSession, eco: str, person: str) -> set[str]:
    query = select(PushKindRow.kind).where(PushKindRow.eco == eco, PushKindRow.person == person)
    return set((await session.scalars(query)).all())


async def set_pushed(
    session: AsyncSession, eco: str, person: str, kinds: Iterable[tuple[str, bool]]
) -> None:
    for kind, on in kinds:
        where = (PushKindRow.eco == eco, PushKindRow.person == person, PushKindRow.kind == kind)
        await session.execute(delete(PushKindRow).where(*where))
        if on:
            session.add(PushKindRow(eco=eco, person=person, kind=kind))
