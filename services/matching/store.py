"""The in-memory indexes of every ecosystem, kept in step with the database.

The database is the truth (profiles and ties written by the event consumers); each
replica holds one :class:`EcoIndex` per ecosystem, built from the database at start
(or by ``rebuild``) and then followed incrementally: the replica that consumes an
event applies it at once (upserts are idempotent, so a retried event changes
nothing), and every replica polls the ``index_changes`` log for the others' changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC

from contracts.v1.profile import CompanyPublic, PersonPublic
from mesh.db import Database
from services.matching import outcomes
from services.matching import repository as repo
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Profile, Weights
from services.matching.engine.priors import Activity
from services.matching.engine.social import SocialGraph
from services.matching.engine.text import Featuriser
from services.matching.models import HelpGiven, IntroductionRow

log = logging.getLogger(__name__)


def person_profile(p: PersonPublic) -> Profile:
    return Profile(
        id=p.person,
        partner=p.partner,
        name=p.name,
        needs=tuple(p.needs),
        offers=tuple(p.offers),
        skills=tuple(p.skills),
        interests=tuple(p.interests),
        industries=tuple(p.industries),
        regions=tuple(p.regions),
    )


def company_profile(c: CompanyPublic) -> Profile:
    return Profile(
        id=c.partner,
        partner=c.partner,
        name=c.name,
        needs=tuple(c.needs),
        offers=(*c.offers, *c.capabilities),
        skills=tuple(c.certifications),
        industries=tuple(c.industries),
        regions=tuple(c.regions),
    )


@dataclass
class EcoIndex:
    people: MatchIndex
    companies: MatchIndex
    social: SocialGraph = field(default_factory=SocialGraph)
    no_learning: set[str] = field(default_factory=set)  # opted out of being learned from
    helped: Activity = field(default_factory=Activity)  # replies to others' threads

    def prefer(self, person: str, suggest: bool, learn: bool) -> None:
        self.people.set_opt_out(person, not suggest)
        if learn:
            self.no_learning.discard(person)
        else:
            self.no_learning.add(person)
            self.people.set_prior(person, 0.5)
            self.people.set_activity(person, 0.0)

    def learn(self, rows: Sequence[IntroductionRow], people: Iterable[str]) -> None:
        for p, prior in outcomes.priors(rows, people, self.no_learning).items():
            self.people.set_prior(p, prior)

    def recount_help(self, rows: Iterable[HelpGiven], people: Iterable[str]) -> None:
        """Each of ``people``'s help given, from their recorded posts (oldest first)."""
        people = set(people)
        for p in people:
            self.helped.forget(p)
        for r in rows:
            if r.person in people and r.person not in self.no_learning:
                at = r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)  # SQLite drops it
                self.helped.add(r.person, at.timestamp())
        now = time.time()
        for p in people:
            if p not in self.no_learning:
                self.people.set_activity(p, self.helped.value(p, now))


class IndexStore:
    def __init__(self, db: Database, weights: Weights | None = None) -> None:
        self.db = db
        self.weights = weights or Weights()
        self.featuriser = Featuriser()
        self.ecos: dict[str, EcoIndex] = {}
        self.seq = 0
        self._lock = asyncio.Lock()

    def _new(self) -> EcoIndex:
        return EcoIndex(
            MatchIndex(self.weights, self.featuriser), MatchIndex(self.weights, self.featuriser)
        )

    def eco(self, eco: str) -> EcoIndex:
        found = self.ecos.get(eco)
        if found is None:
            found = self.ecos[eco] = self._new()
        return found

    async def rebuild(self) -> dict[str, int]:
        """Build every ecosystem's index from scratch from the database."""
        async with self._lock:
            started = time.perf_counter()
            async with self.db.sessions() as s:
                seq = await repo.last_change(s)
                people, firms, ties = (
                    await repo.persons(s),
                    await repo.companies(s),
                    await repo.ties(s),
                )
            by_eco: dict[str, tuple[list[Profile], list[Profile]]] = defaultdict(lambda: ([], []))
            for p in people:
                by_eco[p.eco][0].append(person_profile(PersonPublic.model_validate_json(p.doc)))
            for c in firms:
                by_eco[c.eco][1].append(company_profile(CompanyPublic.model_validate_json(c.doc)))
            ecos: dict[str, EcoIndex] = {}
            for eco, (ps, cs) in by_eco.items():
                ecos[eco] = self._new()
                ecos[eco].people.build(ps)
                ecos[eco].companies.build(cs)
            for t in ties:
                ecos.setdefault(t.eco, self._new()).social.set(t.a, t.b, t.weight)
            async with self.db.sessions() as s:
                for pref in await repo.preferences(s):
                    ecos.setdefault(pref.eco, self._new()).prefer(
                        pref.person, pref.suggest_me, pref.learn_from_me
                    )
                for eco, found in ecos.items():
                    rows = await repo.intros(s, eco, limit=1_000_000)
                    found.learn(rows, {p for r in rows for p in (r.a, r.b)})
                helped: dict[str, list[HelpGiven]] = defaultdict(list)
                for h in await repo.help_given(s):
                    helped[h.eco].append(h)
                for eco, given in helped.items():
                    ecos.setdefault(eco, self._new()).recount_help(given, {h.person for h in given})
            self.ecos, self.seq = ecos, seq
            stats = {
                "ecosystems": len(ecos),
                "people": len(people),
                "companies": len(firms),
                "ties": len(ties),
                "ms": int((time.perf_counter() - started) * 1000),
            }
            log.info("index rebuilt", extra=stats)
            return stats

    async def sync(self) -> int:
        """Apply the database changes made since the last sync (by any replica)."""
        async with self._lock:
            async with self.db.sessions() as s:
                changes = await repo.changes_since(s, self.seq)
                if not changes:
                    return 0
                if any(c.kind == "rebuild" for c in changes):
                    rebuild = True
                else:
                    rebuild = False
                    await self._apply(s, changes)
            self.seq = changes[-1].seq
        if rebuild:
            await self.rebuild()
        return len(changes)

    async def _apply(self, s, changes) -> None:  # type: ignore[no-untyped-def]
        keys: dict[tuple[str, str], set[str]] = defaultdict(set)
        for c in changes:
            keys[(c.eco, c.kind)].add(c.key)
        for (eco, kind), ids in keys.items():
            ix = self.eco(eco)
            if kind == "person":
                for p in await repo.persons(s, eco, sorted(ids)):
                    ix.people.upsert(person_profile(PersonPublic.model_validate_json(p.doc)))
            elif kind == "company":
                for c in await repo.companies(s, eco, sorted(ids)):
                    ix.companies.upsert(company_profile(CompanyPublic.model_validate_json(c.doc)))
            elif kind == "preference":
                for pref in await repo.preferences(s, eco, sorted(ids)):
                    ix.prefer(pref.person, pref.suggest_me, pref.learn_from_me)
            elif kind == "outcome":
                for person in ids:
                    ix.learn(await repo.intros(s, eco, person=person), [person])
            elif kind == "help":
                ix.recount_help(await repo.help_given(s, eco, sorted(ids)), ids)
            elif kind == "social":
                for key in ids:
                    a, _, b = key.partition("\n")
                    edge = await repo.tie(s, eco, a, b)
                    if edge is not None:
                        ix.social.set(a, b, edge.weight)

    async def follow(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("index sync failed; retrying")
