"""Threads, posts and notes wherever they live (a forum category or a workspace):
who may see them, writing, editing with history, agreeing (replies are built in views)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Scope
from contracts.errors import ErrorCode
from contracts.v1 import collaboration_models as m
from contracts.v1.collaboration import ContentCreated, ContentEdited
from mesh.errors import MeshError, bad_request, conflict, forbidden, not_found
from services.collaboration import allied, markdown, notify
from services.collaboration import repository as repo
from services.collaboration import workspace_repository as wrepo
from services.collaboration.models import NoteRow, PostRow, RevisionRow, ThreadRow
from services.collaboration.service import (
    Deps,
    Kind,
    Who,
    content_data,
    emit,
    new_id,
    now,
    resolve_mentions,
)


@dataclass(frozen=True)
class Place:
    """Where content lives: the forums (``workspace`` None) or one workspace."""

    workspace: str | None = None
    members: frozenset[str] = field(default_factory=frozenset)
    audience: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> set[str] | None:
        return set(self.members) if self.workspace else None


FORUMS = Place()


def can_see(row: ThreadRow | PostRow, who: Who) -> bool:
    return not row.hidden or who.moderator or row.author == who.sub


async def workspace_place(session: AsyncSession, who: Who, eco: str, workspace_id: str) -> Place:
    """The workspace, if the caller is a member of ``eco`` (the route's); otherwise 404
    (no existence leak). A member of an allied ecosystem is refused (403) while the
    alliance is not active."""
    ws = await wrepo.workspace_by_id(session, workspace_id)
    members = await wrepo.members(session, [ws.id]) if ws is not None else []
    if ws is None or not any(
        mb.person == who.sub and allied.member_eco(ws, mb) == eco for mb in members
    ):
        raise not_found("workspace")
    await allied.require_allied(session, ws, eco)
    return Place(
        ws.id, frozenset(mb.person for mb in members), sorted({mb.partner for mb in members})
    )


async def forum_thread(session: AsyncSession, who: Who, eco: str, thread_id: str) -> ThreadRow:
    row = await repo.thread(session, eco, thread_id)
    if row is None or row.workspace is not None or not can_see(row, who):
        raise not_found("thread")
    return row


async def workspace_thread(session: AsyncSession, place: Place, thread_id: str) -> ThreadRow:
    row = await session.get(ThreadRow, thread_id)
    if row is None or place.workspace is None or row.workspace != place.workspace:
        raise not_found("thread")
    return row


async def locate_post(
    session: AsyncSession, who: Who, eco: str, post_id: str, scope: Scope
) -> tuple[PostRow, ThreadRow, Place]:
    """A post with its thread and place, as the caller may see it (404 otherwise).

    Workspace posts need membership first (404), then the workspace scope (403).
    """
    post = await repo.post(session, eco, post_id)
    thread = await repo.thread(session, eco, post.thread) if post is not None else None
    if post is None or thread is None:
        raise not_found("post")
    if thread.workspace is None:
        if not (can_see(thread, who) and can_see(post, who)):
            raise not_found("post")
        return post, thread, FORUMS
    try:
        place = await workspace_place(session, who, eco, thread.workspace)
    except MeshError:
        raise not_found("post") from None
    if not who.claims.has_scope(scope):
        raise forbidden(f"workspace content needs scope {scope.value}")
    return post, thread, place


# ---------------------------------------------------------------- writing


async def create_thread(
    deps: Deps,
    session: AsyncSession,
    who: Who,
    place: Place,
    category: str | None,
    title: str,
    body: str,
    mentions: list[str],
) -> ThreadRow:
    stamp = now()
    mentioned = await resolve_mentions(session, who.eco, body, mentions, place.allowed)
    row = ThreadRow(
        id=new_id("t"),
        eco=who.eco,
        category=category,
        workspace=place.workspace,
        title=title,
        body=body,
        html=markdown.render(body),
        author=who.sub,
        author_partner=who.partner,
        mentions=mentioned,
        version=1,
        hidden=False,
        locked=False,
        post_count=0,
        created_at=stamp,
        last_activity_at=stamp,
    )
    await _created(deps, session, who, row, "thread", row.id, place)
    return row


async def create_post(
    deps: Deps,
    session: AsyncSession,
    who: Who,
    thread: ThreadRow,
    place: Place,
    body: str,
    mentions: list[str],
    bumped_at: datetime | None = None,
    html: str | None = None,
) -> PostRow:
    """A new post on ``thread``; ``bumped_at``: the thread's counters were moved already
    (:func:`repo.bump_thread_returning`) at that time, which is the post's too; ``html``:
    ``body`` rendered already (outside the transaction)."""
    if thread.hidden:
        raise conflict("the thread is hidden")
    if thread.locked and not (who.moderator and place.workspace is None):
        raise conflict("the thread is locked")
    stamp = bumped_at or now()
    mentioned = await resolve_mentions(session, who.eco, body, mentions, place.allowed)
    row = PostRow(
        id=new_id("p"),
        eco=who.eco,
        thread=thread.id,
        author=who.sub,
        author_partner=who.partner,
        body=body,
        html=markdown.render(body) if html is None else html,
        mentions=mentioned,
        version=1,
        hidden=False,
        created_at=stamp,
    )
    if bumped_at is None:
        await repo.bump_thread(session, thread.id, stamp)
    await _created(deps, session, who, row, "post", thread.id, place)
    return row


async def create_note(
    deps: Deps,
    session: AsyncSession,
    who: Who,
    place: Place,
    title: str,
    body: str,
    mentions: list[str],
) -> NoteRow:
    assert place.workspace is not None
    mentioned = await resolve_mentions(session, who.eco, body, mentions, place.allowed)
    row = NoteRow(
        id=new_id("n"),
        eco=who.eco,
        workspace=place.workspace,
        title=title,
        body=body,
        html=markdown.render(body),
        author=who.sub,
        author_partner=who.partner,
        mentions=mentioned,
        version=1,
        created_at=now(),
    )
    await _created(deps, session, who, row, "note", None, place)
    return row


async def _created(
    deps: Deps,
    session: AsyncSession,
    who: Who,
    row: ThreadRow | PostRow | NoteRow,
    kind: Kind,
    thread: str | None,
    place: Place,
) -> None:
    title = row.title if isinstance(row, ThreadRow | NoteRow) else ""
    revision = RevisionRow(
        content_id=row.id,
        version=1,
        title=title,
        body=row.body,
        editor=who.sub,
        created_at=row.created_at,
    )
    await repo.add(session, row, revision)
    await notify.content_written(
        deps, session, row, kind, who.sub, row.mentions, thread, place.workspace, new=True
    )
    data = content_data(row, kind, thread, place.workspace, place.audience)
    await emit(deps, session, ContentCreated, data, who.eco)


async def edit(
    deps: Deps,
    session: AsyncSession,
    who: Who,
    row: ThreadRow | PostRow | NoteRow,
    kind: Kind,
    place: Place,
    req: Any,
) -> None:
    """Apply ``req``'s title/body to ``row``, keeping the old version as a revision."""
    if req.expected_version is not None and req.expected_version != row.version:
        raise MeshError(ErrorCode.PRECONDITION_FAILED, f"it is at version {row.version} now")
    old_title = getattr(row, "title", "")
    values: dict[str, Any] = {}
    title = getattr(req, "title", None)
    if title is not None and title != old_title:
        values["title"] = title
    if req.body is not None and req.body != row.body:
        values["body"] = req.body
        values["html"] = markdown.render(req.body)
    if title is None and req.body is None:
        raise bad_request("nothing to change: give a title or a body")
    if not values:
        return
    before = set(row.mentions or [])
    values["mentions"] = await resolve_mentions(
        session, who.eco, values.get("body", row.body), row.mentions or [], place.allowed
    )
    values["edited_at"] = now()
    if kind == "note":
        values["edited_by"] = who.sub
    if not await repo.edit(session, row, row.version, values):
        raise MeshError(ErrorCode.PRECONDITION_FAILED, "it was edited meanwhile; try again")
    await repo.add(
        session,
        RevisionRow(
            content_id=row.id,
            version=row.version,
            title=getattr(row, "title", ""),
            body=row.body,
            editor=who.sub,
            created_at=values["edited_at"],
        ),
    )
    thread = row.id if kind == "thread" else getattr(row, "thread", None)
    fresh = [p for p in row.mentions if p not in before]
    await notify.content_written(
        deps, session, row, kind, who.sub, fresh, thread, place.workspace, new=False
    )
    data = content_data(row, kind, thread, place.workspace, place.audience)
    await emit(deps, session, ContentEdited, data, who.eco)


def require_author(row: ThreadRow | PostRow, who: Who) -> None:
    if row.author != who.sub:
        raise forbidden("only its author may edit this")


async def set_agree(session: AsyncSession, who: Who, content_id: str, on: bool) -> m.AgreeReply:
    if on:
        await repo.agree(session, content_id, who.sub, now())
    else:
        await repo.unagree(session, content_id, who.sub)
    counts, mine = await repo.agree_counts(session, [content_id], who.sub)
    return m.AgreeReply(
        content_id=content_id, agree_count=counts.get(content_id, 0), agreed=content_id in mine
    )
