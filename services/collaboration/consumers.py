"""Events this service consumes: introductions open workspaces, profiles name people,
identity registers people with their login name, which is their @handle in mentions;
introductions' steps and verifications become notifications (``notify``).

Both run inside the consumer's transaction, next to its inbox row, so a redelivered
or replayed event changes nothing; opening a workspace is also idempotent on the
introduction id, should matching ever announce the same connection twice.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.bus import consumer
from contracts.envelope import EventBase
from contracts.v1.alliances import AllianceChanged
from contracts.v1.identity import PersonRegistered
from contracts.v1.matching import IntroductionChanged, IntroductionConnected, IntroductionData
from contracts.v1.profile import PersonProfileUpdated, ProfileVerified
from services.collaboration import allied, notify
from services.collaboration import repository as repo
from services.collaboration import workspace_repository as wrepo
from services.collaboration.models import PersonRow, WorkspaceRow
from services.collaboration.service import Deps, new_id, now
from services.collaboration.workspaces import join

# Declared in contracts (contracts.bus.CONSUMERS), where the bus permissions come from.
DECLARED = consumer("collaboration")
DURABLE = DECLARED.durable
SUBJECTS = DECLARED.filter_subjects


async def handle(deps: Deps, session: AsyncSession, event: EventBase) -> None:
    if isinstance(event, AllianceChanged):
        await allied.record(session, event.data)
    elif isinstance(event, IntroductionChanged):
        await notify.introduction_changed(deps, session, event.ecosystem, event.data)
    elif isinstance(event, ProfileVerified):
        await notify.verified(deps, session, event.ecosystem, event.data)
    elif isinstance(event, IntroductionConnected):
        await open_for_introduction(deps, session, event.ecosystem, event.data)
    elif isinstance(event, PersonProfileUpdated):
        data = event.data
        person = PersonRow(
            eco=event.ecosystem,
            sub=data.person,
            partner=data.partner,
            handle=None,
            name=data.name,
            updated_at=now(),
        )
        await repo.upsert_person(session, person)
    elif isinstance(event, PersonRegistered):
        registered = event.data
        await repo.upsert_person(
            session,
            PersonRow(
                eco=event.ecosystem,
                sub=registered.person,
                partner=registered.partner,
                handle=registered.username or None,
                name=registered.name,
                updated_at=now(),
            ),
        )


async def open_for_introduction(
    deps: Deps, session: AsyncSession, eco: str, intro: IntroductionData
) -> WorkspaceRow | None:
    """Open the two people's workspace in ``eco``; across an alliance, ``b`` (of
    ``intro.b_eco``) is a member of its own ecosystem and reaches it through its routes."""
    if await wrepo.by_introduction(session, eco, intro.introduction) is not None:
        return None
    people: list[PersonRow] = []
    for sub, partner, home in (
        (intro.a, intro.a_partner, intro.a_eco or eco),
        (intro.b, intro.b_partner, intro.b_eco or eco),
    ):
        row = PersonRow(eco=home, sub=sub, partner=partner, handle=None, name="", updated_at=now())
        await repo.upsert_person(session, row)
        person = await repo.person(session, home, sub)
        assert person is not None
        people.append(person)
    names = [p.name or p.handle or p.sub for p in people]
    ws = WorkspaceRow(
        id=new_id("w"),
        eco=eco,
        title=f"{names[0]} & {names[1]}",
        description=intro.note or "Opened when both accepted the introduction.",
        created_by=intro.broker or intro.a,
        introduction=intro.introduction,
        created_at=now(),
    )
    await repo.add(session, ws)
    for person in people:
        await join(deps, session, ws, person, intro.broker or "introduction")
    return ws
