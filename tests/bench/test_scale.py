"""The large-ecosystem generator of ``make bench-scale``: the same data every time, loadable
through each service's own migrations; and the index revision it brought to collaboration."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bench.scale.load import SERVICES, fill
from bench.scale.shape import ECO, Shape, person_id, thread_id
from mesh.db import make_engine
from mesh.migrate import VERSION_TABLE, upgrade
from services.collaboration import models as cm
from services.collaboration import repository as collaboration_repo
from services.matching import models as mm
from services.profile import models as pm


def rows_of(shape: Shape, service: str) -> Iterator[tuple[str, Any, str | None]]:
    for stmt, chunk, only in SERVICES[service][1](shape):
        yield str(stmt), chunk, only


@pytest.mark.parametrize("service", list(SERVICES))
def test_the_same_size_generates_the_same_rows(service: str) -> None:
    first = list(rows_of(Shape(60), service))
    assert first == list(rows_of(Shape(60), service))
    assert first != list(rows_of(Shape(70), service))
    assert sum(len(chunk) for _, chunk, _ in first) > 60


async def count(session: AsyncSession, table: Any) -> int:
    return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_profile_rows_load_and_are_found(database_url: str) -> None:
    shape = Shape(40)
    done = await fill(database_url, "profile", shape)
    assert done["rows"] > 0
    engine = make_engine(database_url)
    try:
        async with AsyncSession(engine) as s:
            assert await count(s, pm.persons) == 40
            assert await count(s, pm.companies) == shape.companies
            # four viewer tiers per entry, as the service indexes them
            assert await count(s, pm.search_docs) == 4 * (40 + shape.companies)
            cloud = pm.cloud_terms.c
            terms = await s.execute(
                select(func.count()).where(
                    cloud.owner_kind == "person", cloud.owner == person_id(7)
                )
            )
            assert terms.scalar_one() > 1
    finally:
        await engine.dispose()


async def test_collaboration_rows_load_and_a_long_thread_pages_in_order(database_url: str) -> None:
    shape = Shape(40)
    await fill(database_url, "collaboration", shape)
    engine = make_engine(database_url)
    try:
        async with AsyncSession(engine) as s:
            assert await count(s, cm.PostRow.__table__) == shape.posts
            page = await collaboration_repo.posts(s, thread_id(0), None, 50, 0)
            assert len(page) == 20 == shape.long_thread_posts
            assert [p.created_at for p in page] == sorted(p.created_at for p in page)
            rows, unread = await collaboration_repo.notifications(
                s, ECO, person_id(3), [], False, 50
            )
            assert 0 < len(rows) <= shape.notifications_per_person
            assert unread <= len(rows)
            assert all(r.recipient == person_id(3) for r in rows)
    finally:
        await engine.dispose()


async def test_matching_rows_load(database_url: str) -> None:
    shape = Shape(40)
    await fill(database_url, "matching", shape)
    engine = make_engine(database_url)
    try:
        async with AsyncSession(engine) as s:
            assert await count(s, mm.Person.__table__) == 40
            assert await count(s, mm.IntroductionRow.__table__) == shape.introductions
    finally:
        await engine.dispose()


def _indexes(conn: Connection) -> set[str]:
    return {i["name"] for i in inspect(conn).get_indexes("posts") if i["name"]}


def _downgrade(conn: Connection, target: str) -> None:
    history = cm.history
    with conn.begin():
        command.downgrade(history.config(conn), target)


async def test_posts_page_order_index_applies_and_downgrades(database_url: str) -> None:
    await upgrade(database_url, cm.history, "0004")
    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            assert "ix_posts_thread" in await conn.run_sync(_indexes)
        await upgrade(database_url, cm.history, "0005")
        async with engine.connect() as conn:
            names = await conn.run_sync(_indexes)
            assert "ix_posts_thread_order" in names and "ix_posts_thread" not in names
        async with engine.connect() as conn:
            await conn.run_sync(_downgrade, "0004")
        async with engine.connect() as conn:
            names = await conn.run_sync(_indexes)
            assert "ix_posts_thread" in names and "ix_posts_thread_order" not in names
            version = await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            assert version.scalar_one() == "0004"
    finally:
        await engine.dispose()
