"""Request and reply models of the collaboration service (forums, workspaces, notifications).

Requests carry their path parameters as fields (``eco``, ``thread``, ...), so policies bind
them; query parameters and the JSON body fill the other fields.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from contracts.timestamps import Timestamp

_CONTROL = {chr(c) for c in range(32)} - {"\n", "\r", "\t"}


def _no_control(value: str) -> str:
    if any(ch in _CONTROL for ch in value):
        raise ValueError("control characters are not allowed")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control),
]
Body = Annotated[
    str,
    StringConstraints(min_length=1, max_length=20_000),
    AfterValidator(_no_control),
    AfterValidator(_not_blank),
]
Reason = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_control)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Person = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_no_control)
]
Limit = Annotated[int, Field(ge=1, le=100)]
Offset = Annotated[int, Field(ge=0, le=100_000)]
Mentions = Annotated[list[Person], Field(max_length=50)]
# A row id of a serial key: within what every database's (64-bit) integer holds.
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class EcoRequest(BaseModel):
    eco: str


# ---------------------------------------------------------------- forums


class CreateCategoryRequest(EcoRequest):
    slug: Slug
    name: Title
    description: Reason = ""


class CategoryView(BaseModel):
    slug: str
    name: str
    description: str
    thread_count: int = 0
    created_at: Timestamp


class CategoryList(BaseModel):
    items: list[CategoryView]


class ListThreadsRequest(EcoRequest):
    category: Slug
    limit: Limit = 50
    offset: Offset = 0


class CreateThreadRequest(EcoRequest):
    category: Slug
    title: Title
    body: Body
    mentions: Mentions = Field(default_factory=list, description="subject ids to mention")


class ThreadRequest(EcoRequest):
    thread: Ref


class GetThreadRequest(ThreadRequest):
    limit: Limit = 100
    offset: Offset = 0


class EditThreadRequest(ThreadRequest):
    title: Title | None = None
    body: Body | None = None
    expected_version: int | None = Field(default=None, description="refuse if it changed since")


class CreatePostRequest(ThreadRequest):
    body: Body
    mentions: Mentions = Field(default_factory=list)


class PostRequest(EcoRequest):
    post: Ref


class EditPostRequest(PostRequest):
    body: Body
    expected_version: int | None = None


class HideThreadRequest(ThreadRequest):
    hidden: bool = True
    reason: Reason = ""


class HidePostRequest(PostRequest):
    hidden: bool = True
    reason: Reason = ""


class LockThreadRequest(ThreadRequest):
    locked: bool = True
    reason: Reason = ""


class MoveThreadRequest(ThreadRequest):
    category: Slug
    reason: Reason = ""


class ModerationLogRequest(EcoRequest):
    limit: Limit = 50
    offset: Offset = 0


class PostView(BaseModel):
    id: str
    thread: str
    author: str
    author_partner: str
    author_name: str = ""
    body: str
    html: str
    mentions: list[str]
    version: int
    hidden: bool
    agree_count: int = 0
    agreed: bool = False
    created_at: Timestamp
    edited_at: Timestamp | None = None


class ThreadSummary(BaseModel):
    id: str
    category: str | None
    workspace: str | None
    title: str
    author: str
    author_partner: str
    author_name: str = ""
    hidden: bool
    locked: bool
    post_count: int
    version: int
    created_at: Timestamp
    last_activity_at: Timestamp


class ThreadView(ThreadSummary):
    body: str
    html: str
    mentions: list[str]
    agree_count: int = 0
    agreed: bool = False
    edited_at: Timestamp | None = None
    posts: list[PostView] = Field(default_factory=list)


class ThreadList(BaseModel):
    items: list[ThreadSummary]
    next_offset: int | None = None


class Revision(BaseModel):
    version: int
    title: str
    body: str
    html: str
    editor: str
    at: Timestamp


class History(BaseModel):
    content_id: str
    kind: Literal["thread", "post", "note"]
    revisions: list[Revision]


class AgreeReply(BaseModel):
    content_id: str
    agree_count: int
    agreed: bool


class ModerationEntry(BaseModel):
    id: int
    actor: str
    actor_partner: str | None
    action: str
    target_kind: str
    target: str
    reason: str
    detail: dict[str, Any] = Field(default_factory=dict)
    at: Timestamp


class ModerationLog(BaseModel):
    items: list[ModerationEntry]


# ---------------------------------------------------------------- notifications


NotificationKind = Literal["mention", "reply", "introduction", "broker", "verification"]
NOTIFICATION_KINDS: tuple[str, ...] = ("mention", "reply", "introduction", "broker", "verification")


class ListNotificationsRequest(EcoRequest):
    unread_only: bool = False
    limit: Limit = 50
    after: Annotated[int, Field(ge=0, le=2**62)] | None = Field(
        default=None, description="only notifications with a greater id (catching up a stream)"
    )


class MentionSuggestionsRequest(EcoRequest):
    q: str = Field(
        min_length=1, max_length=64, description="the start of a handle, or part of a name"
    )
    limit: Annotated[int, Field(ge=1, le=20)] = 8


class MentionCandidate(BaseModel):
    person: Person
    handle: str = Field(description="what to write after @ to mention this person")
    name: str
    partner: str


class MentionSuggestions(BaseModel):
    items: list[MentionCandidate]


class MarkReadRequest(EcoRequest):
    ids: list[RowId] = Field(
        default_factory=list, max_length=500, description="empty: mark all as read"
    )


class NotificationView(BaseModel):
    id: int
    kind: NotificationKind
    action: str = Field(
        description="what happened: mentioned, replied, proposed, approved, rejected, "
        "accepted, declined, connected, withdrawn, verified, unverified"
    )
    actor: str
    content_kind: Literal["thread", "post", "note", "introduction", "person", "company"]
    content_id: str
    thread: str | None
    workspace: str | None
    excerpt: str
    read: bool
    created_at: Timestamp


class NotificationList(BaseModel):
    items: list[NotificationView]
    unread: int


class NotificationPreferences(BaseModel):
    """Which kinds of notification a person receives (a kind turned off is not recorded)."""

    kinds: dict[NotificationKind, bool]


class SetNotificationPreferences(EcoRequest):
    kinds: dict[NotificationKind, bool] = Field(
        max_length=len(NOTIFICATION_KINDS), description="the kinds to turn on (true) or off"
    )


# ---------------------------------------------------------------- workspaces


class MemberRef(BaseModel):
    person: Person = Field(description="subject id (or handle) of a person of this ecosystem")
    partner: Ref | None = Field(default=None, description="if given, must be the person's partner")


class CreateWorkspaceRequest(EcoRequest):
    title: Title
    description: Reason = ""
    members: Annotated[list[MemberRef], Field(min_length=1, max_length=50)]


class WorkspaceRequest(EcoRequest):
    workspace: Ref


class DirectConversationRequest(EcoRequest):
    person: Person = Field(description="subject id (or handle) of the person to talk to")


class AddMemberRequest(WorkspaceRequest, MemberRef):
    pass


class RemoveMemberRequest(WorkspaceRequest):
    person: Person


class MemberView(BaseModel):
    person: str
    partner: str
    name: str = ""
    added_by: str
    joined_at: Timestamp
    ecosystem: str | None = Field(
        default=None,
        description="the member's ecosystem, in a workspace across an alliance (none: a "
        "workspace of one ecosystem)",
    )


class WorkspaceView(BaseModel):
    id: str
    title: str
    description: str
    created_by: str
    introduction: str | None
    partners: list[str]
    members: list[MemberView]
    created_at: Timestamp
    direct: bool = Field(
        default=False, description="a direct conversation of two people (it stays two)"
    )


class WorkspaceList(BaseModel):
    items: list[WorkspaceView]


class WsListThreadsRequest(WorkspaceRequest):
    limit: Limit = 50
    offset: Offset = 0


class WsCreateThreadRequest(WorkspaceRequest):
    title: Title
    body: Body
    mentions: Mentions = Field(default_factory=list)


class WsThreadRequest(WorkspaceRequest):
    thread: Ref
    limit: Limit = 100
    offset: Offset = 0


class WsEditThreadRequest(WorkspaceRequest):
    thread: Ref
    title: Title | None = None
    body: Body | None = None
    expected_version: int | None = None


class WsCreatePostRequest(WorkspaceRequest):
    thread: Ref
    body: Body
    mentions: Mentions = Field(default_factory=list)


class CreateNoteRequest(WorkspaceRequest):
    title: Title
    body: Body
    mentions: Mentions = Field(default_factory=list)


class NoteRequest(WorkspaceRequest):
    note: Ref


class EditNoteRequest(NoteRequest):
    title: Title | None = None
    body: Body | None = None
    expected_version: int | None = None


class NoteView(BaseModel):
    id: str
    workspace: str
    title: str
    body: str
    html: str
    author: str
    author_partner: str
    mentions: list[str]
    version: int
    edited_by: str | None = None
    created_at: Timestamp
    edited_at: Timestamp | None = None


class NoteList(BaseModel):
    items: list[NoteView]


TaskStatus = Literal["open", "doing", "done"]


class CreateTaskRequest(WorkspaceRequest):
    title: Title
    assignee: Person | None = None
    due: date | None = None


class TaskRequest(WorkspaceRequest):
    task: Ref
    title: Title | None = None
    status: TaskStatus | None = None
    assignee: (
        Annotated[str, StringConstraints(max_length=255), AfterValidator(_no_control)] | None
    ) = Field(default=None, description='a member, or "" to unassign')
    due: date | None = None


class ListTasksRequest(WorkspaceRequest):
    status: TaskStatus | None = None


class TaskView(BaseModel):
    id: str
    workspace: str
    title: str
    status: TaskStatus
    assignee: str | None
    due: date | None
    created_by: str
    created_at: Timestamp
    updated_at: Timestamp


class TaskList(BaseModel):
    items: list[TaskView]


# ---------------------------------------------------------------- search

SearchKind = Literal["thread", "post", "note"]
Query = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_no_control),
]


class SearchContentRequest(EcoRequest):
    q: Query = Field(description="words that must all appear (case-insensitive, literally)")
    kind: SearchKind | None = Field(
        default=None, description="one kind, to page through it; none: a page of each kind"
    )
    page: int = Field(default=1, ge=1, le=1000)
    page_size: int = Field(default=10, ge=1, le=50)


class ContentHit(BaseModel):
    kind: SearchKind
    id: str
    thread: str | None = Field(description="the thread (a thread's own id, a post's thread)")
    workspace: str | None = Field(description="set for workspace content")
    category: str | None = Field(description="set for forum content")
    title: str = Field(description="the thread's or note's title (a post: its thread's)")
    excerpt: str = Field(description="plain text around the first matched word")
    author: str
    author_name: str = ""
    created_at: Timestamp


class ContentGroup(BaseModel):
    kind: SearchKind
    total: int = Field(description="how many of this kind the caller may see match")
    items: list[ContentHit]


class ContentSearchResults(BaseModel):
    words: list[str] = Field(description="the words searched for (to highlight)")
    page: int
    page_size: int
    groups: list[ContentGroup]
