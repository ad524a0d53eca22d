"""The introduction workflow: propose → curate → double opt-in → connected (or declined).

Every transition checks the caller's claims against the data (only the two people
accept or decline; only brokers and operators curate, and never their own
introduction), writes an audit row and adds the event to the outbox, all in one
transaction. Introductions someone may not see answer 404. Across an alliance
(``services.matching.across``) each person acts through their own ecosystem's routes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims
from contracts.v1 import matching as m
from contracts.v1.alliances import AllianceState
from mesh.alliances import AllianceStore
from mesh.db import Database
from mesh.errors import bad_request, conflict, forbidden, not_found
from mesh.outbox import Outbox
from services.matching import across
from services.matching import repository as repo
from services.matching.engine.explain import explain, explain_pair
from services.matching.engine.model import Profile, ReasonPart
from services.matching.models import AuditRow, IntroductionRow, metadata
from services.matching.settings import MatchingSettings
from services.matching.store import IndexStore

OPEN = ("proposed", "approved", "accepted")


def is_curator(claims: Claims) -> bool:
    return claims.has_role(*m.CURATORS)


def party(claims: Claims, row: IntroductionRow) -> str | None:
    """'a' or 'b' when the caller is that person of that person's ecosystem, acting for
    that person's partner."""
    if claims.sub == row.a and claims.partner == row.a_partner and claims.eco == row.eco:
        return "a"
    b_eco = across.b_eco(row)
    if claims.sub == row.b and claims.partner == row.b_partner and claims.eco == b_eco:
        return "b"
    return None


def new_row(
    eco: str, pa: Profile, pb: Profile, reasons: list[ReasonPart], **values: Any
) -> IntroductionRow:
    """A new introduction of ``pa`` (of ``eco``) and ``pb``, explained by ``reasons``."""
    now = repo.now()
    return IntroductionRow(
        id=uuid.uuid4().hex,
        eco=eco,
        a=pa.id,
        a_partner=pa.partner,
        b=pb.id,
        b_partner=pb.partner,
        a_accepted=False,
        b_accepted=False,
        reasons=json.dumps([r.__dict__ for r in reasons]),
        decline_comment="",
        created_at=now,
        updated_at=now,
        **values,
    )


@dataclass(frozen=True)
class Actor:
    """Who made a transition, as the audit records it."""

    sub: str
    partner: str | None = None
    roles: str = ""

    @classmethod
    def of(cls, claims: Claims) -> Actor:
        return cls(claims.sub, claims.partner, " ".join(sorted(str(r) for r in claims.roles)))


class Workflow:
    def __init__(self, db: Database, outbox: Outbox, store: IndexStore, settings: MatchingSettings):
        self.db, self.outbox, self.store, self.settings = db, outbox, store, settings
        self.alliances = AllianceStore(metadata)

    def visible(self, claims: Claims, row: IntroductionRow) -> bool:
        if is_curator(claims):
            return claims.eco in across.seen_by_brokers(row)
        waiting = self.settings.curation_required or bool(row.awaiting)
        hidden = row.status == "proposed" and waiting
        return party(claims, row) is not None and not hidden

    async def _load(
        self, s: AsyncSession, claims: Claims, eco: str, intro_id: str
    ) -> IntroductionRow:
        row = await repo.intro(s, eco, intro_id, lock=True)
        if row is None or not self.visible(claims, row):
            raise not_found("introduction")
        return row

    async def create(
        self,
        s: AsyncSession,
        claims: Claims,
        eco: str,
        a: str,
        b: str,
        status: str,
        proposed_by: str,
        score: float | None,
        note: str = "",
    ) -> IntroductionRow:
        ix = self.store.eco(eco).people
        pa, pb = ix.profile(a), ix.profile(b)
        if pa is None or pb is None:
            raise not_found("person profile")
        row = new_row(eco, pa, pb, explain(ix, a, b), status=status, score=score, note=note)
        return await self._add(s, claims, row, proposed_by)

    async def _add(
        self, s: AsyncSession, claims: Claims, row: IntroductionRow, proposed_by: str
    ) -> IntroductionRow:
        row.proposed_by, row.broker = proposed_by, claims.sub
        await repo.add_intro(s, row)
        await self._record(s, Actor.of(claims), row, "propose", None, row.note)
        return row

    async def _record(
        self,
        s: AsyncSession,
        actor: Actor,
        row: IntroductionRow,
        action: str,
        before: str | None,
        note: str = "",
    ) -> None:
        await repo.audit(
            s,
            AuditRow(
                introduction=row.id,
                eco=row.eco,
                actor=actor.sub,
                actor_partner=actor.partner,
                roles=actor.roles,
                action=action,
                from_status=before,
                to_status=row.status,
                note=note,
                at=repo.now(),
            ),
        )
        data = m.IntroductionData(
            introduction=row.id,
            a=row.a,
            a_partner=row.a_partner,
            b=row.b,
            b_partner=row.b_partner,
            status=row.status,  # type: ignore[arg-type]
            broker=row.broker,
            note=row.note,
            score=row.score,
            actor=actor.sub,
            reason=row.decline_reason if row.status == "declined" else None,
            a_eco=row.eco if across.is_across(row) else None,
            b_eco=row.b_eco if across.is_across(row) else None,
        )
        await self.outbox.add(
            s, m.IntroductionChanged(ecosystem=row.eco, subject=row.id, data=data)
        )
        if row.status == "connected" and before != "connected":
            await self.outbox.add(
                s, m.IntroductionConnected(ecosystem=row.eco, subject=row.id, data=data)
            )

    async def _move(
        self,
        s: AsyncSession,
        claims: Claims,
        row: IntroductionRow,
        action: str,
        audit_note: str = "",
        **values: Any,
    ) -> m.Introduction:
        before = row.status
        await repo.save_intro(s, row, **values)
        await self._record(s, Actor.of(claims), row, action, before, audit_note)
        if action in ("accept", "decline") and not across.is_across(row):
            # an outcome within the ecosystem: what its model learns from
            await repo.mark_outcome(s, row.eco, (row.a, row.b))
            ix = self.store.eco(row.eco)
            for person in (row.a, row.b):
                ix.learn(await repo.intros(s, row.eco, person=person), [person])
        return await self.reply(s, row)

    # ------------------------------------------------------------ operations

    async def propose(self, claims: Claims, req: m.ProposeRequest) -> m.Introduction:
        if req.a == req.b and req.b_eco in (None, req.eco):
            raise bad_request("an introduction needs two different people")
        if claims.sub in (req.a, req.b):
            raise forbidden("brokers do not introduce themselves")
        if req.b_eco is not None and req.b_eco != req.eco:
            return await self._propose_across(claims, req, req.b_eco)
        async with self.db.transaction() as s:
            for r in await repo.pair_intros(s, req.eco, req.a, req.b):
                if r.status in (*OPEN, "connected", "declined"):
                    raise conflict(f"these two already have an introduction ({r.status})")
            pair = self.store.eco(req.eco).people.pair(req.a, req.b)
            score = pair.score if pair else None
            row = await self.create(
                s, claims, req.eco, req.a, req.b, "approved", claims.sub, score, req.note
            )
            return await self.reply(s, row)

    async def _propose_across(
        self, claims: Claims, req: m.ProposeRequest, b_eco: str
    ) -> m.Introduction:
        """A broker of ``req.eco`` introduces its person ``a`` to ``b`` of the allied
        ``b_eco``: scored and explained on what each shares with allies only."""
        async with self.db.transaction() as s:
            ally = await across.allowed(s, self.alliances, req.eco, b_eco)
            home, allied = self.store.eco(req.eco), self.store.eco(b_eco).allied
            pa, pb = home.people.profile(req.a), allied.profile(req.b)
            if pa is None or pb is None:
                raise not_found("person profile")
            for r in await repo.pair_across(s, req.eco, req.a, b_eco, req.b):
                if r.status in (*OPEN, "connected", "declined"):
                    raise conflict(f"these two already have an introduction ({r.status})")
            pair = allied.pair_for(pa, req.b)
            # b sees the reasons too: of a, only what a shares with allies shows in them
            shown = home.allied.profile(req.a) or Profile(id=pa.id, partner=pa.partner)
            curators, awaiting = across.curation(ally)
            row = new_row(
                req.eco,
                pa,
                pb,
                explain_pair(allied, shown, pb),
                status="proposed" if awaiting else "approved",
                score=pair.score if pair else None,
                note=req.note,
                b_eco=b_eco,
                curators=curators,
                awaiting=awaiting,
            )
            return await self.reply(s, await self._add(s, claims, row, claims.sub))

    async def withdraw_across(self, s: AsyncSession, state: AllianceState) -> int:
        """The alliance stopped being active: its open introductions are withdrawn."""
        x, y = state.ecosystems
        rows = await repo.open_across(s, x, y, OPEN)
        note = f"the alliance between {x} and {y} is {state.status.value}"
        for row in rows:
            before = row.status
            await repo.save_intro(s, row, status="withdrawn", awaiting="")
            await self._record(s, Actor(state.changed_by), row, "withdraw", before, note)
        return len(rows)

    async def accept(self, claims: Claims, req: m.IntroductionRef) -> m.Introduction:
        async with self.db.transaction() as s:
            row = await self._load(s, claims, req.eco, req.introduction)
            side = self._party_for_opt_in(claims, row)
            await across.still_allied(s, self.alliances, row)
            if getattr(row, f"{side}_accepted"):
                return await self.reply(s, row)
            both = row.a_accepted or row.b_accepted
            status = "connected" if both else "accepted"
            flags: dict[str, Any] = {f"{side}_accepted": True, "status": status}
            return await self._move(s, claims, row, "accept", **flags)

    async def decline(self, claims: Claims, req: m.DeclineRequest) -> m.Introduction:
        async with self.db.transaction() as s:
            row = await self._load(s, claims, req.eco, req.introduction)
            self._party_for_opt_in(claims, row)
            if req.reason == "already_know":  # they know each other: a tie for social proximity
                weight = await repo.add_tie(s, row.eco, row.a, row.b, 1.0)
                self.store.eco(row.eco).social.set(row.a, row.b, weight)
            return await self._move(
                s,
                claims,
                row,
                "decline",
                req.comment,
                status="declined",
                declined_by=claims.sub,
                decline_reason=req.reason,
                decline_comment=req.comment,
            )

    def _party_for_opt_in(self, claims: Claims, row: IntroductionRow) -> str:
        side = party(claims, row)
        if side is None:
            raise forbidden("only the two people introduced may accept or decline")
        waiting = self.settings.curation_required or bool(row.awaiting)
        allowed = ("approved", "accepted") + (() if waiting else ("proposed",))
        if row.status not in allowed:
            raise conflict(f"the introduction is {row.status}")
        return side

    async def curate(self, claims: Claims, req: m.CurateRequest) -> m.Introduction:
        async with self.db.transaction() as s:
            row = await self._load(s, claims, req.eco, req.introduction)
            if claims.sub in (row.a, row.b):
                raise forbidden("brokers do not curate their own introductions")
            if row.status not in OPEN or (req.action == "approve" and row.status != "proposed"):
                raise conflict(f"cannot {req.action} an introduction that is {row.status}")
            values: dict[str, Any] = {"broker": claims.sub}
            if req.note:
                values["note"] = req.note
            if req.action != "note":
                values.update(await self._decide(s, claims, row, req.action == "approve"))
            return await self._move(s, claims, row, req.action, req.note, **values)

    async def _decide(
        self, s: AsyncSession, claims: Claims, row: IntroductionRow, approve: bool
    ) -> dict[str, Any]:
        """The new status (and who still must approve) when a broker approves or rejects."""
        if not across.is_across(row):
            return {"status": "approved" if approve else "rejected"}
        named = across.curators_named(row)
        if claims.eco not in named:
            sides = " and ".join(sorted(named))
            raise forbidden(f"brokers of {sides} curate this introduction, not of {claims.eco}")
        if not approve:
            return {"status": "rejected", "awaiting": ""}
        await across.still_allied(s, self.alliances, row)
        awaiting = row.awaiting.split()
        if claims.eco not in awaiting:
            raise conflict(f"a broker of {claims.eco} approved it already")
        left = [e for e in awaiting if e != claims.eco]
        return {"status": "proposed" if left else "approved", "awaiting": " ".join(left)}

    async def get(self, claims: Claims, req: m.IntroductionRef) -> m.Introduction:
        async with self.db.transaction() as s:
            row = await repo.intro(s, req.eco, req.introduction)
            if row is None or not self.visible(claims, row):
                raise not_found("introduction")
            return await self.reply(s, row, with_history=True)

    async def list(self, claims: Claims, req: m.ListIntroductionsRequest) -> m.IntroductionsReply:
        curator = is_curator(claims)
        person = req.person if curator else claims.sub
        hide = ("proposed",) if (self.settings.curation_required and not curator) else ()
        async with self.db.transaction() as s:
            rows = await repo.inbox(s, req.eco, person, curator, req.status, hide, req.limit)
            mine = [r for r in rows if curator or party(claims, r)]
            return m.IntroductionsReply(introductions=[await self.reply(s, r) for r in mine])

    async def reply(
        self, s: AsyncSession, row: IntroductionRow, with_history: bool = False
    ) -> m.Introduction:
        history = []
        if with_history:
            history = [
                m.IntroductionHistoryEntry(
                    at=h.at,
                    actor=h.actor,
                    action=h.action,
                    from_status=h.from_status,
                    to_status=h.to_status,
                    note=h.note,
                )
                for h in await repo.history(s, row.id)
            ]
        return m.Introduction(
            id=row.id,
            a=row.a,
            a_partner=row.a_partner,
            b=row.b,
            b_partner=row.b_partner,
            status=row.status,  # type: ignore[arg-type]
            score=row.score,
            proposed_by=row.proposed_by,
            broker=row.broker,
            note=row.note,
            a_accepted=row.a_accepted,
            b_accepted=row.b_accepted,
            declined_by=row.declined_by,
            decline_reason=row.decline_reason,
            reasons=[m.Reason(**r) for r in json.loads(row.reasons or "[]")],
            created_at=row.created_at,
            updated_at=row.updated_at,
            history=history,
            a_eco=row.eco,
            b_eco=across.b_eco(row),
            awaiting=row.awaiting.split(),
        )
