"""Tables of the collaboration service (its own database).

Threads live either in a forum category or in a workspace (exactly one of the two);
posts belong to a thread, notes and tasks to a workspace. Content ids carry a kind
prefix (``t_``, ``p_``, ``n_``) so reactions and revisions can key on the id alone.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mesh.alliances import alliance_table
from mesh.migrate import History

Serial = BigInteger().with_variant(Integer, "sqlite")
Stamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


metadata = Base.metadata
alliances = alliance_table(metadata)  # the projection of identity's alliances (mesh.alliances)


class PersonRow(Base):
    """People this service has met (callers, profile events, introductions)."""

    __tablename__ = "people"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    sub: Mapped[str] = mapped_column(String(255), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64))
    handle: Mapped[str | None] = mapped_column(String(255), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(Stamp)


class CategoryRow(Base):
    __tablename__ = "categories"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Stamp)


class ThreadRow(Base):
    __tablename__ = "threads"
    __table_args__ = (
        Index("ix_threads_category", "eco", "category", "last_activity_at"),
        Index("ix_threads_workspace", "workspace", "last_activity_at"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    category: Mapped[str | None] = mapped_column(String(64))
    workspace: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255))
    author_partner: Mapped[str] = mapped_column(String(64))
    mentions: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    post_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Stamp)
    edited_at: Mapped[datetime | None] = mapped_column(Stamp)
    last_activity_at: Mapped[datetime] = mapped_column(Stamp)


class PostRow(Base):
    __tablename__ = "posts"
    __table_args__ = (Index("ix_posts_thread_order", "thread", "created_at", "id"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    thread: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(255))
    author_partner: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(Stamp)
    edited_at: Mapped[datetime | None] = mapped_column(Stamp)


class NoteRow(Base):
    __tablename__ = "notes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    workspace: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(255))
    author_partner: Mapped[str] = mapped_column(String(64))
    mentions: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    edited_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Stamp)
    edited_at: Mapped[datetime | None] = mapped_column(Stamp)


class RevisionRow(Base):
    """Every version of a thread, post or note (version 1 is the original)."""

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("content_id", "version"),)
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    content_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    editor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Stamp)


class ReactionRow(Base):
    """One "agree" per person and piece of content."""

    __tablename__ = "reactions"
    content_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    person: Mapped[str] = mapped_column(String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(Stamp)


class WorkspaceRow(Base):
    __tablename__ = "workspaces"
    __table_args__ = (
        UniqueConstraint("eco", "introduction"),
        UniqueConstraint("eco", "direct", name="uq_workspaces_eco_direct"),
    )
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(255))
    introduction: Mapped[str | None] = mapped_column(String(64))
    # A direct conversation: the two people's ids, sorted and joined by a space (one per pair).
    direct: Mapped[str | None] = mapped_column(String(520))
    created_at: Mapped[datetime] = mapped_column(Stamp)


class MemberRow(Base):
    __tablename__ = "workspace_members"
    __table_args__ = (Index("ix_members_person", "person"),)
    workspace: Mapped[str] = mapped_column(String(64), primary_key=True)
    person: Mapped[str] = mapped_column(String(255), primary_key=True)
    partner: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(255))
    joined_at: Mapped[datetime] = mapped_column(Stamp)
    # The member's ecosystem (None: the workspace's, as for rows of older releases): a
    # workspace an introduction across an alliance opened has members of both sides.
    eco: Mapped[str | None] = mapped_column(String(64))


class TaskRow(Base):
    __tablename__ = "tasks"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee: Mapped[str | None] = mapped_column(String(255))
    due: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Stamp)
    updated_at: Mapped[datetime] = mapped_column(Stamp)


class NotificationRow(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_recipient", "eco", "recipient", "id"),)
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    eco: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    # What happened (mentioned, replied, approved, connected, verified...): the old
    # release's rows are all mentions, and it leaves the column out of its INSERTs.
    action: Mapped[str] = mapped_column(String(16), server_default="mentioned")
    actor: Mapped[str] = mapped_column(String(255))
    content_kind: Mapped[str] = mapped_column(String(16))
    content_id: Mapped[str] = mapped_column(String(64))
    thread: Mapped[str | None] = mapped_column(String(64))
    workspace: Mapped[str | None] = mapped_column(String(64))
    excerpt: Mapped[str] = mapped_column(String(300))
    read_at: Mapped[datetime | None] = mapped_column(Stamp)
    created_at: Mapped[datetime] = mapped_column(Stamp)


class NotificationMuteRow(Base):
    """A kind of notification a person turned off (no row: on)."""

    __tablename__ = "notification_mutes"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    person: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)


class PushSubscriptionRow(Base):
    """A browser's Web Push subscription (RFC 8030) of one person: where to push and the
    keys to encrypt for it (RFC 8291). ``endpoint_hash`` (SHA-256) keeps one row per URL."""

    __tablename__ = "push_subscriptions"
    __table_args__ = (Index("ix_push_subscriptions_person", "eco", "person"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    eco: Mapped[str] = mapped_column(String(64))
    person: Mapped[str] = mapped_column(String(255))
    endpoint_hash: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint: Mapped[str] = mapped_column(Text)
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(Stamp)


class PushKindRow(Base):
    """A kind of notification a person opted in to have pushed (no row: not pushed)."""

    __tablename__ = "push_kinds"
    eco: Mapped[str] = mapped_column(String(64), primary_key=True)
    person: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)


class ModerationRow(Base):
    """The audit trail of every moderation action."""

    __tablename__ = "moderation_log"
    __table_args__ = (Index("ix_moderation_eco", "eco", "id"),)
    id: Mapped[int] = mapped_column(Serial, primary_key=True, autoincrement=True)
    eco: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))
    actor_partner: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    target_kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Stamp)


# The schema's history: its revisions are in migrations/ beside this module (mesh.migrate).
history = History(
    "collaboration", metadata, Path(__file__).with_name("migrations"), outbox=True, inbox=True
)
