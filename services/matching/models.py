"""Tables of the matching service (its own database)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mesh.alliances import alliance_table
from mesh.migrate import History

ID = 200
_SEQ = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    pass


metadata = Base.metadata
alliances = alliance_table(metadata)  # the projection of identity's alliances (mesh.alliances)


class Person(Base):
    """A person's public profile as the last profile event carried it."""

    __tablename__ = "persons"
    eco: Mapped[str] = mapped_column(String(ID), primary_key=True)
    person: Mapped[str] = mapped_column(String(ID), primary_key=True)
    partner: Mapped[str] = mapped_column(String(ID))
    doc: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Company(Base):
    __tablename__ = "companies"
    eco: Mapped[str] = mapped_column(String(ID), primary_key=True)
    partner: Mapped[str] = mapped_column(String(ID), primary_key=True)
    doc: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SocialEdge(Base):
    """Two people who talk (a < b); weight grows with mentions and shared threads."""

    __tablename__ = "social_edges"
    eco: Mapped[str] = mapped_column(String(ID), primary_key=True)
    a: Mapped[str] = mapped_column(String(ID), primary_key=True)
    b: Mapped[str] = mapped_column(String(ID), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)


class Participant(Base):
    """Someone who wrote in a thread or joined a workspace (``room`` = thread or ws:<id>)."""

    __tablename__ = "participants"
    eco: Mapped[str] = mapped_column(String(ID), primary_key=True)
    room: Mapped[str] = mapped_column(String(ID), primary_key=True)
    person: Mapped[str] = mapped_column(String(ID), primary_key=True)


class Preference(Base):
    """A person's say: suggested to others or not, learned from or not (no row: both)."""

    __tablename__ = "preferences"
    eco: Mapped[str] = mapped_column(String(ID), primary_key=True)
    person: Mapped[str] = mapped_column(String(ID), primary_key=True)
    suggest_me: Mapped[bool] = mapped_column(Boolean)
    learn_from_me: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HelpGiven(Base):
    """A post someone wrote in a thread: help given, one row per post (a retried event counts once).

    Replicas rebuild each person's recency-weighted help from these rows at start and
    follow the ``help`` changes of the others. ``thread`` says whom it helped (the
    thread's author) and on what (its title); ``text`` is the reply, kept only for
    public threads (workspace writing never becomes evidence others see).
    """

    __tablename__ = "help_given"
    eco: Mapped[str] = mapped_column(String(ID), primary_key=True)
    content: Mapped[str] = mapped_column(String(ID), primary_key=True)
    person: Mapped[str] = mapped_column(String(ID))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    thread: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    text: Mapped[str] = mapped_column(Text, default="", server_default="")

    __table_args__ = (Index("ix_help_eco_person", "eco", "person"),)


class ForumThread(Base):
    """A thread someone started: a need voiced by its author, the subject of the replies.

    ``title`` and ``text`` are kept only for public threads (empty for workspace ones).
    """

    __tablename__ = "forum_threads"
    eco: Mapped[str] = mapped_column(String(ID), primary_key=True)
    thread: Mapped[str] = mapped_column(String(ID), primary_key=True)
    author: Mapped[str] = mapped_column(String(ID))
    public: Mapped[bool] = mapped_column(Boolean)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_thread_eco_author", "eco", "author"),)


class IndexChange(Base):
    """Change log the in-memory indexes of every replica follow (seq order)."""

    __tablename__ = "index_changes"
    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    eco: Mapped[str] = mapped_column(String(ID))
    kind: Mapped[str] = mapped_column(
        String(20)
    )  # person | company | social | preference | outcome | help | rebuild
    key: Mapped[str] = mapped_column(String(2 * ID + 1))


class IntroductionRow(Base):
    __tablename__ = "introductions"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    eco: Mapped[str] = mapped_column(String(ID))
    a: Mapped[str] = mapped_column(String(ID))
    a_partner: Mapped[str] = mapped_column(String(ID))
    b: Mapped[str] = mapped_column(String(ID))
    b_partner: Mapped[str] = mapped_column(String(ID))
    status: Mapped[str] = mapped_column(String(20))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    proposed_by: Mapped[str] = mapped_column(String(ID))
    broker: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    a_accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    b_accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    declined_by: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    decline_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    decline_comment: Mapped[str] = mapped_column(Text, default="")
    reasons: Mapped[str] = mapped_column(Text, default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Across an alliance: ``eco`` is a's ecosystem (where it was proposed), ``b_eco`` b's
    # (None: the same); ``curators`` the terms' Curators when curated, ``awaiting`` the
    # ecosystems (space-separated) whose broker must still approve it.
    b_eco: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    curators: Mapped[str | None] = mapped_column(String(16), nullable=True)
    awaiting: Mapped[str] = mapped_column(String(2 * ID + 1), default="", server_default="")

    __table_args__ = (
        Index("ix_intro_eco_a", "eco", "a"),
        Index("ix_intro_eco_b", "eco", "b"),
        Index("ix_intro_eco_status", "eco", "status"),
        Index("ix_intro_b_eco_b", "b_eco", "b"),
    )


class AuditRow(Base):
    """Every transition of an introduction: who, from what, to what, when."""

    __tablename__ = "introduction_audit"
    seq: Mapped[int] = mapped_column(_SEQ, primary_key=True, autoincrement=True)
    introduction: Mapped[str] = mapped_column(String(40), index=True)
    eco: Mapped[str] = mapped_column(String(ID))
    actor: Mapped[str] = mapped_column(String(ID))
    actor_partner: Mapped[str | None] = mapped_column(String(ID), nullable=True)
    roles: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The schema's history: its revisions are in migrations/ beside this module (mesh.migrate).
history = History(
    "matching", metadata, Path(__file__).with_name("migrations"), outbox=True, inbox=True
)
