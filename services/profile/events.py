"""What the profile service does with other services' events (each in its own transaction).

- identity ``PersonRegistered`` / ``PartnerRegistered``: profile stubs, so people and
  companies exist before they fill anything in;
- matching ``IntroductionConnected``: the two people become connections;
- collaboration ``ContentCreated`` / ``ContentEdited`` / ``ContentHidden``: tag clouds.

The kit's inbox drops an event id seen before; beyond that every handler is
state-based (upsert to the state the event describes), so a replay with a new id
changes nothing either.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.bus import consumer
from contracts.envelope import EventBase
from contracts.v1.collaboration import ContentCreated, ContentEdited, ContentHidden
from contracts.v1.identity import PartnerRegistered, PersonRegistered
from contracts.v1.matching import IntroductionConnected
from services.profile import cloud
from services.profile import repository as repo
from services.profile.service import ProfileService

# The consumers declared in contracts (contracts.bus.CONSUMERS): names and filters.
IDENTITY = consumer("profile-identity")
MATCHING = consumer("profile-matching")
COLLABORATION = consumer("profile-collaboration")


def _micros(event: EventBase) -> int:
    return int(event.time.timestamp() * 1_000_000)


class EventHandlers:
    def __init__(self, service: ProfileService) -> None:
        self.service = service

    async def identity(self, s: AsyncSession, event: EventBase) -> None:
        if isinstance(event, PersonRegistered):
            person = event.data
            await self.service.register_person(
                s, event.ecosystem, person.person, person.partner, person.name
            )
        elif isinstance(event, PartnerRegistered):
            partner = event.data
            await self.service.register_company(s, event.ecosystem, partner.partner, partner.name)

    async def matching(self, s: AsyncSession, event: EventBase) -> None:
        if isinstance(event, IntroductionConnected):
            d, eco = event.data, event.ecosystem
            await repo.connect(s, eco, d.a, d.b, d.b_partner)
            await repo.connect(s, eco, d.b, d.a, d.a_partner)

    async def collaboration(self, s: AsyncSession, event: EventBase) -> None:
        if isinstance(event, ContentCreated | ContentEdited | ContentHidden):
            hidden = isinstance(event, ContentHidden)
            await cloud.apply_content(s, event.ecosystem, event.data, _micros(event), hidden)
