"""The profile service's logic: reads, edits, cards and broker verification.

Each public method is one request and runs in one transaction; the events it
publishes go to the outbox in that same transaction. Data-dependent checks
live here (only the person edits their profile, only a partner admin of the
partner edits the company); anything a caller may not see answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims, Role
from contracts.v1 import profile as c
from mesh.db import Database
from mesh.errors import conflict, forbidden, not_found
from mesh.outbox import Outbox
from services.profile import cloud, directory, views
from services.profile import repository as repo
from services.profile.allied import STORE
from services.profile.visibility import Viewer, company_tier, person_tier

_NOT_FIELDS = frozenset({"eco", "visibility", "allied"})  # patch members that are not fields


class ProfileService:
    def __init__(self, db: Database, outbox: Outbox) -> None:
        self.db = db
        self.outbox = outbox

    # ------------------------------------------------------------------ people

    async def _person_tier(self, s: AsyncSession, viewer: Viewer, row: Any) -> c.Visibility:
        connected = viewer.sub != row.person and await repo.is_connected(
            s, row.eco, viewer.sub, row.person
        )
        return person_tier(viewer, row.person, row.partner, connected)

    async def _person(self, s: AsyncSession, eco: str, person: str, lock: bool = False) -> Any:
        row = await repo.get_person(s, eco, person, for_update=lock)
        if row is None:
            raise not_found("person")
        return row

    async def get_person(self, claims: Claims, req: c.PersonRef) -> c.PersonView:
        async with self.db.transaction() as s:
            row = await repo.get_person_and_company(s, req.eco, req.person)
            if row is None:
                raise not_found("person")
            tier = await self._person_tier(s, Viewer.of(claims), row)
            return views.person_view(row, row.company_name, tier)

    async def update_person(self, claims: Claims, patch: c.PersonPatch) -> c.PersonView:
        if claims.sub != patch.person:
            raise forbidden("a person edits only their own profile")
        changes = patch.model_dump(
            exclude_none=True, exclude={"eco", "person", "visibility", "allied"}
        )
        async with self.db.transaction() as s:
            row = await repo.get_person(s, patch.eco, patch.person, for_update=True)
            if row is None:  # identity's registration has not arrived yet: start from the token
                if claims.partner is None:
                    raise not_found("person")
                row = await self.register_person(
                    s,
                    patch.eco,
                    patch.person,
                    claims.partner,
                    str(getattr(claims, "name", "") or claims.sub),
                )
            elif row.partner != claims.partner:
                raise forbidden("the token acts for another partner than the profile's")
            fields = {**row.fields, **changes}
            visibility = {**row.visibility, **(patch.visibility or {})}
            allied = {**row.allied, **(patch.allied or {})}
            row = await self._save_person(
                s, row, name=row.name, fields=fields, visibility=visibility, allied=allied
            )
            name = await repo.company_name(s, patch.eco, row.partner)
            return views.person_view(row, name, c.Visibility.PRIVATE)

    async def _save_person(self, s: AsyncSession, old: Any, **values: Any) -> Any:
        """Write a person's new state, reindex it, keep the corpus and publish the event."""
        await repo.update_person(s, old.eco, old.person, updated_at=datetime.now(UTC), **values)
        row = await self._person(s, old.eco, old.person)
        public = c.Visibility.ECOSYSTEM
        await cloud.update_profile_corpus(
            s, row.eco, views.person_text(old, public), views.person_text(row, public)
        )
        await directory.index_person(s, row)
        await self.outbox.add(
            s,
            c.PersonProfileUpdated(
                ecosystem=row.eco,
                partner=row.partner,
                subject=row.person,
                data=views.person_public(row),
            ),
        )
        return row

    async def register_person(
        self, s: AsyncSession, eco: str, person: str, partner: str, name: str
    ) -> Any:
        """Create a person's stub (or follow a change of name or partner); returns the row."""
        row = await repo.get_person(s, eco, person, for_update=True)
        if row is None:
            now = datetime.now(UTC)
            await repo.insert_person(
                s,
                eco=eco,
                person=person,
                partner=partner,
                name=name,
                fields={},
                visibility=views.default_visibility(c.PERSON_FIELDS),
                allied={},
                verified=False,
                verified_note="",
                updated_at=now,
                created_at=now,
            )
            row = await self._person(s, eco, person)
            return await self._save_person(s, row, name=name)
        if (row.name, row.partner) != (name, partner):
            return await self._save_person(s, row, name=name, partner=partner)
        return row

    async def person_card(self, claims: Claims, req: c.CloudRequest) -> c.Card:
        viewer = Viewer.of(claims)
        async with self.db.transaction() as s:
            row = await repo.get_person_and_company(s, req.eco, req.person)
            if row is None:
                raise not_found("person")
            tier = await self._person_tier(s, viewer, row)
            company = row.company_name
            tag_cloud = await cloud.build(
                s,
                req.eco,
                "person",
                row.person,
                viewer.partner,
                views.person_text(row, tier),
                req.limit,
            )
            return c.Card(
                person=row.person,
                name=row.name,
                partner=row.partner,
                headline=views.person_visible(row, tier).get("headline"),
                company_name=company or row.partner,
                avatar=row.image,
                badge=views.badge(row),
                cloud=tag_cloud,
            )

    # ---------------------------------------------------------------- companies

    async def _company_tier(self, s: AsyncSession, viewer: Viewer, row: Any) -> c.Visibility:
        connected = viewer.partner != row.partner and await repo.connected_with_partner(
            s, row.eco, viewer.sub, row.partner
        )
        return company_tier(viewer, row.partner, connected)

    async def _company(self, s: AsyncSession, eco: str, partner: str, lock: bool = False) -> Any:
        row = await repo.get_company(s, eco, partner, for_update=lock)
        if row is None:
            raise not_found("company")
        return row

    async def get_company(self, claims: Claims, req: c.CompanyRef) -> c.CompanyView:
        async with self.db.transaction() as s:
            row = await self._company(s, req.eco, req.partner)
            return views.company_view(row, await self._company_tier(s, Viewer.of(claims), row))

    async def update_company(self, claims: Claims, patch: c.CompanyPatch) -> c.CompanyView:
        if claims.partner != patch.partner or not claims.has_role(Role.PARTNER_ADMIN):
            raise forbidden("only a partner admin of this partner edits its profile")
        changes = patch.model_dump(
            exclude_none=True, exclude={"eco", "partner", "visibility", "allied"}
        )
        async with self.db.transaction() as s:
            row = await repo.get_company(s, patch.eco, patch.partner, for_update=True)
            if row is None:
                row = await self.register_company(s, patch.eco, patch.partner, patch.partner)
            fields = {**row.fields, **changes}
            visibility = {**row.visibility, **(patch.visibility or {})}
            allied = {**row.allied, **(patch.allied or {})}
            row = await self._save_company(
                s, row, fields=fields, visibility=visibility, allied=allied
            )
            return views.company_view(row, c.Visibility.PRIVATE)

    async def _save_company(self, s: AsyncSession, old: Any, **values: Any) -> Any:
        await repo.update_company(s, old.eco, old.partner, updated_at=datetime.now(UTC), **values)
        row = await self._company(s, old.eco, old.partner)
        public = c.Visibility.ECOSYSTEM
        await cloud.update_profile_corpus(
            s, row.eco, views.company_text(old, public), views.company_text(row, public)
        )
        await directory.index_company(s, row)
        await self.outbox.add(
            s,
            c.CompanyProfileUpdated(
                ecosystem=row.eco,
                partner=row.partner,
                subject=row.partner,
                data=views.company_public(row),
            ),
        )
        return row

    async def register_company(self, s: AsyncSession, eco: str, partner: str, name: str) -> Any:
        row = await repo.get_company(s, eco, partner, for_update=True)
        if row is None:
            now = datetime.now(UTC)
            await repo.insert_company(
                s,
                eco=eco,
                partner=partner,
                name=name,
                fields={},
                visibility=views.default_visibility(c.COMPANY_FIELDS),
                allied={},
                verified=False,
                verified_note="",
                updated_at=now,
                created_at=now,
            )
            row = await self._company(s, eco, partner)
            return await self._save_company(s, row, name=name)
        if row.name != name:
            return await self._save_company(s, row, name=name)
        return row

    async def company_card(self, claims: Claims, req: c.CompanyCloudRequest) -> c.CompanyCard:
        viewer = Viewer.of(claims)
        async with self.db.transaction() as s:
            row = await self._company(s, req.eco, req.partner)
            tier = await self._company_tier(s, viewer, row)
            tag_cloud = await cloud.build(
                s,
                req.eco,
                "company",
                row.partner,
                viewer.partner,
                views.company_text(row, tier),
                req.limit,
            )
            return c.CompanyCard(
                partner=row.partner,
                name=row.name,
                badge=views.badge(row),
                cloud=tag_cloud,
                description=views.company_visible(row, tier).get("description"),
            )

    # ----------------------------------------------------------- verification

    async def set_person_verified(
        self, claims: Claims, req: c.VerifyPerson, verified: bool
    ) -> c.PersonView:
        async with self.db.transaction() as s:
            row = await self._person(s, req.eco, req.person, lock=True)
            values = await self._verification(
                s, claims, row, "person", row.person, verified, req.note
            )
            row = await self._save_person(s, row, **values)
            tier = await self._person_tier(s, Viewer.of(claims), row)
            return views.person_view(row, await repo.company_name(s, req.eco, row.partner), tier)

    async def set_company_verified(
        self, claims: Claims, req: c.VerifyCompany, verified: bool
    ) -> c.CompanyView:
        async with self.db.transaction() as s:
            row = await self._company(s, req.eco, req.partner, lock=True)
            values = await self._verification(
                s, claims, row, "company", row.partner, verified, req.note
            )
            row = await self._save_company(s, row, **values)
            return views.company_view(row, await self._company_tier(s, Viewer.of(claims), row))

    async def _verification(
        self,
        s: AsyncSession,
        claims: Claims,
        row: Any,
        kind: Literal["person", "company"],
        target: str,
        verified: bool,
        note: str,
    ) -> dict[str, Any]:
        """Audit a verification or revocation, queue its event; return the new badge columns."""
        if not verified and not row.verified:
            raise conflict(f"the {kind} is not verified")
        action = "verified" if verified else "revoked"
        await repo.add_audit(
            s,
            eco=row.eco,
            actor=claims.sub,
            action=action,
            target_kind=kind,
            target=target,
            note=note,
        )
        await self.outbox.add(
            s,
            c.ProfileVerified(
                ecosystem=row.eco,
                partner=row.partner,
                subject=target,
                data=c.VerificationData(
                    target_kind=kind, target=target, verified=verified, broker=claims.sub, note=note
                ),
            ),
        )
        if not verified:
            return {
                "verified": False,
                "verified_by": None,
                "verified_note": "",
                "verified_at": None,
            }
        return {
            "verified": True,
            "verified_by": claims.sub,
            "verified_note": note,
            "verified_at": datetime.now(UTC),
        }

    async def audit_log(self, req: c.AuditQuery) -> c.AuditLog:
        async with self.db.transaction() as s:
            rows = await repo.list_audit(s, req.eco, req.limit)
        return c.AuditLog(
            entries=[
                c.VerificationAuditEntry(
                    at=cast(datetime, repo.aware(r.at)),
                    actor=r.actor,
                    action=r.action,
                    target_kind=r.target_kind,
                    target=r.target,
                    note=r.note,
                )
                for r in rows
            ]
        )

    async def search(self, claims: Claims, query: c.DirectoryQuery) -> c.DirectoryPage:
        async with self.db.transaction() as s:
            if not query.allied:
                return await directory.search(s, Viewer.of(claims), query)
            allies = await STORE.allies(s, query.eco)
            shares = "shares_people" if query.kind == "person" else "shares_companies"
            brands = {a.eco: a.name for a in allies if getattr(a.shares, shares)()}
            own = next((a.state.names.get(query.eco) for a in allies), None)
            return await directory.search(s, Viewer.of(claims), query, brands, own)
