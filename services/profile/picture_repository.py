"""Queries of profile pictures: the stored bytes, and the hash on the person or company row."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.profile.models import companies, persons, pictures

Kind = Literal["person", "company"]


def _owner_table(kind: Kind) -> Any:
    return persons if kind == "person" else companies


def _owner_key(kind: Kind) -> Any:
    return persons.c.person if kind == "person" else companies.c.partner


async def store(
    session: AsyncSession, eco: str, kind: Kind, owner: str, at: datetime, **picture: Any
) -> None:
    """Replace the owner's picture and point their row at its hash (one transaction)."""
    p = pictures.c
    await session.execute(delete(pictures).where(p.eco == eco, p.kind == kind, p.owner == owner))
    await session.execute(
        insert(pictures).values(eco=eco, kind=kind, owner=owner, updated_at=at, **picture)
    )
    table = _owner_table(kind)
    await session.execute(
        update(table)
        .where(table.c.eco == eco, _owner_key(kind) == owner)
        .values(image=picture["hash"])
    )


async def load(session: AsyncSession, eco: str, kind: Kind, owner: str) -> Row[Any] | None:
    p = pictures.c
    query = select(pictures).where(p.eco == eco, p.kind == kind, p.owner == owner)
    return (await session.execute(query)).first()


async def hashes(
    session: AsyncSession, eco: str, kind: Kind, owners: Iterable[str]
) -> dict[str, str]:
    """The picture hash of each owner that has one (for directory pages)."""
    wanted = list(dict.fromkeys(owners))
    if not wanted:
        return {}
    table, key = _owner_table(kind), _owner_key(kind)
    query = select(key, table.c.image).where(
        table.c.eco == eco, key.in_(wanted), table.c.image.is_not(None)
    )
    return {str(owner): str(image) for owner, image in (await session.execute(query)).all()}
