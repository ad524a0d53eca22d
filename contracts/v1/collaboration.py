"""Contracts of the collaboration service: operations (with their policies) and events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.claims import Role, Scope
from contracts.envelope import EventBase
from contracts.policy import Operation, Policy
from contracts.subjects import request_subject
from contracts.timeseries import TimeSeries, TimeSeriesQuery
from contracts.v1 import collaboration_models as m


class ContentData(BaseModel):
    """A piece of writing, for consumers that summarise what people write (tag clouds)."""

    content_id: str
    kind: Literal["thread", "post", "note"]
    author: str = Field(description="subject id of the author")
    author_partner: str
    thread: str | None = None
    workspace: str | None = Field(
        default=None, description="set when the content lives in a private workspace"
    )
    audience_partners: list[str] = Field(
        default_factory=list,
        description="for workspace content: the partners whose members may read it",
    )
    title: str = ""
    text: str = Field(description="the plain text (Markdown source) of the content")
    mentions: list[str] = Field(default_factory=list)
    hidden: bool = False


class ContentCreated(EventBase):
    SOURCE: ClassVar[str] = "/services/collaboration"
    type: Literal["pm.v1.collaboration.content_created"] = "pm.v1.collaboration.content_created"
    source: str = SOURCE
    data: ContentData


class ContentEdited(EventBase):
    SOURCE: ClassVar[str] = "/services/collaboration"
    type: Literal["pm.v1.collaboration.content_edited"] = "pm.v1.collaboration.content_edited"
    source: str = SOURCE
    data: ContentData


class ContentHidden(EventBase):
    """Content was hidden (``data.hidden``) or shown again by a moderator.

    Hiding a thread hides its posts from others too: one event per post that is not
    hidden on its own follows the thread's, with the thread's new state.
    """

    SOURCE: ClassVar[str] = "/services/collaboration"
    type: Literal["pm.v1.collaboration.content_hidden"] = "pm.v1.collaboration.content_hidden"
    source: str = SOURCE
    data: ContentData


class WorkspaceMembershipData(BaseModel):
    workspace: str
    person: str
    partner: str
    joined: bool


class WorkspaceMembershipChanged(EventBase):
    SOURCE: ClassVar[str] = "/services/collaboration"
    type: Literal["pm.v1.collaboration.workspace_membership"] = (
        "pm.v1.collaboration.workspace_membership"
    )
    source: str = SOURCE
    data: WorkspaceMembershipData


class NotificationData(BaseModel):
    """A notification as its recipient sees it, with their unread count once it was added."""

    recipient: str = Field(description="subject id of the person notified")
    notification: m.NotificationView
    unread: int


class NotificationAdded(EventBase):
    """A notification was recorded for one person: what live streams deliver to them."""

    SOURCE: ClassVar[str] = "/services/collaboration"
    type: Literal["pm.v1.collaboration.notification_added"] = (
        "pm.v1.collaboration.notification_added"
    )
    source: str = SOURCE
    data: NotificationData


class NotificationsReadData(BaseModel):
    recipient: str
    ids: list[int] = Field(default_factory=list, description="empty: all of them")
    unread: int


class NotificationsRead(EventBase):
    """A person marked notifications read (their other open pages update their count)."""

    SOURCE: ClassVar[str] = "/services/collaboration"
    type: Literal["pm.v1.collaboration.notifications_read"] = (
        "pm.v1.collaboration.notifications_read"
    )
    source: str = SOURCE
    data: NotificationsReadData


@dataclass(frozen=True)
class LiveStream:
    """A long-lived Server-Sent Events route the gateway serves itself, fed from events:
    each event goes only to the streams of its ``data.recipient`` in its ecosystem (the
    token's ``sub`` and ``eco``), never to anyone else."""

    name: str
    path: str
    policy: Policy
    events: tuple[type[EventBase], ...]
    summary: str


MODERATORS = frozenset({Role.BROKER, Role.OPERATOR})
_ECO = "/v1/ecosystems/{eco}"
_T = _ECO + "/forums/threads/{thread}"
_P = _ECO + "/posts/{post}"
_W = _ECO + "/workspaces/{workspace}"


def _op(
    name: str,
    method: str,
    path: str,
    request: type[BaseModel],
    reply: type[BaseModel],
    scope: Scope,
    summary: str,
    roles: frozenset[Role] | None = None,
    status: int = 200,
) -> Operation:
    policy = Policy(scope=scope, roles=roles) if roles else Policy(scope=scope)
    tag = name.split(".")[1]
    return Operation(
        name=name,
        subject=request_subject("collaboration", name.removeprefix("collaboration.")),
        method=method,
        path=path,
        request=request,
        reply=reply,
        policy=policy,
        summary=summary,
        status=status,
        tags=("collaboration", tag),
    )


_R, _WR = Scope.FORUM_READ, Scope.FORUM_WRITE
_WSR, _WSW = Scope.WORKSPACE_READ, Scope.WORKSPACE_WRITE

# fmt: off
# aggregates
POST_TIMELINE = _op(
    "collaboration.stats.posts", "GET", _ECO + "/stats/posts", TimeSeriesQuery, TimeSeries, _R,
    "Forum threads started and replies posted per day or week (hidden ones left out)",
)
# forums
CREATE_CATEGORY = _op(
    "collaboration.forums.create_category", "POST", _ECO + "/forums/categories",
    m.CreateCategoryRequest, m.CategoryView, Scope.ADMIN, "Create a forum category (operators)",
    frozenset({Role.OPERATOR}), 201,
)
LIST_CATEGORIES = _op(
    "collaboration.forums.list_categories", "GET", _ECO + "/forums/categories", m.EcoRequest,
    m.CategoryList, _R, "List the ecosystem's forum categories",
)
LIST_THREADS = _op(
    "collaboration.forums.list_threads", "GET", _ECO + "/forums/categories/{category}/threads",
    m.ListThreadsRequest, m.ThreadList, _R, "List a category's threads, latest activity first",
)
CREATE_THREAD = _op(
    "collaboration.forums.create_thread", "POST", _ECO + "/forums/categories/{category}/threads",
    m.CreateThreadRequest, m.ThreadView, _WR, "Start a thread (Markdown body)", status=201,
)
GET_THREAD = _op(
    "collaboration.forums.get_thread", "GET", _T, m.GetThreadRequest, m.ThreadView, _R,
    "A thread with its posts",
)
EDIT_THREAD = _op(
    "collaboration.forums.edit_thread", "PATCH", _T, m.EditThreadRequest, m.ThreadView, _WR,
    "Edit your thread (history is kept)",
)
THREAD_HISTORY = _op(
    "collaboration.forums.thread_history", "GET", _T + "/history", m.ThreadRequest, m.History, _R,
    "Every version of a thread",
)
AGREE_THREAD = _op(
    "collaboration.forums.agree_thread", "PUT", _T + "/agree", m.ThreadRequest, m.AgreeReply, _WR,
    "Agree with a thread (once per person)",
)
UNAGREE_THREAD = _op(
    "collaboration.forums.unagree_thread", "DELETE", _T + "/agree", m.ThreadRequest, m.AgreeReply,
    _WR, "Withdraw your agreement with a thread",
)
CREATE_POST = _op(
    "collaboration.forums.create_post", "POST", _T + "/posts", m.CreatePostRequest, m.PostView,
    _WR, "Reply to a thread (Markdown body)", status=201,
)
EDIT_POST = _op(
    "collaboration.posts.edit", "PATCH", _P, m.EditPostRequest, m.PostView, _WR,
    "Edit your post (history is kept)",
)
POST_HISTORY = _op(
    "collaboration.posts.history", "GET", _P + "/history", m.PostRequest, m.History, _R,
    "Every version of a post",
)
AGREE_POST = _op(
    "collaboration.posts.agree", "PUT", _P + "/agree", m.PostRequest, m.AgreeReply, _WR,
    "Agree with a post (once per person)",
)
UNAGREE_POST = _op(
    "collaboration.posts.unagree", "DELETE", _P + "/agree", m.PostRequest, m.AgreeReply, _WR,
    "Withdraw your agreement with a post",
)
# moderation
HIDE_THREAD = _op(
    "collaboration.moderation.hide_thread", "POST", _T + "/hide", m.HideThreadRequest,
    m.ThreadSummary, _WR, "Hide or unhide a thread", MODERATORS,
)
HIDE_POST = _op(
    "collaboration.moderation.hide_post", "POST", _P + "/hide", m.HidePostRequest, m.PostView, _WR,
    "Hide or unhide a post", MODERATORS,
)
LOCK_THREAD = _op(
    "collaboration.moderation.lock_thread", "POST", _T + "/lock", m.LockThreadRequest,
    m.ThreadSummary, _WR, "Lock or unlock a thread", MODERATORS,
)
MOVE_THREAD = _op(
    "collaboration.moderation.move_thread", "POST", _T + "/move", m.MoveThreadRequest,
    m.ThreadSummary, _WR, "Move a thread to another category", MODERATORS,
)
MODERATION_LOG = _op(
    "collaboration.moderation.log", "GET", _ECO + "/forums/moderation", m.ModerationLogRequest,
    m.ModerationLog, _R, "The moderation audit log", MODERATORS,
)
# notifications
LIST_NOTIFICATIONS = _op(
    "collaboration.notifications.list", "GET", _ECO + "/notifications", m.ListNotificationsRequest,
    m.NotificationList, _R,
    "My notifications: mentions, replies to my threads, introductions, broker actions, "
    "verifications (newest first)",
)
NOTIFICATION_PREFERENCES = _op(
    "collaboration.notifications.preferences", "GET", _ECO + "/notifications/preferences",
    m.EcoRequest, m.NotificationPreferences, _R, "Which kinds of notification I receive",
)
SET_NOTIFICATION_PREFERENCES = _op(
    "collaboration.notifications.set_preferences", "PUT", _ECO + "/notifications/preferences",
    m.SetNotificationPreferences, m.NotificationPreferences, _R,
    "Turn kinds of notification on or off",
)
NOTIFICATION_STREAM = LiveStream(
    "collaboration.notifications.stream", _ECO + "/notifications/stream", Policy(scope=_R),
    (NotificationAdded, NotificationsRead),
    "My notifications as they happen (text/event-stream; Last-Event-ID catches up)",
)
MENTION_SUGGESTIONS = _op(
    "collaboration.people.mention_suggestions", "GET", _ECO + "/mentions/people",
    m.MentionSuggestionsRequest, m.MentionSuggestions, _R,
    "People whose @handle starts with, or whose name contains, the text typed after @",
)
MARK_READ = _op(
    "collaboration.notifications.mark_read", "POST", _ECO + "/notifications/read",
    m.MarkReadRequest, m.NotificationList, _R, "Mark my notifications as read",
)
# workspaces
CREATE_WORKSPACE = _op(
    "collaboration.workspaces.create", "POST", _ECO + "/workspaces", m.CreateWorkspaceRequest,
    m.WorkspaceView, _WSW, "Open a private workspace with people of two or more partners",
    status=201,
)
LIST_WORKSPACES = _op(
    "collaboration.workspaces.list", "GET", _ECO + "/workspaces", m.EcoRequest, m.WorkspaceList,
    _WSR, "The workspaces I am a member of",
)
GET_WORKSPACE = _op(
    "collaboration.workspaces.get", "GET", _W, m.WorkspaceRequest, m.WorkspaceView, _WSR,
    "A workspace with its members (members only)",
)
DIRECT_CONVERSATION = _op(
    "collaboration.workspaces.direct", "POST", _ECO + "/conversations",
    m.DirectConversationRequest, m.WorkspaceView, _WSW,
    "Open the direct conversation with a colleague or a person you are connected with"
    " (the same one each time)",
)
ADD_MEMBER = _op(
    "collaboration.workspaces.add_member", "POST", _W + "/members", m.AddMemberRequest,
    m.WorkspaceView, _WSW, "Add a person to a workspace (members only)",
)
REMOVE_MEMBER = _op(
    "collaboration.workspaces.remove_member", "DELETE", _W + "/members/{person}",
    m.RemoveMemberRequest, m.WorkspaceView, _WSW,
    "Leave a workspace, or remove a member (its creator)",
)
WS_LIST_THREADS = _op(
    "collaboration.workspaces.list_threads", "GET", _W + "/threads", m.WsListThreadsRequest,
    m.ThreadList, _WSR, "A workspace's threads",
)
WS_CREATE_THREAD = _op(
    "collaboration.workspaces.create_thread", "POST", _W + "/threads", m.WsCreateThreadRequest,
    m.ThreadView, _WSW, "Start a thread in a workspace", status=201,
)
WS_GET_THREAD = _op(
    "collaboration.workspaces.get_thread", "GET", _W + "/threads/{thread}", m.WsThreadRequest,
    m.ThreadView, _WSR, "A workspace thread with its posts",
)
WS_EDIT_THREAD = _op(
    "collaboration.workspaces.edit_thread", "PATCH", _W + "/threads/{thread}",
    m.WsEditThreadRequest, m.ThreadView, _WSW, "Edit your workspace thread",
)
WS_CREATE_POST = _op(
    "collaboration.workspaces.create_post", "POST", _W + "/threads/{thread}/posts",
    m.WsCreatePostRequest, m.PostView, _WSW, "Reply in a workspace thread", status=201,
)
CREATE_NOTE = _op(
    "collaboration.workspaces.create_note", "POST", _W + "/notes", m.CreateNoteRequest, m.NoteView,
    _WSW, "Write a shared note", status=201,
)
LIST_NOTES = _op(
    "collaboration.workspaces.list_notes", "GET", _W + "/notes", m.WorkspaceRequest, m.NoteList,
    _WSR, "A workspace's notes",
)
GET_NOTE = _op(
    "collaboration.workspaces.get_note", "GET", _W + "/notes/{note}", m.NoteRequest, m.NoteView,
    _WSR, "A shared note",
)
EDIT_NOTE = _op(
    "collaboration.workspaces.edit_note", "PATCH", _W + "/notes/{note}", m.EditNoteRequest,
    m.NoteView, _WSW, "Edit a shared note (any member; history is kept)",
)
NOTE_HISTORY = _op(
    "collaboration.workspaces.note_history", "GET", _W + "/notes/{note}/history", m.NoteRequest,
    m.History, _WSR, "Every version of a note",
)
CREATE_TASK = _op(
    "collaboration.workspaces.create_task", "POST", _W + "/tasks", m.CreateTaskRequest, m.TaskView,
    _WSW, "Add a task", status=201,
)
LIST_TASKS = _op(
    "collaboration.workspaces.list_tasks", "GET", _W + "/tasks", m.ListTasksRequest, m.TaskList,
    _WSR, "A workspace's tasks",
)
UPDATE_TASK = _op(
    "collaboration.workspaces.update_task", "PATCH", _W + "/tasks/{task}", m.TaskRequest,
    m.TaskView, _WSW, "Change a task's title, status, assignee or due date",
)
# search
SEARCH_CONTENT = _op(
    "collaboration.search.content", "GET", _ECO + "/search/content", m.SearchContentRequest,
    m.ContentSearchResults, _R,
    "Search forum threads and posts, and the workspace threads, posts and notes I may read"
    " (all words, case-insensitive; hidden content as the forums show it)",
)

OPERATIONS: tuple[Operation, ...] = (
    MENTION_SUGGESTIONS,
    CREATE_CATEGORY,
    LIST_CATEGORIES,
    LIST_THREADS,
    CREATE_THREAD,
    GET_THREAD,
    EDIT_THREAD,
    THREAD_HISTORY,
    AGREE_THREAD,
    UNAGREE_THREAD,
    CREATE_POST,
    EDIT_POST,
    POST_HISTORY,
    AGREE_POST,
    UNAGREE_POST,
    HIDE_THREAD,
    HIDE_POST,
    LOCK_THREAD,
    MOVE_THREAD,
    MODERATION_LOG,
    LIST_NOTIFICATIONS,
    MARK_READ,
    NOTIFICATION_PREFERENCES,
    SET_NOTIFICATION_PREFERENCES,
    CREATE_WORKSPACE,
    LIST_WORKSPACES,
    GET_WORKSPACE,
    DIRECT_CONVERSATION,
    ADD_MEMBER,
    REMOVE_MEMBER,
    WS_LIST_THREADS,
    WS_CREATE_THREAD,
    WS_GET_THREAD,
    WS_EDIT_THREAD,
    WS_CREATE_POST,
    CREATE_NOTE,
    LIST_NOTES,
    GET_NOTE,
    EDIT_NOTE,
    NOTE_HISTORY,
    CREATE_TASK,
    LIST_TASKS,
    UPDATE_TASK,
    SEARCH_CONTENT,
    POST_TIMELINE,
)
# fmt: on
EVENTS: tuple[type[EventBase], ...] = (
    ContentCreated,
    ContentEdited,
    ContentHidden,
    WorkspaceMembershipChanged,
    NotificationAdded,
    NotificationsRead,
)
