"""Forum operations: categories, threads and posts, agreement, moderation with its audit
log, and the caller's notifications. Each runs in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Scope
from contracts.v1 import collaboration_models as m
from contracts.v1.collaboration import ContentHidden, NotificationsRead, NotificationsReadData
from mesh.errors import conflict, forbidden, not_found
from services.collaboration import content, markdown, notify, views
from services.collaboration import repository as repo
from services.collaboration import workspace_repository as wrepo
from services.collaboration.content import FORUMS
from services.collaboration.models import CategoryRow, ModerationRow, PostRow, ThreadRow
from services.collaboration.service import Deps, Who, content_data, emit, now, touch


class Forums:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # ------------------------------------------------------------ categories

    async def create_category(self, who: Who, req: m.CreateCategoryRequest) -> m.CategoryView:
        row = CategoryRow(
            eco=req.eco,
            slug=req.slug,
            name=req.name,
            description=req.description,
            created_by=who.sub,
            created_at=now(),
        )
        try:
            async with self.deps.transaction() as s:
                if await repo.category(s, req.eco, req.slug) is not None:
                    raise conflict(f"category {req.slug!r} exists already")
                await repo.add(s, row)
        except IntegrityError:
            raise conflict(f"category {req.slug!r} exists already") from None
        return m.CategoryView(
            slug=row.slug, name=row.name, description=row.description, created_at=row.created_at
        )

    async def list_categories(self, who: Who, req: m.EcoRequest) -> m.CategoryList:
        async with self.deps.transaction() as s:
            rows = await repo.categories(s, req.eco)
        return m.CategoryList(
            items=[
                m.CategoryView(
                    slug=c.slug,
                    name=c.name,
                    description=c.description,
                    thread_count=n,
                    created_at=c.created_at,
                )
                for c, n in rows
            ]
        )

    # ------------------------------------------------------------ threads and posts

    async def list_threads(self, who: Who, req: m.ListThreadsRequest) -> m.ThreadList:
        async with self.deps.transaction() as s:
            await self._category(s, req.eco, req.category)
            viewer = None if who.moderator else who.sub
            where = repo.in_category(req.eco, req.category)
            rows = await repo.threads(s, where, viewer, req.limit, req.offset)
            return await views.thread_list(s, rows, req.limit, req.offset)

    async def create_thread(self, who: Who, req: m.CreateThreadRequest) -> m.ThreadView:
        async with self.deps.transaction() as s:
            await self._category(s, req.eco, req.category)
            name = await touch(self.deps, s, who)
            row = await content.create_thread(
                self.deps, s, who, FORUMS, req.category, req.title, req.body, req.mentions
            )
            return views.new_thread_view(row, name)

    async def get_thread(self, who: Who, req: m.GetThreadRequest) -> m.ThreadView:
        async with self.deps.transaction() as s:
            row = await content.forum_thread(s, who, req.eco, req.thread)
            return await views.thread_view(s, who, row, req.limit, req.offset)

    async def edit_thread(self, who: Who, req: m.EditThreadRequest) -> m.ThreadView:
        async with self.deps.transaction() as s:
            row = await content.forum_thread(s, who, req.eco, req.thread)
            content.require_author(row, who)
            self._open_for_edit(row, who)
            await content.edit(self.deps, s, who, row, "thread", FORUMS, req)
            return await views.thread_view(s, who, row)

    async def thread_history(self, who: Who, req: m.ThreadRequest) -> m.History:
        async with self.deps.transaction() as s:
            row = await content.forum_thread(s, who, req.eco, req.thread)
            return await views.history(s, row.id, "thread")

    async def agree_thread(self, who: Who, req: m.ThreadRequest, on: bool) -> m.AgreeReply:
        async with self.deps.transaction() as s:
            row = await content.forum_thread(s, who, req.eco, req.thread)
            return await content.set_agree(s, who, row.id, on)

    async def create_post(self, who: Who, req: m.CreatePostRequest) -> m.PostView:
        html = markdown.render(req.body)  # CPU work, before the writer's turn and row lock
        async with self.deps.transaction() as s:
            # The thread is read by the statement that counts the post on it; a refusal
            # below rolls the count back with the transaction.
            stamp = now()
            thread = await repo.bump_thread_returning(s, req.eco, req.thread, stamp)
            if thread is None or thread.workspace is not None or not content.can_see(thread, who):
                raise not_found("thread")
            name = await touch(self.deps, s, who)
            row = await content.create_post(
                self.deps, s, who, thread, FORUMS, req.body, req.mentions, stamp, html
            )
            return views.new_post_view(row, name)

    async def edit_post(self, who: Who, req: m.EditPostRequest) -> m.PostView:
        async with self.deps.transaction() as s:
            row, thread, place = await content.locate_post(
                s, who, req.eco, req.post, Scope.WORKSPACE_WRITE
            )
            content.require_author(row, who)
            self._open_for_edit(thread, who, row)
            await content.edit(self.deps, s, who, row, "post", place, req)
            return await views.post_view(s, who, row)

    async def post_history(self, who: Who, req: m.PostRequest) -> m.History:
        async with self.deps.transaction() as s:
            row, _, _ = await content.locate_post(s, who, req.eco, req.post, Scope.WORKSPACE_READ)
            return await views.history(s, row.id, "post")

    async def agree_post(self, who: Who, req: m.PostRequest, on: bool) -> m.AgreeReply:
        async with self.deps.transaction() as s:
            row, _, _ = await content.locate_post(s, who, req.eco, req.post, Scope.WORKSPACE_WRITE)
            return await content.set_agree(s, who, row.id, on)

    # ------------------------------------------------------------ moderation

    async def hide_thread(self, who: Who, req: m.HideThreadRequest) -> m.ThreadSummary:
        async with self.deps.transaction() as s:
            row = await content.forum_thread(s, who, req.eco, req.thread)
            if row.hidden != req.hidden:
                await repo.set_flags(s, row, hidden=req.hidden)
                await self._audit(
                    s, who, "hide" if req.hidden else "unhide", "thread", row.id, req.reason
                )
                data = content_data(row, "thread", row.id, None, [])
                await emit(self.deps, s, ContentHidden, data, req.eco)
                await self._cascade_hidden(s, row)
            return views.thread_summary(row, {})

    async def _cascade_hidden(self, s: AsyncSession, thread: ThreadRow) -> None:
        """A hidden thread hides its posts from others too: say so for each post that is
        not hidden on its own, so consumers need not know how threads nest posts."""
        for post in await repo.thread_posts(s, thread.id):
            if not post.hidden:
                data = content_data(post, "post", thread.id, None, [])
                data.hidden = thread.hidden
                await emit(self.deps, s, ContentHidden, data, thread.eco)

    async def hide_post(self, who: Who, req: m.HidePostRequest) -> m.PostView:
        async with self.deps.transaction() as s:
            row, thread, place = await content.locate_post(
                s, who, req.eco, req.post, Scope.WORKSPACE_WRITE
            )
            if place.workspace is not None:
                raise forbidden("workspace content is not moderated by the ecosystem")
            if row.hidden != req.hidden:
                await repo.set_flags(s, row, hidden=req.hidden)
                await repo.count_posts(s, thread.id, -1 if req.hidden else 1)
                await self._audit(
                    s,
                    who,
                    "hide" if req.hidden else "unhide",
                    "post",
                    row.id,
                    req.reason,
                    {"thread": thread.id},  # so the log can link to the post
                )
                data = content_data(row, "post", thread.id, None, [])
                await emit(self.deps, s, ContentHidden, data, req.eco)
            return await views.post_view(s, who, row)

    async def lock_thread(self, who: Who, req: m.LockThreadRequest) -> m.ThreadSummary:
        async with self.deps.transaction() as s:
            row = await content.forum_thread(s, who, req.eco, req.thread)
            if row.locked != req.locked:
                await repo.set_flags(s, row, locked=req.locked)
                action = "lock" if req.locked else "unlock"
                await self._audit(s, who, action, "thread", row.id, req.reason)
            return views.thread_summary(row, {})

    async def move_thread(self, who: Who, req: m.MoveThreadRequest) -> m.ThreadSummary:
        async with self.deps.transaction() as s:
            row = await content.forum_thread(s, who, req.eco, req.thread)
            await self._category(s, req.eco, req.category)
            if row.category != req.category:
                detail = {"from": row.category, "to": req.category}
                await repo.set_flags(s, row, category=req.category)
                await self._audit(s, who, "move", "thread", row.id, req.reason, detail)
            return views.thread_summary(row, {})

    async def moderation_log(self, who: Who, req: m.ModerationLogRequest) -> m.ModerationLog:
        async with self.deps.transaction() as s:
            rows = await repo.moderation_log(s, req.eco, req.limit, req.offset)
        return m.ModerationLog(
            items=[
                m.ModerationEntry(
                    id=r.id,
                    actor=r.actor,
                    actor_partner=r.actor_partner,
                    action=r.action,
                    target_kind=r.target_kind,
                    target=r.target,
                    reason=r.reason,
                    detail=r.detail or {},
                    at=r.created_at,
                )
                for r in rows
            ]
        )

    # ------------------------------------------------------------ notifications

    async def notifications(self, who: Who, req: m.ListNotificationsRequest) -> m.NotificationList:
        async with self.deps.transaction() as s:
            return await self._notifications(s, who, req.eco, req.unread_only, req.limit, req.after)

    async def mark_read(self, who: Who, req: m.MarkReadRequest) -> m.NotificationList:
        """Mark read, and tell the person's open pages their new unread count."""
        async with self.deps.transaction() as s:
            await repo.mark_read(s, req.eco, who.sub, req.ids, now())
            box = await self._notifications(s, who, req.eco, False, 50)
            data = NotificationsReadData(recipient=who.sub, ids=req.ids, unread=box.unread)
            event = NotificationsRead(ecosystem=req.eco, subject=who.sub, data=data)
            await self.deps.outbox.add(s, event)
            return box

    async def preferences(self, who: Who, req: m.EcoRequest) -> m.NotificationPreferences:
        async with self.deps.transaction() as s:
            muted = await repo.muted_kinds(s, req.eco, who.sub)
        return m.NotificationPreferences(kinds={k: k not in muted for k in m.NOTIFICATION_KINDS})  # type: ignore[misc]

    async def set_preferences(
        self, who: Who, req: m.SetNotificationPreferences
    ) -> m.NotificationPreferences:
        async with self.deps.transaction() as s:
            for kind, on in req.kinds.items():
                await repo.set_muted(s, req.eco, who.sub, kind, not on)
        return await self.preferences(who, req)

    async def mention_suggestions(
        self, who: Who, req: m.MentionSuggestionsRequest
    ) -> m.MentionSuggestions:
        """People of the caller's ecosystem to @mention: handles first, then names."""
        async with self.deps.transaction() as s:
            rows = await repo.mention_candidates(s, req.eco, req.q, req.limit)
        return m.MentionSuggestions(
            items=[
                m.MentionCandidate(person=r.sub, handle=r.handle, name=r.name, partner=r.partner)
                for r in rows
                if r.handle
            ]
        )

    # ------------------------------------------------------------ helpers

    async def _notifications(
        self,
        s: AsyncSession,
        who: Who,
        eco: str,
        unread_only: bool,
        limit: int,
        after: int | None = None,
    ) -> m.NotificationList:
        spaces = await wrepo.workspace_ids_of(s, eco, who.sub)
        rows, unread = await repo.notifications(s, eco, who.sub, spaces, unread_only, limit, after)
        return m.NotificationList(items=[notify.view(r) for r in rows], unread=unread)

    @staticmethod
    async def _category(s: AsyncSession, eco: str, slug: str) -> CategoryRow:
        row = await repo.category(s, eco, slug)
        if row is None:
            raise not_found("category")
        return row

    @staticmethod
    def _open_for_edit(thread: ThreadRow, who: Who, post: PostRow | None = None) -> None:
        if thread.hidden or (post is not None and post.hidden):
            raise conflict("hidden content cannot be edited")
        if thread.locked and not who.moderator:
            raise conflict("the thread is locked")

    async def _audit(
        self,
        s: AsyncSession,
        who: Who,
        action: str,
        kind: str,
        target: str,
        reason: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        entry = ModerationRow(
            eco=who.eco,
            actor=who.sub,
            actor_partner=who.partner or None,
            action=action,
            target_kind=kind,
            target=target,
            reason=reason,
            detail=detail or {},
            created_at=now(),
        )
        await repo.add(s, entry)
