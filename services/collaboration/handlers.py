"""NATS edge of the collaboration service: each operation's handler ``fn(who, req)``, where
``who`` is the service's view of the verified claims; events go to the consumers module."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.envelope import EventBase
from contracts.policy import Operation
from contracts.v1 import collaboration as c
from mesh.runtime import ServiceRuntime
from mesh.service import routed
from services.collaboration import consumers, conversations, search, stats
from services.collaboration.forums import Forums
from services.collaboration.push import DECLARED, Pusher
from services.collaboration.service import Deps, Who
from services.collaboration.settings import CollaborationSettings
from services.collaboration.workspaces import Workspaces

Logic = Callable[[Who, Any], Awaitable[BaseModel]]


def routes(forums: Forums, spaces: Workspaces) -> dict[Operation, Logic]:
    return {
        c.CREATE_CATEGORY: forums.create_category,
        c.LIST_CATEGORIES: forums.list_categories,
        c.LIST_THREADS: forums.list_threads,
        c.CREATE_THREAD: forums.create_thread,
        c.GET_THREAD: forums.get_thread,
        c.EDIT_THREAD: forums.edit_thread,
        c.THREAD_HISTORY: forums.thread_history,
        c.AGREE_THREAD: partial(forums.agree_thread, on=True),
        c.UNAGREE_THREAD: partial(forums.agree_thread, on=False),
        c.CREATE_POST: forums.create_post,
        c.EDIT_POST: forums.edit_post,
        c.POST_HISTORY: forums.post_history,
        c.AGREE_POST: partial(forums.agree_post, on=True),
        c.UNAGREE_POST: partial(forums.agree_post, on=False),
        c.HIDE_THREAD: forums.hide_thread,
        c.HIDE_POST: forums.hide_post,
        c.LOCK_THREAD: forums.lock_thread,
        c.MOVE_THREAD: forums.move_thread,
        c.MODERATION_LOG: forums.moderation_log,
        c.LIST_NOTIFICATIONS: forums.notifications,
        c.MARK_READ: forums.mark_read,
        c.NOTIFICATION_PREFERENCES: forums.preferences,
        c.SET_NOTIFICATION_PREFERENCES: forums.set_preferences,
        c.MENTION_SUGGESTIONS: forums.mention_suggestions,
        c.CREATE_WORKSPACE: spaces.create,
        c.LIST_WORKSPACES: spaces.list,
        c.GET_WORKSPACE: spaces.get,
        c.DIRECT_CONVERSATION: lambda who, req: conversations.open_direct(spaces.deps, who, req),
        c.ADD_MEMBER: spaces.add_member,
        c.REMOVE_MEMBER: spaces.remove_member,
        c.WS_LIST_THREADS: spaces.list_threads,
        c.WS_CREATE_THREAD: spaces.create_thread,
        c.WS_GET_THREAD: spaces.get_thread,
        c.WS_EDIT_THREAD: spaces.edit_thread,
        c.WS_CREATE_POST: spaces.create_post,
        c.CREATE_NOTE: spaces.create_note,
        c.LIST_NOTES: spaces.list_notes,
        c.GET_NOTE: spaces.get_note,
        c.EDIT_NOTE: spaces.edit_note,
        c.NOTE_HISTORY: spaces.note_history,
        c.CREATE_TASK: spaces.create_task,
        c.LIST_TASKS: spaces.list_tasks,
        c.UPDATE_TASK: spaces.update_task,
        c.SEARCH_CONTENT: lambda who, req: search.content(forums.deps, who, req),
        c.POST_TIMELINE: lambda who, req: stats.post_timeline(forums.deps, who, req),
    }


def register(rt: ServiceRuntime) -> None:
    deps = Deps(rt.db, rt.outbox)
    # A lost uniqueness race (IntegrityError) becomes a 409 in the service base.
    rt.endpoints(routed(routes(Forums(deps), Workspaces(deps)), caller=Who.of))

    async def on_event(session: AsyncSession, event: EventBase) -> None:
        await consumers.handle(deps, session, event)

    rt.consume(consumers.DURABLE, consumers.SUBJECTS, on_event)

    settings = rt.settings
    assert isinstance(settings, CollaborationSettings)
    pusher = Pusher(deps, settings)
    rt.endpoints(routed(pusher.routes(), caller=Who.of))
    rt.consume(DECLARED.durable, DECLARED.filter_subjects, pusher.notification_added)
    rt.background("push", pusher.run)
