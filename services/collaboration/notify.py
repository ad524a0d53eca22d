"""The notification centre: what is recorded for whom, and the event that carries each
notification to its recipient's open pages.

Kinds (``contracts.v1.collaboration_models.NOTIFICATION_KINDS``):

- ``mention``: someone @mentioned me (here, when the content is written);
- ``reply``: someone replied to a thread I started (unless the reply mentions me);
- ``introduction``: an introduction of mine was proposed, accepted or declined by the
  other person, or connected (matching's ``introduction_changed``);
- ``broker``: a broker approved or rejected an introduction of mine;
- ``verification``: a broker verified me or my company, or withdrew it (profile's
  ``verified``).

Nobody is notified of what they did themselves, and a kind a person turned off is not
recorded for them. Every recorded notification is added to the outbox as a
``NotificationAdded`` event in the same transaction, which the gateway's notification
stream delivers to the recipient's open pages. Notifications made from events are written
in the consumer's transaction beside its inbox row: a redelivered or replayed event records
nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1 import collaboration_models as m
from contracts.v1.collaboration import NotificationAdded, NotificationData
from contracts.v1.matching import IntroductionData
from contracts.v1.profile import VerificationData
from services.collaboration import markdown
from services.collaboration import repository as repo
from services.collaboration import workspace_repository as wrepo
from services.collaboration.models import NoteRow, NotificationRow, PostRow, ThreadRow
from services.collaboration.service import Deps, Kind, now

# An introduction's status → (kind, action) of the notification its people get.
INTRO_NOTES = {
    "proposed": ("introduction", "proposed"),
    "approved": ("broker", "approved"),
    "rejected": ("broker", "rejected"),
    "accepted": ("introduction", "accepted"),
    "declined": ("introduction", "declined"),
    "connected": ("introduction", "connected"),
    "withdrawn": ("introduction", "withdrawn"),  # the alliance it crossed ended or paused
}


@dataclass(frozen=True)
class Note:
    """A notification to record for ``recipient``."""

    recipient: str
    kind: str
    action: str
    actor: str
    content_kind: str
    content_id: str
    thread: str | None = None
    workspace: str | None = None
    excerpt: str = ""

    def with_excerpt(self, excerpt: str) -> Note:
        return replace(self, excerpt=excerpt)


def view(row: NotificationRow) -> m.NotificationView:
    return m.NotificationView(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        action=row.action,
        actor=row.actor,
        content_kind=row.content_kind,  # type: ignore[arg-type]
        content_id=row.content_id,
        thread=row.thread,
        workspace=row.workspace,
        excerpt=row.excerpt,
        read=row.read_at is not None,
        created_at=row.created_at,
    )


async def unread(session: AsyncSession, eco: str, person: str) -> int:
    return await repo.unread_count(session, eco, person, wrepo.workspace_ids_query(eco, person))


async def record(
    deps: Deps, session: AsyncSession, eco: str, notes: Iterable[Note]
) -> list[NotificationRow]:
    """Record ``notes`` (one per recipient and kind), skipping what their recipients
    turned off, and announce each one."""
    wanted: dict[tuple[str, str], Note] = {}
    for note in notes:
        if note.recipient != note.actor:
            wanted.setdefault((note.recipient, note.kind), note)
    if not wanted:
        return []
    muted: set[tuple[str, str]] = set()
    for kind in {k for _r, k in wanted}:
        people = [r for r, k in wanted if k == kind]
        muted |= {(p, kind) for p in await repo.muting(session, eco, people, kind)}
    stamp = now()
    rows = [
        NotificationRow(
            eco=eco,
            recipient=n.recipient,
            kind=n.kind,
            action=n.action,
            actor=n.actor,
            content_kind=n.content_kind,
            content_id=n.content_id,
            thread=n.thread,
            workspace=n.workspace,
            excerpt=n.excerpt[:300],
            created_at=stamp,
        )
        for key, n in wanted.items()
        if key not in muted
    ]
    if rows:
        await repo.add(session, *rows)  # flushed: the rows have their ids
    for row in rows:
        data = NotificationData(
            recipient=row.recipient,
            notification=view(row),
            unread=await unread(session, eco, row.recipient),
        )
        event = NotificationAdded(ecosystem=eco, subject=row.recipient, data=data)
        await deps.outbox.add(session, event)
    return rows


async def content_written(
    deps: Deps,
    session: AsyncSession,
    row: ThreadRow | PostRow | NoteRow,
    kind: Kind,
    actor: str,
    mentioned: Sequence[str],
    thread: str | None,
    workspace: str | None,
    *,
    new: bool,
) -> None:
    """Mentions of new (or newly mentioned) people, and, for a new post, its thread's
    author (a reply, unless they are mentioned in it)."""
    excerpt = markdown.excerpt(row.body)
    notes = [
        Note(p, "mention", "mentioned", actor, kind, row.id, thread, workspace, excerpt)
        for p in mentioned
    ]
    if new and kind == "post" and thread is not None:
        started = await session.get(ThreadRow, thread)
        if started is not None and started.author not in mentioned:
            reply = Note(started.author, "reply", "replied", actor, kind, row.id, thread, workspace)
            notes.append(reply.with_excerpt(excerpt))
    await record(deps, session, row.eco, notes)


async def introduction_changed(
    deps: Deps, session: AsyncSession, eco: str, intro: IntroductionData
) -> None:
    """The people of an introduction hear of each step someone else took, each in their
    own ecosystem (across an alliance, ``a_eco`` and ``b_eco`` say whose)."""
    kind, action = INTRO_NOTES[intro.status]
    actor = intro.actor or intro.broker or ""
    people = ((intro.a, intro.a_eco or eco), (intro.b, intro.b_eco or eco))
    for person, home in people:
        other = intro.b if person == intro.a else intro.a
        # Connected: each hears that of the other person (the last to accept included).
        who = other if intro.status == "connected" else actor
        text = intro.note if kind == "broker" or intro.status == "proposed" else ""
        note = Note(person, kind, action, who, "introduction", intro.introduction, excerpt=text)
        await record(deps, session, home, [note])


async def verified(deps: Deps, session: AsyncSession, eco: str, v: VerificationData) -> None:
    """A verified person hears of it; for a company, each of its people this service knows."""
    if v.target_kind == "person":
        people = [v.target]
    else:
        people = await repo.people_of_partner(session, eco, v.target)
    action = "verified" if v.verified else "unverified"
    notes = [
        Note(p, "verification", action, v.broker, v.target_kind, v.target, excerpt=v.note)
        for p in people
    ]
    await record(deps, session, eco, notes)
