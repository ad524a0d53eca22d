"""Queries on profiles, connections and the verification audit (the only SQL for them)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.profile.models import audit, companies, connections, connections_across, persons


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


async def get_person(
    session: AsyncSession, eco: str, person: str, for_update: bool = False
) -> Row[Any] | None:
    query = select(persons).where(persons.c.eco == eco, persons.c.person == person)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def get_person_and_company(session: AsyncSession, eco: str, person: str) -> Row[Any] | None:
    """A person's row with ``company_name`` (None when the company is not registered)."""
    p, c = persons.c, companies.c
    query = (
        select(persons, c.name.label("company_name"))
        .outerjoin(companies, and_(c.eco == p.eco, c.partner == p.partner))
        .where(p.eco == eco, p.person == person)
    )
    return (await session.execute(query)).first()


async def insert_person(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(persons).values(**values))


async def update_person(session: AsyncSession, eco: str, person: str, **values: Any) -> None:
    await session.execute(
        update(persons).where(persons.c.eco == eco, persons.c.person == person).values(**values)
    )


async def get_company(
    session: AsyncSession, eco: str, partner: str, for_update: bool = False
) -> Row[Any] | None:
    query = select(companies).where(companies.c.eco == eco, companies.c.partner == partner)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).first()


async def insert_company(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(companies).values(**values))


async def update_company(session: AsyncSession, eco: str, partner: str, **values: Any) -> None:
    await session.execute(
        update(companies)
        .where(companies.c.eco == eco, companies.c.partner == partner)
        .values(**values)
    )


async def company_name(session: AsyncSession, eco: str, partner: str) -> str | None:
    query = select(companies.c.name).where(companies.c.eco == eco, companies.c.partner == partner)
    return (await session.execute(query)).scalar_one_or_none()


async def connect(
    session: AsyncSession, eco: str, person: str, other: str, other_partner: str
) -> bool:
    """Record that ``person`` is connected with ``other``; False if already recorded."""
    c = connections.c
    seen = await session.execute(
        select(c.person).where(c.eco == eco, c.person == person, c.other == other)
    )
    if seen.first() is not None:
        return False
    await session.execute(
        insert(connections).values(eco=eco, person=person, other=other, other_partner=other_partner)
    )
    return True


async def is_connected(session: AsyncSession, eco: str, viewer: str, person: str) -> bool:
    c = connections.c
    query = select(exists().where(c.eco == eco, c.person == viewer, c.other == person))
    return bool((await session.execute(query)).scalar())


async def connected_with_partner(
    session: AsyncSession, eco: str, viewer: str, partner: str
) -> bool:
    c = connections.c
    query = select(exists().where(c.eco == eco, c.person == viewer, c.other_partner == partner))
    return bool((await session.execute(query)).scalar())


def connections_of(eco: str, viewer: str) -> Any:
    """Subquery: the people ``viewer`` is connected with."""
    c = connections.c
    return select(c.other).where(and_(c.eco == eco, c.person == viewer))


def partners_connected_to(eco: str, viewer: str) -> Any:
    """Subquery: the partners of the people ``viewer`` is connected with."""
    c = connections.c
    return select(c.other_partner).where(and_(c.eco == eco, c.person == viewer))


async def connect_across(
    session: AsyncSession,
    eco: str,
    person: str,
    other_eco: str,
    other: str,
    other_partner: str,
) -> bool:
    """Record that ``person`` of ``eco`` is connected with ``other`` of the allied
    ``other_eco``; False if already recorded."""
    x = connections_across.c
    seen = await session.execute(
        select(x.person).where(
            x.eco == eco, x.person == person, x.other_eco == other_eco, x.other == other
        )
    )
    if seen.first() is not None:
        return False
    await session.execute(
        insert(connections_across).values(
            eco=eco, person=person, other_eco=other_eco, other=other, other_partner=other_partner
        )
    )
    return True


async def is_connected_across(
    session: AsyncSession, eco: str, viewer: str, other_eco: str, person: str
) -> bool:
    x = connections_across.c
    query = select(
        exists().where(
            x.eco == eco, x.person == viewer, x.other_eco == other_eco, x.other == person
        )
    )
    return bool((await session.execute(query)).scalar())


async def connected_across_with_partner(
    session: AsyncSession, eco: str, viewer: str, other_eco: str, partner: str
) -> bool:
    x = connections_across.c
    query = select(
        exists().where(
            x.eco == eco, x.person == viewer, x.other_eco == other_eco, x.other_partner == partner
        )
    )
    return bool((await session.execute(query)).scalar())


async def add_audit(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(audit).values(at=datetime.now(UTC), **values))


async def list_audit(session: AsyncSession, eco: str, limit: int) -> list[Row[Any]]:
    query = select(audit).where(audit.c.eco == eco).order_by(audit.c.id.desc()).limit(limit)
    return list((await session.execute(query)).all())


async def delete_connections(session: AsyncSession, eco: str) -> None:
    await session.execute(delete(connections).where(connections.c.eco == eco))
