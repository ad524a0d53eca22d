"""Queries of the forums side: people, categories, threads, posts, revisions, reactions,
notifications and the moderation log. The only place (with ``workspace_repository``)
where SQL lives."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.collaboration.models import (
    CategoryRow,
    ModerationRow,
    NoteRow,
    NotificationMuteRow,
    NotificationRow,
    PersonRow,
    PostRow,
    ReactionRow,
    RevisionRow,
    ThreadRow,
)


async def add(session: AsyncSession, *rows: Any) -> None:
    session.add_all(rows)
    await session.flush()


# ---------------------------------------------------------------- people


async def person(session: AsyncSession, eco: str, sub: str) -> PersonRow | None:
    return await session.get(PersonRow, (eco, sub))


async def find_people(session: AsyncSession, eco: str, refs: Iterable[str]) -> list[PersonRow]:
    """People of ``eco`` whose subject id or handle is one of ``refs``."""
    wanted = list(dict.fromkeys(refs))
    if not wanted:
        return []
    query = select(PersonRow).where(
        PersonRow.eco == eco, or_(PersonRow.sub.in_(wanted), PersonRow.handle.in_(wanted))
    )
    return list((await session.scalars(query)).all())


async def mention_candidates(
    session: AsyncSession, eco: str, text: str, limit: int
) -> list[PersonRow]:
    """People with a handle: those whose handle starts with ``text`` first, then those whose
    name contains it (case-insensitive), each group by handle."""
    needle = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    starts = func.lower(PersonRow.handle).like(f"{needle}%", escape="\\")
    named = func.lower(PersonRow.name).like(f"%{needle}%", escape="\\")
    query = (
        select(PersonRow)
        .where(PersonRow.eco == eco, PersonRow.handle.is_not(None), or_(starts, named))
        .order_by(starts.desc(), PersonRow.handle)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def people_names(session: AsyncSession, eco: str, subs: Iterable[str]) -> dict[str, str]:
    wanted = list(set(subs))
    if not wanted:
        return {}
    query = select(PersonRow.sub, PersonRow.name).where(
        PersonRow.eco == eco, PersonRow.sub.in_(wanted)
    )
    return {sub: name for sub, name in (await session.execute(query)).all()}


async def upsert_person(session: AsyncSession, row: PersonRow) -> tuple[PersonRow, bool]:
    """Insert a person or refresh the fields that are set on ``row``.

    Returns the stored row and whether anything was written."""
    current = await person(session, row.eco, row.sub)
    if current is None:
        await add(session, row)
        return row, True
    changed = False
    for field in ("partner", "handle", "name"):
        value = getattr(row, field)
        if value and getattr(current, field) != value:
            setattr(current, field, value)
            changed = True
    if changed:
        current.updated_at = row.updated_at
        await session.flush()
    return current, changed


# ---------------------------------------------------------------- categories


async def category(session: AsyncSession, eco: str, slug: str) -> CategoryRow | None:
    return await session.get(CategoryRow, (eco, slug))


async def categories(session: AsyncSession, eco: str) -> list[tuple[CategoryRow, int]]:
    counts = (
        select(ThreadRow.category, func.count().label("n"))
        .where(ThreadRow.eco == eco, ThreadRow.category.is_not(None), ThreadRow.hidden.is_(False))
        .group_by(ThreadRow.category)
        .subquery()
    )
    query = (
        select(CategoryRow, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.category == CategoryRow.slug)
        .where(CategoryRow.eco == eco)
        .order_by(CategoryRow.name)
    )
    return [(row, int(n)) for row, n in (await session.execute(query)).all()]


# ---------------------------------------------------------------- threads and posts


async def thread(session: AsyncSession, eco: str, thread_id: str) -> ThreadRow | None:
    row = await session.get(ThreadRow, thread_id)
    return row if row is not None and row.eco == eco else None


async def threads(
    session: AsyncSession,
    where: ColumnElement[bool],
    viewer: str | None,
    limit: int,
    offset: int,
) -> list[ThreadRow]:
    """Threads matching ``where``; hidden ones only for their author (all if viewer is None)."""
    query = select(ThreadRow).where(where)
    if viewer is not None:
        query = query.where(or_(ThreadRow.hidden.is_(False), ThreadRow.author == viewer))
    query = query.order_by(ThreadRow.last_activity_at.desc(), ThreadRow.id).limit(limit)
    return list((await session.scalars(query.offset(offset))).all())


def in_category(eco: str, slug: str) -> ColumnElement[bool]:
    return (ThreadRow.eco == eco) & (ThreadRow.category == slug)


def in_workspace(workspace: str) -> ColumnElement[bool]:
    return ThreadRow.workspace == workspace


async def post(session: AsyncSession, eco: str, post_id: str) -> PostRow | None:
    row = await session.get(PostRow, post_id)
    return row if row is not None and row.eco == eco else None


async def posts(
    session: AsyncSession, thread_id: str, viewer: str | None, limit: int, offset: int
) -> list[PostRow]:
    query = select(PostRow).where(PostRow.thread == thread_id)
    if viewer is not None:
        query = query.where(or_(PostRow.hidden.is_(False), PostRow.author == viewer))
    query = query.order_by(PostRow.created_at, PostRow.id).limit(limit).offset(offset)
    return list((await session.scalars(query)).all())


async def thread_posts(session: AsyncSession, thread_id: str) -> list[PostRow]:
    query = select(PostRow).where(PostRow.thread == thread_id).order_by(PostRow.created_at)
    return list((await session.scalars(query)).all())


async def bump_thread(session: AsyncSession, thread_id: str, at: datetime) -> None:
    await session.execute(
        update(ThreadRow)
        .where(ThreadRow.id == thread_id)
        .values(post_count=ThreadRow.post_count + 1, last_activity_at=at)
    )


async def bump_thread_returning(
    session: AsyncSession, eco: str, thread_id: str, at: datetime
) -> ThreadRow | None:
    """Count one more post on the thread and read it back, in one statement (None: no
    such thread in ``eco``). A caller that then refuses the post raises, and the
    transaction's rollback takes the count back."""
    stmt = (
        update(ThreadRow)
        .where(ThreadRow.id == thread_id, ThreadRow.eco == eco)
        .values(post_count=ThreadRow.post_count + 1, last_activity_at=at)
        .returning(ThreadRow)
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(stmt)).first()


async def count_posts(session: AsyncSession, thread_id: str, delta: int) -> None:
    await session.execute(
        update(ThreadRow)
        .where(ThreadRow.id == thread_id)
        .values(post_count=ThreadRow.post_count + delta)
    )


async def set_flags(session: AsyncSession, row: Any, **values: Any) -> None:
    for key, value in values.items():
        setattr(row, key, value)
    await session.flush()


async def edit(
    session: AsyncSession,
    row: ThreadRow | PostRow | NoteRow,
    expected_version: int,
    values: dict[str, Any],
) -> bool:
    """Apply an edit if ``row`` is still at ``expected_version``; bumps the version."""
    table = type(row)
    result = await session.execute(
        update(table)
        .where(table.id == row.id, table.version == expected_version)
        .values(version=expected_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    await session.refresh(row)
    return True


# ---------------------------------------------------------------- revisions and reactions


async def revisions(session: AsyncSession, content_id: str) -> list[RevisionRow]:
    query = (
        select(RevisionRow)
        .where(RevisionRow.content_id == content_id)
        .order_by(RevisionRow.version)
    )
    return list((await session.scalars(query)).all())


async def agree(session: AsyncSession, content_id: str, person: str, at: datetime) -> None:
    """Record an agreement; a second one by the same person changes nothing."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ReactionRow).values(content_id=content_id, person=person, created_at=at)
    await session.execute(stmt.on_conflict_do_nothing())


async def unagree(session: AsyncSession, content_id: str, person: str) -> None:
    await session.execute(
        delete(ReactionRow).where(
            ReactionRow.content_id == content_id, ReactionRow.person == person
        )
    )


async def agree_counts(
    session: AsyncSession, content_ids: Sequence[str], viewer: str
) -> tuple[dict[str, int], set[str]]:
    """How many agree with each content id, and which of them the viewer agrees with."""
    if not content_ids:
        return {}, set()
    counts = select(ReactionRow.content_id, func.count()).where(
        ReactionRow.content_id.in_(content_ids)
    )
    mine = select(ReactionRow.content_id).where(
        ReactionRow.content_id.in_(content_ids), ReactionRow.person == viewer
    )
    n = {cid: int(c) for cid, c in (await session.execute(counts.group_by(ReactionRow.content_id)))}
    return n, set((await session.scalars(mine)).all())


# ---------------------------------------------------------------- notifications


def _visible(eco: str, recipient: str, workspaces: Any) -> ColumnElement[bool]:
    """The recipient's notifications about content they may still see: not about
    workspaces they are no longer in (``workspaces``: their ids, or a query of them), nor
    about hidden content, nor of kinds they turned off."""
    visible = (NotificationRow.eco == eco) & (NotificationRow.recipient == recipient)
    visible &= NotificationRow.kind.not_in(
        select(NotificationMuteRow.kind).where(
            NotificationMuteRow.eco == eco, NotificationMuteRow.person == recipient
        )
    )
    visible &= or_(NotificationRow.workspace.is_(None), NotificationRow.workspace.in_(workspaces))
    # Correlated (one primary-key probe per notification), not NOT IN over every hidden
    # post: that read the whole posts table per query, a cost growing with the forum.
    visible &= ~exists().where(PostRow.id == NotificationRow.content_id, PostRow.hidden)
    visible &= ~exists().where(ThreadRow.id == NotificationRow.thread, ThreadRow.hidden)
    return visible


async def notifications(
    session: AsyncSession,
    eco: str,
    recipient: str,
    workspaces: Iterable[str],
    unread_only: bool,
    limit: int,
    after: int | None = None,
) -> tuple[list[NotificationRow], int]:
    """The recipient's notifications they may still see (:func:`_visible`), and the unread
    count. ``after``: only those with a greater id."""
    visible = _visible(eco, recipient, list(workspaces))
    query = select(NotificationRow).where(visible)
    if after is not None:
        query = query.where(NotificationRow.id > after)
    if unread_only:
        query = query.where(NotificationRow.read_at.is_(None))
    rows = (await session.scalars(query.order_by(NotificationRow.id.desc()).limit(limit))).all()
    unread = await session.scalar(
        select(func.count()).where(visible, NotificationRow.read_at.is_(None))
    )
    return list(rows), int(unread or 0)


async def unread_count(session: AsyncSession, eco: str, recipient: str, workspaces: Any) -> int:
    """How many of the recipient's visible notifications are unread, in one query
    (``workspaces``: a query of the recipient's workspace ids)."""
    visible = _visible(eco, recipient, workspaces)
    count = await session.scalar(
        select(func.count()).where(visible, NotificationRow.read_at.is_(None))
    )
    return int(count or 0)


async def mark_read(
    session: AsyncSession, eco: str, recipient: str, ids: Sequence[int], at: datetime
) -> None:
    stmt = update(NotificationRow).where(
        NotificationRow.eco == eco,
        NotificationRow.recipient == recipient,
        NotificationRow.read_at.is_(None),
    )
    if ids:
        stmt = stmt.where(NotificationRow.id.in_(list(ids)))
    await session.execute(stmt.values(read_at=at))


async def muted_kinds(session: AsyncSession, eco: str, person: str) -> set[str]:
    query = select(NotificationMuteRow.kind).where(
        NotificationMuteRow.eco == eco, NotificationMuteRow.person == person
    )
    return set((await session.scalars(query)).all())


async def muting(session: AsyncSession, eco: str, people: Iterable[str], kind: str) -> set[str]:
    """Those of ``people`` who turned ``kind`` off."""
    query = select(NotificationMuteRow.person).where(
        NotificationMuteRow.eco == eco,
        NotificationMuteRow.kind == kind,
        NotificationMuteRow.person.in_(list(people)),
    )
    return set((await session.scalars(query)).all())


async def set_muted(session: AsyncSession, eco: str, person: str, kind: str, muted: bool) -> None:
    where = (
        NotificationMuteRow.eco == eco,
        NotificationMuteRow.person == person,
        NotificationMuteRow.kind == kind,
    )
    await session.execute(delete(NotificationMuteRow).where(*where))
    if muted:
        session.add(NotificationMuteRow(eco=eco, person=person, kind=kind))


async def people_of_partner(session: AsyncSession, eco: str, partner: str) -> list[str]:
    query = select(PersonRow.sub).where(PersonRow.eco == eco, PersonRow.partner == partner)
    return list((await session.scalars(query.limit(500))).all())


# ---------------------------------------------------------------- moderation log


async def moderation_log(
    session: AsyncSession, eco: str, limit: int, offset: int
) -> list[ModerationRow]:
    query = (
        select(ModerationRow)
        .where(ModerationRow.eco == eco)
        .order_by(ModerationRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.scalars(query)).all())
