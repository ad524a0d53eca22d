"""Contracts of the collaboration service: operations (with their policies) and events."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from contracts.envelope import EventBase
from contracts.policy import Operation


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


OPERATIONS: tuple[Operation, ...] = ()
EVENTS: tuple[type[EventBase], ...] = (
    ContentCreated,
    ContentEdited,
    ContentHidden,
    WorkspaceMembershipChanged,
)
