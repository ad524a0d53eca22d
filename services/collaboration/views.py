"""Replies built from rows: threads with their posts, posts, histories, lists."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1 import collaboration_models as m
from services.collaboration import markdown
from services.collaboration import repository as repo
from services.collaboration.models import PostRow, ThreadRow
from services.collaboration.service import Kind, Who


async def history(session: AsyncSession, content_id: str, kind: Kind) -> m.History:
    rows = await repo.revisions(session, content_id)
    return m.History(
        content_id=content_id,
        kind=kind,
        revisions=[
            m.Revision(
                version=r.version,
                title=r.title,
                body=r.body,
                html=markdown.render(r.body),
                editor=r.editor,
                at=r.created_at,
            )
            for r in rows
        ],
    )


def thread_summary(row: ThreadRow, names: dict[str, str]) -> m.ThreadSummary:
    return m.ThreadSummary(
        id=row.id,
        category=row.category,
        workspace=row.workspace,
        title=row.title,
        author=row.author,
        author_partner=row.author_partner,
        author_name=names.get(row.author, ""),
        hidden=row.hidden,
        locked=row.locked,
        post_count=row.post_count,
        version=row.version,
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
    )


def _post_view(
    row: PostRow, names: dict[str, str], counts: dict[str, int], mine: set[str]
) -> m.PostView:
    return m.PostView(
        id=row.id,
        thread=row.thread,
        author=row.author,
        author_partner=row.author_partner,
        author_name=names.get(row.author, ""),
        body=row.body,
        html=row.html,
        mentions=list(row.mentions or []),
        version=row.version,
        hidden=row.hidden,
        agree_count=counts.get(row.id, 0),
        agreed=row.id in mine,
        created_at=row.created_at,
        edited_at=row.edited_at,
    )


def new_post_view(row: PostRow, author_name: str) -> m.PostView:
    """The view of a post just written (nobody has agreed yet): no queries needed."""
    return _post_view(row, {row.author: author_name}, {}, set())


def new_thread_view(row: ThreadRow, author_name: str) -> m.ThreadView:
    names = {row.author: author_name}
    return m.ThreadView(
        **thread_summary(row, names).model_dump(),
        body=row.body,
        html=row.html,
        mentions=list(row.mentions or []),
    )


async def post_view(session: AsyncSession, who: Who, row: PostRow) -> m.PostView:
    names = await repo.people_names(session, row.eco, [row.author])
    counts, mine = await repo.agree_counts(session, [row.id], who.sub)
    return _post_view(row, names, counts, mine)


async def thread_view(
    session: AsyncSession, who: Who, row: ThreadRow, limit: int = 100, offset: int = 0
) -> m.ThreadView:
    viewer = None if who.moderator and row.workspace is None else who.sub
    posts = await repo.posts(session, row.id, viewer, limit, offset)
    names = await repo.people_names(session, row.eco, [row.author, *(p.author for p in posts)])
    counts, mine = await repo.agree_counts(session, [row.id, *(p.id for p in posts)], who.sub)
    return m.ThreadView(
        **thread_summary(row, names).model_dump(),
        body=row.body,
        html=row.html,
        mentions=list(row.mentions or []),
        agree_count=counts.get(row.id, 0),
        agreed=row.id in mine,
        edited_at=row.edited_at,
        posts=[_post_view(p, names, counts, mine) for p in posts],
    )


async def thread_list(
    session: AsyncSession, rows: list[ThreadRow], limit: int, offset: int
) -> m.ThreadList:
    names = await repo.people_names(session, rows[0].eco, [r.author for r in rows]) if rows else {}
    return m.ThreadList(
        items=[thread_summary(r, names) for r in rows],
        next_offset=offset + limit if len(rows) == limit else None,
    )
