"""Matching logic: ingest profiles and social signals, suggest, optimise introductions."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.claims import Claims
from contracts.v1 import collaboration as col
from contracts.v1 import matching as m
from contracts.v1 import profile as prof
from contracts.v1.alliances import AllianceChanged
from mesh.db import Database
from mesh.errors import forbidden, not_found
from mesh.outbox import Outbox
from services.matching import repository as repo
from services.matching import workflow
from services.matching.engine.batch import candidate_graph, top_k_all
from services.matching.engine.calibrate import Calibration
from services.matching.engine.expert import find_experts
from services.matching.engine.explain import expert_reasons, explain, explain_pair
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Asker, Filter, Profile, Scored
from services.matching.engine.optimise import optimise
from services.matching.models import IntroductionRow
from services.matching.settings import MatchingSettings
from services.matching.store import IndexStore, company_profile, recount

MENTION, SHARED_ROOM = 1.0, 0.5


def other(row: IntroductionRow, person: str) -> tuple[str, str]:
    return (row.b, row.b_partner) if row.a == person else (row.a, row.a_partner)


def asker_from(
    person: str, rows: Sequence[IntroductionRow], social: dict[str, float], penalty: float
) -> Asker:
    """Never suggest anyone already introduced, connected or declined; learn from declines."""
    ctx = Asker(social=social)
    for r in rows:
        who, partner = other(r, person)
        ctx.exclude.add(who)
        if (
            r.status == "declined"
            and r.declined_by == person
            and r.decline_reason == "not_relevant"
        ):
            ctx.penalties[partner] = ctx.penalties.get(partner, 1.0) * penalty
    return ctx


class Matching:
    def __init__(self, db: Database, outbox: Outbox, settings: MatchingSettings) -> None:
        self.db = db
        self.outbox = outbox
        self.settings = settings
        self.store = IndexStore(db)
        self.flow = workflow.Workflow(db, outbox, self.store, settings)

    # ------------------------------------------------------------ events

    async def person_updated(self, s: AsyncSession, ev: prof.PersonProfileUpdated) -> None:
        p = ev.data
        await repo.upsert_person(s, ev.ecosystem, p.person, p.partner, p.model_dump_json())
        self.store.eco(ev.ecosystem).put_person(p)

    async def company_updated(self, s: AsyncSession, ev: prof.CompanyProfileUpdated) -> None:
        c = ev.data
        await repo.upsert_company(s, ev.ecosystem, c.partner, c.model_dump_json())
        self.store.eco(ev.ecosystem).companies.upsert(company_profile(c))

    async def alliance_changed(self, s: AsyncSession, ev: AllianceChanged) -> None:
        """Keep the alliance's state; when it stops being active, its open introductions
        are withdrawn (suggestions and proposals across read the state per request)."""
        change = await self.flow.alliances.record(s, ev.data)
        if change.left_active:
            await self.flow.withdraw_across(s, ev.data)

    async def content_created(self, s: AsyncSession, ev: col.ContentCreated) -> None:
        d = ev.data
        if d.hidden:
            return
        ties: dict[str, float] = defaultdict(float)
        for mentioned in d.mentions:
            ties[mentioned] += MENTION
        room = d.thread or (d.content_id if d.kind == "thread" else None)
        if room:
            for o in await repo.join_room(s, ev.ecosystem, room, d.author):
                ties[o] += SHARED_ROOM
        await self._tie(s, ev.ecosystem, d.author, ties)
        eco = self.store.eco(ev.ecosystem)
        # Forum behaviour, kept in the database (other replicas follow it; a restart
        # rebuilds it): a thread is a need voiced by its author; a reply in a thread is
        # help given, on the thread's subject, to its author. Only public threads' words
        # become evidence (workspace writing is for its audience alone); nothing of
        # someone who opted out of being learned from counts (``recount`` skips them).
        public = d.workspace is None
        if d.kind == "thread":
            changed = await repo.add_thread(
                s, ev.ecosystem, d.content_id, d.author, public, d.title, d.text, ev.time
            )
        elif d.kind == "post" and d.thread and d.author not in eco.no_learning:
            text = d.text if public else ""
            changed = await repo.add_help(
                s, ev.ecosystem, d.content_id, d.author, ev.time, d.thread, text
            )
        else:
            return
        if changed:
            await recount(s, eco, ev.ecosystem, [d.author])

    async def membership_changed(self, s: AsyncSession, ev: col.WorkspaceMembershipChanged) -> None:
        d = ev.data
        if d.joined:
            room = f"ws:{d.workspace}"
            others = await repo.join_room(s, ev.ecosystem, room, d.person)
            await self._tie(s, ev.ecosystem, d.person, dict.fromkeys(others, SHARED_ROOM))

    async def _tie(self, s: AsyncSession, eco: str, person: str, ties: dict[str, float]) -> None:
        graph = self.store.eco(eco).social
        for o, w in ties.items():
            if o != person:
                graph.set(person, o, await repo.add_tie(s, eco, person, o, w))

    # ------------------------------------------------------------ suggestions

    async def person_suggestions(
        self, claims: Claims, req: m.PersonSuggestionsRequest
    ) -> m.SuggestionsReply:
        ix = self.store.ecos.get(req.eco)
        me = ix.people.profile(req.person) if ix else None
        acting_self = claims.sub == req.person and (me is None or me.partner == claims.partner)
        if not (acting_self or workflow.is_curator(claims)):
            raise not_found("suggestions")
        if ix is None or me is None:
            raise not_found("person profile")
        async with self.db.transaction() as s:
            rows = await repo.intros(s, req.eco, person=req.person)
        ctx = asker_from(
            req.person, rows, ix.social.proximity(req.person), ix.people.w.decline_penalty
        )
        found = ix.people.query(req.person, req.k, _filter(req), ctx)
        suggestions = [_suggestion(ix.people, req.person, r) for r in found]
        if req.allied:
            suggestions = await self._allied(req, me, suggestions)
        return m.SuggestionsReply(subject=req.person, suggestions=suggestions)

    async def _allied(
        self, req: m.PersonSuggestionsRequest, me: Profile, own: list[m.Suggestion]
    ) -> list[m.Suggestion]:
        """``own`` with the people of active allies whose terms share people, each scored
        and explained on what they share with allies only; the best ``req.k`` of all."""
        async with self.db.transaction() as s:
            allies = await self.flow.alliances.allies(s, req.eco)
            rows = await repo.across_of(s, req.eco, req.person) if allies else []
        met: dict[str, set[str]] = defaultdict(set)  # ecosystem → people already introduced
        for r in rows:
            if r.eco == req.eco and r.a == req.person:
                met[r.b_eco or ""].add(r.b)
            else:
                met[r.eco].add(r.a)
        found = list(own)
        for ally in allies:
            shared = self.store.ecos.get(ally.eco)
            if not ally.shares.shares_people() or shared is None:
                continue
            ctx = Asker(exclude=met[ally.eco])
            for hit in shared.allied.query_for(me, req.k, _filter(req), ctx):
                found.append(_suggestion(shared.allied, me, hit, ally.eco, ally.name))
        found.sort(key=lambda x: -x.score)
        return found[: req.k]

    async def partner_suggestions(
        self, claims: Claims, req: m.PartnerSuggestionsRequest
    ) -> m.SuggestionsReply:
        ix = self.store.ecos.get(req.eco)
        if ix is None or req.partner not in ix.companies:
            raise not_found("company profile")
        found = ix.companies.query(req.partner, req.k, _filter(req), Asker())
        return m.SuggestionsReply(
            subject=req.partner,
            suggestions=[_suggestion(ix.companies, req.partner, r) for r in found],
        )

    # ------------------------------------------------------------ expert finding

    async def find_experts(self, claims: Claims, req: m.ExpertsRequest) -> m.ExpertsReply:
        """People likely to help with a need: never the asker, nor anyone who opted out."""
        ix = self.store.ecos.get(req.eco)
        if ix is None:
            return m.ExpertsReply(experts=[])
        now = datetime.now(UTC).timestamp()
        for pid, value in ix.helped.snapshot(now).items():  # recency: help decays
            ix.people.set_activity(pid, value)
        # Whom the asker helped before: people return a favour.
        owed = {} if claims.sub in ix.no_learning else ix.favours.get(claims.sub, Counter())
        ctx = Asker(exclude={claims.sub}, helped={k: float(v) for k, v in owed.items()})
        snap = ix.people.snapshot()  # here, not in the thread: events change the index
        found = await asyncio.to_thread(
            find_experts, ix.people, req.text, req.k, None, ctx, ix.expert, snap
        )
        return m.ExpertsReply(
            experts=[
                m.Expert(
                    id=e.id,
                    partner=e.partner,
                    name=e.name,
                    probability=round(e.probability, 6),
                    helped=round(e.helped, 3),
                    reasons=expert_reasons(ix.people, req.text, e),
                )
                for e in found
            ]
        )

    async def set_preferences(
        self, claims: Claims, req: m.MatchingPreferences
    ) -> m.MatchingPreferences:
        if claims.sub != req.person:
            raise forbidden("only the person may set their own matching preferences")
        eco = self.store.eco(req.eco)
        async with self.db.transaction() as s:
            await repo.set_preference(s, req.eco, req.person, req.suggest_me, req.learn_from_me)
            eco.prefer(req.person, req.suggest_me, req.learn_from_me)
            if req.learn_from_me:  # learned from again: what they did counts again
                await recount(s, eco, req.eco, [req.person])
        return req

    # ------------------------------------------------------------ optimal introductions

    async def optimise(self, claims: Claims, req: m.OptimiseRequest) -> m.OptimiseReply:
        ix = self.store.eco(req.eco)
        async with self.db.transaction() as s:
            rows = await repo.intros(s, req.eco)
            by_person: dict[str, list[IntroductionRow]] = defaultdict(list)
            for r in rows:
                by_person[r.a].append(r)
                by_person[r.b].append(r)

            def asker_of(pid: str) -> Asker | None:
                if pid not in by_person and pid not in ix.social.adj:
                    return None
                social = ix.social.proximity(pid)
                return asker_from(pid, by_person.get(pid, []), social, ix.people.w.decline_penalty)

            top = top_k_all(ix.people, req.candidates, req.min_score, asker_of)
            u, v, score = candidate_graph(top)
            # Maximise expected successful introductions, not a sum of raw scores.
            w = calibration(rows, ix.no_learning)(score)
            cap = self._capacity(top.ids, by_person, req.capacity)
            plan = await asyncio.to_thread(
                optimise,
                len(top.ids),
                u,
                v,
                w,
                cap,
                req.fairness_floor,
                time_limit=self.settings.optimise_time_limit,
            )
            pairs = []
            for e in plan.chosen:
                a, b = top.ids[int(u[e])], top.ids[int(v[e])]
                intro_id = None
                if not req.dry_run:
                    row = await self.flow.create(
                        s, claims, req.eco, a, b, "proposed", "engine", float(score[e])
                    )
                    intro_id = row.id
                pairs.append(
                    m.OptimisedPair(
                        a=a,
                        b=b,
                        score=round(float(score[e]), 6),
                        probability=round(float(w[e]), 6),
                        introduction=intro_id,
                    )
                )
        return m.OptimiseReply(
            proposals=pairs,
            objective=plan.weight,
            upper_bound=plan.upper_bound,
            gap=plan.gap,
            viable_people=plan.viable,
            covered_people=plan.covered,
            solver=plan.solver,
        )

    def _capacity(
        self, ids: list[str], by_person: dict[str, list[IntroductionRow]], capacity: int
    ) -> np.ndarray:
        since = repo.now() - timedelta(days=self.settings.capacity_window_days)
        cap = np.full(len(ids), capacity, dtype=np.int64)
        for i, pid in enumerate(ids):
            recent = sum(
                1
                for r in by_person.get(pid, ())
                if r.status != "rejected" and _aware(r.created_at) >= since
            )
            cap[i] = max(0, capacity - recent)
        return cap


def calibration(rows: Sequence[IntroductionRow], no_learning: set[str]) -> Calibration:
    """Score → chance of connecting, fitted on finished introductions (their score then)."""
    done = [
        (r.score, r.status == "connected")
        for r in rows
        if r.score is not None
        and r.status in ("connected", "declined", "rejected")
        and r.a not in no_learning
        and r.b not in no_learning
    ]
    return Calibration.fit(done)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _filter(req: m.SuggestionFilters) -> Filter:
    return Filter(
        regions=frozenset(req.regions),
        industries=frozenset(req.industries),
        partners=frozenset(req.partners),
        min_score=req.min_score,
        include_same_partner=req.include_same_partner,
    )


def _suggestion(
    ix: MatchIndex,
    asker: str | Profile,
    r: Scored,
    ecosystem: str | None = None,
    ecosystem_name: str | None = None,
) -> m.Suggestion:
    if isinstance(asker, str):
        parts = explain(ix, asker, r.id, r.social)
    else:  # an asker of another ecosystem (``ix`` holds what allies share)
        theirs = ix.profile(r.id)
        parts = explain_pair(ix, asker, theirs, r.social) if theirs else []
    reasons = [
        m.Reason(
            kind=x.kind,  # type: ignore[arg-type]
            field_a=x.field_a,
            field_b=x.field_b,
            concept=x.concept,
            terms_a=list(x.terms_a),
            terms_b=list(x.terms_b),
            weight=x.weight,
            text=x.text,
        )
        for x in parts
    ]
    return m.Suggestion(
        id=r.id,
        partner=r.partner,
        name=r.name,
        score=round(r.score, 6),
        a_to_b=round(r.ab, 6),
        b_to_a=round(r.ba, 6),
        reciprocal=round(r.reciprocal, 6),
        interest=round(r.interest, 6),
        social=round(r.social, 6),
        reasons=reasons,
        ecosystem=ecosystem,
        ecosystem_name=ecosystem_name,
    )
