"""All SQL of the portal: sessions, pending logins and dashboards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from portal.models import dashboards, logins, logout_jtis, sessions


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- logins


async def add_login(
    s: AsyncSession, state: str, verifier: str, nonce: str, return_to: str, at: float
) -> None:
    await s.execute(
        insert(logins).values(
            state=state, verifier=verifier, nonce=nonce, return_to=return_to, created_at=at
        )
    )


async def take_login(s: AsyncSession, state: str, not_before: float) -> dict[str, Any] | None:
    """Remove and return a pending login (one use only), if it is not too old."""
    row = (await s.execute(select(logins).where(logins.c.state == state))).mappings().first()
    await s.execute(
        delete(logins).where(or_(logins.c.state == state, logins.c.created_at < not_before))
    )
    if row is None or row["created_at"] < not_before:
        return None
    return dict(row)


# ---------------------------------------------------------------- sessions


async def add_session(s: AsyncSession, values: dict[str, Any]) -> None:
    await s.execute(insert(sessions).values(created_at=_now(), **values))


async def get_session(s: AsyncSession, sid: str) -> dict[str, Any] | None:
    row = (await s.execute(select(sessions).where(sessions.c.id == sid))).mappings().first()
    return dict(row) if row else None


async def update_session(s: AsyncSession, sid: str, **values: Any) -> None:
    await s.execute(update(sessions).where(sessions.c.id == sid).values(**values))


async def delete_session(s: AsyncSession, sid: str) -> None:
    await s.execute(delete(sessions).where(sessions.c.id == sid))


async def end_idp_sessions(s: AsyncSession, eco: str, sub: str | None, sid: str | None) -> int:
    """Delete the sessions a back-channel logout names: by identity's sid, else by sub."""
    where = [sessions.c.eco == eco]
    if sid:
        where.append(sessions.c.idp_sid == sid)
    if sub:
        where.append(sessions.c.sub == sub)
    result = await s.execute(delete(sessions).where(and_(*where)))
    return int(getattr(result, "rowcount", 0) or 0)


async def logout_jti_seen(s: AsyncSession, jti: str, expires_at: float, now: float) -> bool:
    """Record a logout token's jti; True if it had been accepted before."""
    await s.execute(delete(logout_jtis).where(logout_jtis.c.expires_at < now))
    found = await s.execute(select(logout_jtis.c.jti).where(logout_jtis.c.jti == jti))
    if found.first() is not None:
        return True
    await s.execute(insert(logout_jtis).values(jti=jti, expires_at=expires_at))
    return False


async def purge_sessions(s: AsyncSession, idle_before: float) -> None:
    await s.execute(delete(sessions).where(sessions.c.last_seen < idle_before))


# ---------------------------------------------------------------- dashboards


async def add_dashboard(s: AsyncSession, values: dict[str, Any]) -> None:
    now = _now()
    await s.execute(insert(dashboards).values(created_at=now, updated_at=now, **values))


async def update_dashboard(s: AsyncSession, dashboard_id: str, **values: Any) -> None:
    await s.execute(
        update(dashboards)
        .where(dashboards.c.id == dashboard_id)
        .values(updated_at=_now(), **values)
    )


async def delete_dashboard(s: AsyncSession, dashboard_id: str) -> None:
    await s.execute(delete(dashboards).where(dashboards.c.id == dashboard_id))


def _visible(eco: str, sub: str, partner: str | None) -> Any:
    """The owner's; the ecosystem's shared ones; the company's shared ones with its people
    (``shared`` alone is how the previous release shared with the company)."""
    seen = [dashboards.c.owner == sub, dashboards.c.visibility == "ecosystem"]
    if partner is not None:
        company = or_(dashboards.c.visibility == "company", dashboards.c.shared.is_(True))
        seen.append(and_(dashboards.c.partner == partner, company))
    return and_(dashboards.c.eco == eco, or_(*seen))


async def get_dashboard(
    s: AsyncSession, dashboard_id: str, eco: str, sub: str, partner: str | None
) -> dict[str, Any] | None:
    """A dashboard the viewer owns, or one shared with the viewer's company or ecosystem."""
    query = select(dashboards).where(dashboards.c.id == dashboard_id, _visible(eco, sub, partner))
    row = (await s.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_dashboards(
    s: AsyncSession, eco: str, sub: str, partner: str | None
) -> list[dict[str, Any]]:
    query = (
        select(dashboards)
        .where(_visible(eco, sub, partner))
        .order_by(dashboards.c.updated_at.desc())
        .limit(200)
    )
    return [dict(r) for r in (await s.execute(query)).mappings()]
