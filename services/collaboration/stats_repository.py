"""SQL of collaboration's aggregates: forum writing counted per UTC day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from mesh.timeseries import utc_day
from services.collaboration.models import PostRow, ThreadRow


async def forum_writing_per_day(
    s: AsyncSession, eco: str, start: datetime, end: datetime
) -> list[tuple[str, str, int]]:
    """``(kind, day, count)`` of the forum threads started and replies posted in
    ``[start, end)``: forums only (no workspace's), nothing hidden."""
    forum = (ThreadRow.eco == eco, ThreadRow.workspace.is_(None), ThreadRow.hidden.is_(False))
    threads = select(
        literal("threads").label("kind"), utc_day(ThreadRow.created_at).label("day")
    ).where(*forum, ThreadRow.created_at >= start, ThreadRow.created_at < end)
    replies = (
        select(literal("replies").label("kind"), utc_day(PostRow.created_at).label("day"))
        .join(ThreadRow, ThreadRow.id == PostRow.thread)
        .where(
            *forum,
            PostRow.eco == eco,
            PostRow.hidden.is_(False),
            PostRow.created_at >= start,
            PostRow.created_at < end,
        )
    )
    both = union_all(threads, replies).subquery()
    query = select(both.c.kind, both.c.day, func.count()).group_by(both.c.kind, both.c.day)
    return [(str(k), str(d), int(n)) for k, d, n in (await s.execute(query)).all()]
