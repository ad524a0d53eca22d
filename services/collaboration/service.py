"""What every part of the collaboration logic shares: the caller, ids, people, mentions,
notifications and events.

The operations live in ``forums`` (categories, threads, moderation, notifications) and
``workspaces`` (private spaces, notes, tasks), built on ``content`` (writing, editing
with history, agreeing, who may see what) and ``views`` (replies); ``consumers`` handles
the events this service reads. Each operation runs in one transaction and adds its
events to the outbox in that transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims, Role
from contracts.envelope import EventBase
from contracts.v1.collaboration import (
    ContentCreated,
    ContentData,
    ContentEdited,
    ContentHidden,
)
from mesh.db import Database
from mesh.outbox import Outbox
from services.collaboration import markdown
from services.collaboration import repository as repo
from services.collaboration.models import NoteRow, PersonRow, PostRow, ThreadRow

Kind = Literal["thread", "post", "note"]
ContentEvent = type[ContentCreated] | type[ContentEdited] | type[ContentHidden]


@dataclass
class Deps:
    """What the logic needs from the process: its database and outbox."""

    db: Database
    outbox: Outbox
    people_seen: dict[tuple[str, str], tuple[tuple[str, str | None, str], str]] = field(
        default_factory=dict
    )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work, in the process's line of writers (:meth:`Database.writing`:
        on SQLite one at a time, in the same line as the outbox relay's marks)."""
        async with self.db.writing(), self.db.transaction() as session:
            yield session


@dataclass(frozen=True)
class Who:
    """The verified caller, as the logic needs it."""

    sub: str
    eco: str
    partner: str
    moderator: bool
    claims: Claims

    @classmethod
    def of(cls, claims: Claims) -> Who:
        return cls(
            sub=claims.sub,
            eco=claims.eco,
            partner=claims.partner or "",
            moderator=claims.has_role(Role.BROKER, Role.OPERATOR),
            claims=claims,
        )

    def person(self) -> PersonRow:
        extra = self.claims.model_extra or {}
        handle = extra.get("preferred_username")
        return PersonRow(
            eco=self.eco,
            sub=self.sub,
            partner=self.partner,
            handle=handle if isinstance(handle, str) and handle else None,
            name=str(extra.get("name") or ""),
            updated_at=now(),
        )


def now() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


async def touch(deps: Deps, session: AsyncSession, who: Who) -> str:
    """Remember the caller, so others can mention them and add them to workspaces.

    Returns the caller's display name. A caller found already stored as their token
    says is remembered in-process, so their next writes skip the lookup (people are
    never deleted, so this can only save a no-op)."""
    me = who.person()
    if not who.partner:
        return me.name
    key, claimed = (who.eco, who.sub), (me.partner, me.handle, me.name)
    seen = deps.people_seen.get(key)
    if seen is not None and seen[0] == claimed:
        return seen[1]
    stored, wrote = await repo.upsert_person(session, me)
    if not wrote:
        if len(deps.people_seen) >= 10_000:
            deps.people_seen.clear()
        deps.people_seen[key] = (claimed, stored.name)
    return stored.name


async def resolve_mentions(
    session: AsyncSession,
    eco: str,
    text: str,
    explicit: Iterable[str],
    allowed: set[str] | None = None,
) -> list[str]:
    """Subject ids mentioned by ``@handle`` in ``text`` plus ``explicit`` ids.

    ``allowed`` (workspace members) drops everyone else, so a mention never tells an
    outsider that private content exists.
    """
    refs = markdown.handles(text)
    found = await repo.find_people(session, eco, refs)
    by_ref = {ref: sub for ref in refs if (sub := unique_match(found, ref))}
    subs = list(dict.fromkeys([*explicit, *(by_ref[r] for r in refs if r in by_ref)]))
    return [s for s in subs if allowed is None or s in allowed]


def unique_match(people: Iterable[PersonRow], ref: str) -> str | None:
    """The subject id ``ref`` names: a subject id first, else a handle only one person has."""
    candidates = list(people)
    if any(p.sub == ref for p in candidates):
        return ref
    by_handle = [p.sub for p in candidates if p.handle == ref]
    return by_handle[0] if len(by_handle) == 1 else None


def content_data(
    row: ThreadRow | PostRow | NoteRow,
    kind: Kind,
    thread: str | None,
    workspace: str | None,
    audience: list[str],
) -> ContentData:
    return ContentData(
        content_id=row.id,
        kind=kind,
        author=row.author,
        author_partner=row.author_partner,
        thread=thread,
        workspace=workspace,
        audience_partners=audience,
        title=getattr(row, "title", "") if kind != "post" else "",
        text=row.body,
        mentions=list(row.mentions or []),
        hidden=bool(getattr(row, "hidden", False)),
    )


async def emit(
    deps: Deps,
    session: AsyncSession,
    event: ContentEvent,
    data: ContentData,
    eco: str,
) -> EventBase:
    """Add a content event to the outbox, in the caller's transaction."""
    evt = event(
        ecosystem=eco, partner=data.author_partner or None, subject=data.content_id, data=data
    )
    await deps.outbox.add(session, evt)
    return evt
