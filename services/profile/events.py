"""What the profile service does with other services' events (each in its own transaction).

- identity ``PersonRegistered`` / ``PartnerRegistered``: profile stubs, so people and
  companies exist before they fill anything in;
- identity ``AllianceChanged``: the projection of alliances (``mesh_alliances``) every
  allied read and search checks per request. When an alliance stops being active there
  is nothing to purge: profile keeps no copy of the other side's data, only the
  connections across (facts, kept), which open nothing while the alliance is not active;
- matching ``IntroductionConnected``: the two people become connections (across an
  alliance when ``a_eco``/``b_eco`` differ: each side records the other's ecosystem);
- collaboration ``ContentCreated`` / ``ContentEdited`` / ``ContentHidden``: tag clouds.

The kit's inbox drops an event id seen before; beyond that every handler is
state-based (upsert to the state the event describes), so a replay with a new id
changes nothing either.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.bus import consumer
from contracts.envelope import EventBase
from contracts.v1.alliances import AllianceChanged
from contracts.v1.collaboration import ContentCreated, ContentEdited, ContentHidden
from contracts.v1.identity import PartnerRegistered, PersonRegistered
from contracts.v1.matching import IntroductionConnected
from services.profile import cloud
from services.profile import repository as repo
from services.profile.allied import STORE
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
        elif isinstance(event, AllianceChanged):
            await STORE.record(s, event.data)

    async def matching(self, s: AsyncSession, event: EventBase) -> None:
        if isinstance(event, IntroductionConnected):
            d = event.data
            a_eco, b_eco = d.a_eco or event.ecosystem, d.b_eco or event.ecosystem
            if a_eco == b_eco:
                await repo.connect(s, a_eco, d.a, d.b, d.b_partner)
                await repo.connect(s, a_eco, d.b, d.a, d.a_partner)
            else:
                await repo.connect_across(s, a_eco, d.a, b_eco, d.b, d.b_partner)
                await repo.connect_across(s, b_eco, d.b, a_eco, d.a, d.a_partner)

    async def collaboration(self, s: AsyncSession, event: EventBase) -> None:
        if isinstance(event, ContentCreated | ContentEdited | ContentHidden):
            hidden = isinstance(event, ContentHidden)
            await cloud.apply_content(s, event.ecosystem, event.data, _micros(event), hidden)
