"""All SQL of the matching service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from services.matching.models import (
    AuditRow,
    Company,
    ForumThread,
    HelpGiven,
    IndexChange,
    IntroductionRow,
    Participant,
    Person,
    Preference,
    SocialEdge,
)

ROOM_LIMIT = 50  # co-participants linked per new participant (large rooms say little)


def now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- profiles and signals


async def set_preference(
    s: AsyncSession, eco: str, person: str, suggest: bool, learn: bool
) -> None:
    await s.merge(
        Preference(
            eco=eco, person=person, suggest_me=suggest, learn_from_me=learn, updated_at=now()
        )
    )
    s.add(IndexChange(eco=eco, kind="preference", key=person))


async def preferences(
    s: AsyncSession, eco: str | None = None, people: Sequence[str] | None = None
) -> Sequence[Preference]:
    q = select(Preference)
    if eco is not None:
        q = q.where(Preference.eco == eco)
    if people is not None:
        q = q.where(Preference.person.in_(people))
    return (await s.scalars(q)).all()


async def mark_outcome(s: AsyncSession, eco: str, people: Sequence[str]) -> None:
    """An introduction of these people was accepted or declined: their priors change."""
    for p in people:
        s.add(IndexChange(eco=eco, kind="outcome", key=p))


FORUM_TEXT = 2000  # characters of a thread or reply kept as evidence


async def add_help(
    s: AsyncSession,
    eco: str,
    content: str,
    person: str,
    at: datetime,
    thread: str | None = None,
    text: str = "",
) -> bool:
    """Record one post of ``person`` in a thread as help given; False if already recorded."""
    if await s.get(HelpGiven, (eco, content)) is not None:
        return False
    s.add(
        HelpGiven(
            eco=eco, content=content, person=person, at=at, thread=thread, text=text[:FORUM_TEXT]
        )
    )
    s.add(IndexChange(eco=eco, kind="help", key=person))
    return True


async def add_thread(
    s: AsyncSession,
    eco: str,
    thread: str,
    author: str,
    public: bool,
    title: str,
    text: str,
    at: datetime,
) -> bool:
    """Record a thread someone started (its words only when public); False if known."""
    if await s.get(ForumThread, (eco, thread)) is not None:
        return False
    s.add(
        ForumThread(
            eco=eco,
            thread=thread,
            author=author,
            public=public,
            title=title[:FORUM_TEXT] if public else "",
            text=text[:FORUM_TEXT] if public else "",
            at=at,
        )
    )
    s.add(IndexChange(eco=eco, kind="help", key=author))
    return True


async def threads(
    s: AsyncSession,
    eco: str | None = None,
    ids: Sequence[str] | None = None,
    authors: Sequence[str] | None = None,
) -> Sequence[ForumThread]:
    """Threads (of one ecosystem; by id or by author, or all), oldest first."""
    q = select(ForumThread)
    if eco is not None:
        q = q.where(ForumThread.eco == eco)
    if ids is not None:
        q = q.where(ForumThread.thread.in_(ids))
    if authors is not None:
        q = q.where(ForumThread.author.in_(authors))
    return (await s.scalars(q.order_by(ForumThread.at, ForumThread.thread))).all()


async def help_given(
    s: AsyncSession, eco: str | None = None, people: Sequence[str] | None = None
) -> Sequence[HelpGiven]:
    """Help given, oldest first (of one ecosystem and some people, or all)."""
    q = select(HelpGiven)
    if eco is not None:
        q = q.where(HelpGiven.eco == eco)
    if people is not None:
        q = q.where(HelpGiven.person.in_(people))
    return (await s.scalars(q.order_by(HelpGiven.at, HelpGiven.content))).all()


async def upsert_person(s: AsyncSession, eco: str, person: str, partner: str, doc: str) -> None:
    await s.merge(Person(eco=eco, person=person, partner=partner, doc=doc, updated_at=now()))
    s.add(IndexChange(eco=eco, kind="person", key=person))


async def upsert_company(s: AsyncSession, eco: str, partner: str, doc: str) -> None:
    await s.merge(Company(eco=eco, partner=partner, doc=doc, updated_at=now()))
    s.add(IndexChange(eco=eco, kind="company", key=partner))


async def add_tie(s: AsyncSession, eco: str, x: str, y: str, weight: float) -> float:
    """Strengthen the tie between x and y; return its new weight."""
    a, b = sorted((x, y))
    edge = await s.get(SocialEdge, (eco, a, b))
    if edge is None:
        edge = SocialEdge(eco=eco, a=a, b=b, weight=weight)
        s.add(edge)
    else:
        edge.weight += weight
    s.add(IndexChange(eco=eco, kind="social", key=f"{a}\n{b}"))
    return edge.weight


async def join_room(s: AsyncSession, eco: str, room: str, person: str) -> list[str]:
    """Record ``person`` in ``room``; return the others already there (at most ROOM_LIMIT)."""
    if await s.get(Participant, (eco, room, person)) is not None:
        return []
    others = await s.scalars(
        select(Participant.person)
        .where(Participant.eco == eco, Participant.room == room)
        .limit(ROOM_LIMIT)
    )
    found = list(others)
    s.add(Participant(eco=eco, room=room, person=person))
    return found


async def changes_since(s: AsyncSession, seq: int, limit: int = 5000) -> Sequence[IndexChange]:
    rows = await s.scalars(
        select(IndexChange).where(IndexChange.seq > seq).order_by(IndexChange.seq).limit(limit)
    )
    return rows.all()


async def last_change(s: AsyncSession) -> int:
    return int((await s.scalar(select(func.max(IndexChange.seq)))) or 0)


async def mark_rebuild(s: AsyncSession, eco: str) -> None:
    s.add(IndexChange(eco=eco, kind="rebuild", key=""))


async def persons(
    s: AsyncSession, eco: str | None = None, ids: Sequence[str] = ()
) -> Sequence[Person]:
    q = select(Person)
    if eco is not None:
        q = q.where(Person.eco == eco)
    if ids:
        q = q.where(Person.person.in_(ids))
    return (await s.scalars(q)).all()


async def companies(
    s: AsyncSession, eco: str | None = None, ids: Sequence[str] = ()
) -> Sequence[Company]:
    q = select(Company)
    if eco is not None:
        q = q.where(Company.eco == eco)
    if ids:
        q = q.where(Company.partner.in_(ids))
    return (await s.scalars(q)).all()


async def ties(s: AsyncSession, eco: str | None = None) -> Sequence[SocialEdge]:
    q = select(SocialEdge) if eco is None else select(SocialEdge).where(SocialEdge.eco == eco)
    return (await s.scalars(q)).all()


async def tie(s: AsyncSession, eco: str, a: str, b: str) -> SocialEdge | None:
    return await s.get(SocialEdge, (eco, a, b))


async def clear_signals(s: AsyncSession) -> None:
    for model in (Person, Company, SocialEdge, Participant, HelpGiven, ForumThread):
        await s.execute(delete(model))


# ---------------------------------------------------------------- introductions


async def add_intro(s: AsyncSession, row: IntroductionRow) -> None:
    s.add(row)
    await s.flush()


async def intro(
    s: AsyncSession, eco: str, intro_id: str, lock: bool = False
) -> IntroductionRow | None:
    """The introduction ``intro_id`` if ``eco`` is one of its sides (a's or, across an
    alliance, b's ecosystem)."""
    side = or_(IntroductionRow.eco == eco, IntroductionRow.b_eco == eco)
    q = select(IntroductionRow).where(IntroductionRow.id == intro_id, side)
    if lock:
        q = q.with_for_update()
    return (await s.scalars(q)).first()


async def save_intro(s: AsyncSession, row: IntroductionRow, **values: object) -> None:
    values["updated_at"] = now()
    await s.execute(update(IntroductionRow).where(IntroductionRow.id == row.id).values(**values))
    for k, v in values.items():
        setattr(row, k, v)


async def intros(
    s: AsyncSession,
    eco: str,
    person: str | None = None,
    status: str | None = None,
    hide: Sequence[str] = (),
    limit: int = 10_000,
) -> Sequence[IntroductionRow]:
    q = select(IntroductionRow).where(IntroductionRow.eco == eco, IntroductionRow.b_eco.is_(None))
    if person is not None:
        q = q.where(or_(IntroductionRow.a == person, IntroductionRow.b == person))
    if status is not None:
        q = q.where(IntroductionRow.status == status)
    if hide:
        q = q.where(IntroductionRow.status.not_in(hide))
    q = q.order_by(IntroductionRow.created_at.desc(), IntroductionRow.id).limit(limit)
    return (await s.scalars(q)).all()


async def pair_intros(s: AsyncSession, eco: str, a: str, b: str) -> Sequence[IntroductionRow]:
    q = select(IntroductionRow).where(
        IntroductionRow.eco == eco,
        or_(
            (IntroductionRow.a == a) & (IntroductionRow.b == b),
            (IntroductionRow.a == b) & (IntroductionRow.b == a),
        ),
    )
    return (await s.scalars(q)).all()


async def audit(s: AsyncSession, row: AuditRow) -> None:
    s.add(row)


async def history(s: AsyncSession, intro_id: str) -> Sequence[AuditRow]:
    q = select(AuditRow).where(AuditRow.introduction == intro_id).order_by(AuditRow.seq)
    return (await s.scalars(q)).all()


# ---------------------------------------------------------------- introductions across


def _mine(eco: str, person: str) -> ColumnElement[bool]:
    """Introductions of ``person`` of ``eco``, within it or across an alliance."""
    t = IntroductionRow
    return or_(
        and_(t.eco == eco, t.a == person),
        and_(t.eco == eco, t.b == person, t.b_eco.is_(None)),
        and_(t.b_eco == eco, t.b == person),
    )


def _curated_by(eco: str) -> ColumnElement[bool]:
    """Introductions the brokers of ``eco`` see: their ecosystem's, and those across
    whose terms name them as curators."""
    t = IntroductionRow
    return or_(t.eco == eco, and_(t.b_eco == eco, t.curators.in_(("owner", "both"))))


async def inbox(
    s: AsyncSession,
    eco: str,
    person: str | None,
    curator: bool,
    status: str | None,
    hide: Sequence[str],
    limit: int,
) -> Sequence[IntroductionRow]:
    """A person's introductions (``curator``: all a broker of ``eco`` sees, or one
    person's of them), newest first; people never see one still awaiting curators."""
    t = IntroductionRow
    q = select(t)
    if curator:
        q = q.where(_curated_by(eco))
        if person is not None:
            q = q.where(or_(t.a == person, t.b == person))
    else:
        assert person is not None
        q = q.where(_mine(eco, person), or_(t.status != "proposed", t.awaiting == ""))
    if status is not None:
        q = q.where(t.status == status)
    if hide:
        q = q.where(t.status.not_in(hide))
    q = q.order_by(t.created_at.desc(), t.id).limit(limit)
    return (await s.scalars(q)).all()


async def across_of(s: AsyncSession, eco: str, person: str) -> Sequence[IntroductionRow]:
    """``person``'s introductions across alliances (whoever proposed them)."""
    t = IntroductionRow
    q = select(t).where(
        or_(
            and_(t.eco == eco, t.a == person, t.b_eco.is_not(None)),
            and_(t.b_eco == eco, t.b == person),
        )
    )
    return (await s.scalars(q)).all()


async def pair_across(
    s: AsyncSession, eco: str, a: str, b_eco: str, b: str
) -> Sequence[IntroductionRow]:
    t = IntroductionRow
    q = select(t).where(
        or_(
            and_(t.eco == eco, t.a == a, t.b_eco == b_eco, t.b == b),
            and_(t.eco == b_eco, t.a == b, t.b_eco == eco, t.b == a),
        )
    )
    return (await s.scalars(q)).all()


async def open_across(
    s: AsyncSession, x: str, y: str, statuses: Sequence[str]
) -> Sequence[IntroductionRow]:
    """The introductions between ecosystems ``x`` and ``y`` still in ``statuses``."""
    t = IntroductionRow
    q = select(t).where(
        t.status.in_(statuses),
        or_(and_(t.eco == x, t.b_eco == y), and_(t.eco == y, t.b_eco == x)),
    )
    return (await s.scalars(q.with_for_update())).all()
