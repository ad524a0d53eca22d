"""Queries of content search: threads, posts and notes whose text has every word, limited
to what the caller may read. The visibility rules are those of the forum and workspace
reads (``content.can_see``, ``content.workspace_place``), written as SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from mesh.textsearch import matches_all
from services.collaboration.models import NoteRow, PostRow, ThreadRow


def _seen(row: Any, viewer: str, moderator: bool) -> ColumnElement[bool]:
    """Not hidden, or the viewer's own; everything for a moderator."""
    return true() if moderator else or_(row.hidden.is_(False), row.author == viewer)


def _place(
    row: Any, workspaces: Sequence[str], viewer: str, moderator: bool
) -> ColumnElement[bool]:
    """``row`` (a thread, or a post joined to its thread) in the forums as the viewer sees
    them, or in one of the viewer's workspaces, where moderators have no say and hidden
    content is its author's alone."""
    forum = and_(ThreadRow.workspace.is_(None), _seen(row, viewer, moderator))
    if not workspaces:
        return forum
    return or_(forum, and_(ThreadRow.workspace.in_(workspaces), _seen(row, viewer, False)))


def thread_query(
    eco: str, words: Sequence[str], viewer: str, moderator: bool, workspaces: Sequence[str]
) -> Select[Any]:
    return select(ThreadRow).where(
        ThreadRow.eco == eco,
        matches_all([ThreadRow.title, ThreadRow.body], words),
        _place(ThreadRow, workspaces, viewer, moderator),
    )


def post_query(
    eco: str, words: Sequence[str], viewer: str, moderator: bool, workspaces: Sequence[str]
) -> Select[PostRow, ThreadRow]:
    # a post of a forum thread hidden from the viewer is hidden from it too
    thread_seen = or_(ThreadRow.workspace.is_not(None), _seen(ThreadRow, viewer, moderator))
    return (
        select(PostRow, ThreadRow)
        .join(ThreadRow, ThreadRow.id == PostRow.thread)
        .where(
            PostRow.eco == eco,
            matches_all([PostRow.body], words),
            _place(PostRow, workspaces, viewer, moderator),
            thread_seen,
        )
    )


def note_query(eco: str, words: Sequence[str], workspaces: Sequence[str]) -> Select[Any]:
    where = NoteRow.workspace.in_(workspaces) if workspaces else false()
    return select(NoteRow).where(
        NoteRow.eco == eco, where, matches_all([NoteRow.title, NoteRow.body], words)
    )


async def page(
    session: AsyncSession, query: Select[Any], created: Any, key: Any, limit: int, offset: int
) -> tuple[int, list[Any]]:
    """How many rows ``query`` finds, and one page of them, newest first."""
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.execute(
        query.order_by(created.desc(), key.desc()).limit(limit).offset(offset)
    )
    return int(total or 0), list(rows.all())
