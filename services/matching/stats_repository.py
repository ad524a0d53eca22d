"""SQL of matching's aggregates: introductions' transitions counted per UTC day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mesh.timeseries import utc_day
from services.matching.models import AuditRow, IntroductionRow


async def transitions_per_day(
    s: AsyncSession,
    eco: str,
    start: datetime,
    end: datetime,
    person: str | None,
    hide: Sequence[str] = (),
) -> list[tuple[str, str, int]]:
    """``(status, day, count)``: how many introductions reached each status on each day of
    ``[start, end)``; only those ``person`` is a party to, unless ``None`` (everyone's),
    and never a transition to a status of ``hide``."""
    day = utc_day(AuditRow.at).label("day")
    query = (
        select(AuditRow.to_status, day, func.count())
        .join(IntroductionRow, IntroductionRow.id == AuditRow.introduction)
        .where(AuditRow.eco == eco, IntroductionRow.eco == eco)
        .where(AuditRow.at >= start, AuditRow.at < end)
        .group_by(AuditRow.to_status, day)
    )
    if person is not None:
        query = query.where(or_(IntroductionRow.a == person, IntroductionRow.b == person))
    if hide:
        query = query.where(AuditRow.to_status.not_in(hide))
    return [(str(st), str(d), int(n)) for st, d, n in (await s.execute(query)).all()]
