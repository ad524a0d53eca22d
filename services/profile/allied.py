"""Reads across an alliance: a person or company of an allied ecosystem, as a viewer of
the caller's own ecosystem may see them.

Every read checks, in its own transaction, the alliance projection (``mesh_alliances``):
the alliance between the viewer's ecosystem and the owner's is active, and the owner's
terms share its people (people) or its companies (companies). Then only the fields the
owner flagged "shared with allied ecosystems" *and* whose visibility lets this viewer see
them are shown (``ecosystem``; ``connections`` when the two are connected across). A
profile that flagged nothing does not exist across. Anything the viewer may not see
answers 404, with a sentence saying which of these was missing.

Cards across carry no tag cloud: a cloud is drawn from what the person wrote in their own
ecosystem's workspaces, which nobody flagged for allies (conservative by design). Nor
the picture's hash: pictures are served by the owner's ecosystem routes only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims
from contracts.errors import ErrorCode
from contracts.v1 import profile as c
from mesh.alliances import AllianceStore, Ally
from mesh.db import Database
from mesh.errors import MeshError, not_found
from services.profile import models, views
from services.profile import repository as repo
from services.profile.visibility import allied_tier, shares_with_allies

STORE = AllianceStore(models.metadata)


def _hidden(what: str) -> MeshError:
    return MeshError(ErrorCode.NOT_FOUND, what)


async def sharing_ally(s: AsyncSession, eco: str, ally: str, kind: str) -> Ally:
    """The active alliance of ``eco`` with ``ally`` whose terms share ``kind`` (people or
    companies) with ``eco``; 404 otherwise."""
    found = await STORE.ally(s, eco, ally)
    if found is None:
        raise _hidden(f"{eco} has no active alliance with {ally}")
    shares = found.shares.shares_people() if kind == "person" else found.shares.shares_companies()
    if not shares:
        plural = "people" if kind == "person" else "companies"
        raise _hidden(f"{ally} does not share its {plural} with {eco}")
    return found


class AlliedProfiles:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def _person(
        self, s: AsyncSession, claims: Claims, req: c.AlliedPersonRef
    ) -> tuple[Ally, Any, c.Visibility]:
        ally = await sharing_ally(s, req.eco, req.ally, "person")
        row = await repo.get_person_and_company(s, req.ally, req.person)
        if row is None or not shares_with_allies(views.allied_of(row)):
            raise not_found("person")
        connected = await repo.is_connected_across(s, req.eco, claims.sub, req.ally, row.person)
        return ally, row, allied_tier(connected)

    async def person(self, claims: Claims, req: c.AlliedPersonRef) -> c.PersonView:
        async with self.db.transaction() as s:
            ally, row, tier = await self._person(s, claims, req)
        return views.allied_person_view(row, row.company_name, tier, ally.eco, ally.name)

    async def person_card(self, claims: Claims, req: c.AlliedCloudRequest) -> c.Card:
        async with self.db.transaction() as s:
            ally, row, tier = await self._person(s, claims, req)
        return c.Card(
            person=row.person,
            name=row.name,
            partner=row.partner,
            headline=views.person_allied(row, tier).get("headline"),
            company_name=row.company_name or row.partner,
            badge=views.badge(row),
            cloud=c.TagCloud(posts=0),
            ecosystem=ally.eco,
            ecosystem_name=ally.name,
        )

    async def _company(
        self, s: AsyncSession, claims: Claims, req: c.AlliedCompanyRef
    ) -> tuple[Ally, Any, c.Visibility]:
        ally = await sharing_ally(s, req.eco, req.ally, "company")
        row = await repo.get_company(s, req.ally, req.partner)
        if row is None or not shares_with_allies(views.allied_of(row)):
            raise not_found("company")
        connected = await repo.connected_across_with_partner(
            s, req.eco, claims.sub, req.ally, row.partner
        )
        return ally, row, allied_tier(connected)

    async def company(self, claims: Claims, req: c.AlliedCompanyRef) -> c.CompanyView:
        async with self.db.transaction() as s:
            ally, row, tier = await self._company(s, claims, req)
        return views.allied_company_view(row, tier, ally.eco, ally.name)

    async def company_card(self, claims: Claims, req: c.AlliedCompanyRef) -> c.CompanyCard:
        async with self.db.transaction() as s:
            ally, row, tier = await self._company(s, claims, req)
        return c.CompanyCard(
            partner=row.partner,
            name=row.name,
            description=views.company_allied(row, tier).get("description"),
            badge=views.badge(row),
            cloud=c.TagCloud(posts=0),
            ecosystem=ally.eco,
            ecosystem_name=ally.name,
        )
