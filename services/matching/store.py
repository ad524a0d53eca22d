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
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.profile import CompanyPublic, PersonPublic
from mesh.db import Database
from services.matching import outcomes
from services.matching import repository as repo
from services.matching.engine import expert, learn, refit
from services.matching.engine.index import MatchIndex
from services.matching.engine.model import Profile, Weights
from services.matching.engine.priors import Activity
from services.matching.engine.social import SocialGraph
from services.matching.engine.text import Featuriser
from services.matching.models import ForumThread, HelpGiven, IntroductionRow

log = logging.getLogger(__name__)
MAX_FORUM = 50  # a person's most recent threads started, and replies, kept as evidence


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


ALLIED_FIELDS = ("needs", "offers", "skills", "interests", "industries", "regions")
"""The fields matching scores people of allied ecosystems on, each only when flagged."""


def allied_profile(p: PersonPublic) -> Profile | None:
    """What ``p`` shares with allied ecosystems (the fields flagged for allies, as the
    profile event's ``allied_fields`` lists them); None when nothing is shared."""
    shared = set(p.allied_fields)
    if not shared & set(ALLIED_FIELDS):
        return None
    fields = {f: tuple(getattr(p, f)) for f in ALLIED_FIELDS if f in shared}
    return Profile(id=p.person, partner=p.partner, name=p.name, **fields)


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
    # The same people with only what each shares with allied ecosystems (those sharing
    # nothing are not in it): what askers of an allied ecosystem are matched against.
    allied: MatchIndex = field(default_factory=MatchIndex)
    social: SocialGraph = field(default_factory=SocialGraph)
    no_learning: set[str] = field(default_factory=set)  # opted out of being learned from
    helped: Activity = field(default_factory=Activity)  # replies to others' threads
    # What people did in public forums (see ``recount_help``): the evidence beside
    # their declared profile, and whom each helped (a → times a helped b).
    asked: dict[str, tuple[str, ...]] = field(default_factory=dict)
    helped_on: dict[str, tuple[str, ...]] = field(default_factory=dict)
    favours: dict[str, Counter[str]] = field(default_factory=dict)
    # Expert finding's weights: the prior until the ecosystem's outcomes beat it (``refit``).
    expert: learn.Model = expert.DEFAULT
    refitted: refit.Refit | None = None

    def compose(self, p: Profile) -> Profile:
        """A declared profile with what the person did in public forums (unless they
        opted out of being learned from)."""
        if p.id in self.no_learning:
            return replace(p, asked=(), helped=())
        return replace(p, asked=self.asked.get(p.id, ()), helped=self.helped_on.get(p.id, ()))

    def put_person(self, doc: PersonPublic) -> None:
        """A person's profile event: into the index, and into the allied one when shared."""
        self.people.upsert(self.compose(person_profile(doc)))
        shared = allied_profile(doc)
        if shared is not None:
            self.allied.upsert(shared)
        else:
            self.allied.remove(doc.person)

    def _refresh(self, person: str) -> None:
        p = self.people.profile(person)
        if p is not None:
            new = self.compose(p)
            if new != p:
                self.people.upsert(new)

    def prefer(self, person: str, suggest: bool, learn: bool) -> None:
        self.people.set_opt_out(person, not suggest)
        self.allied.set_opt_out(person, not suggest)
        if learn:
            self.no_learning.discard(person)
        else:
            self.no_learning.add(person)
            self.people.set_prior(person, 0.5)
            self.people.set_activity(person, 0.0)
            self.helped.forget(person)
            for found in (self.asked, self.helped_on, self.favours):
                found.pop(person, None)
            self._refresh(person)

    def learn(self, rows: Sequence[IntroductionRow], people: Iterable[str]) -> None:
        for p, prior in outcomes.priors(rows, people, self.no_learning).items():
            self.people.set_prior(p, prior)

    def recount_help(
        self,
        rows: Iterable[HelpGiven],
        people: Iterable[str],
        threads: Mapping[str, ForumThread] | None = None,
        started: Iterable[ForumThread] = (),
    ) -> None:
        """Each of ``people``'s help given (from their recorded posts, oldest first), what
        they helped with and whom (``threads``: the threads of those posts), and the
        threads they started (``started``)."""
        people, threads = set(people), threads or {}
        for p in people:
            self.helped.forget(p)
            for found in (self.asked, self.helped_on, self.favours):
                found.pop(p, None)
        helped_on: dict[str, list[str]] = defaultdict(list)
        for r in rows:
            if r.person not in people or r.person in self.no_learning:
                continue
            at = r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)  # SQLite drops it
            self.helped.add(r.person, at.timestamp())
            t = threads.get(r.thread) if r.thread else None
            if t is None or t.author == r.person:
                continue
            self.favours.setdefault(r.person, Counter())[t.author] += 1
            if t.public:
                helped_on[r.person] += [x for x in (t.title, r.text) if x]
        asked: dict[str, list[str]] = defaultdict(list)
        for t in started:
            if t.author in people and t.author not in self.no_learning and t.public:
                asked[t.author].append(f"{t.title}\n{t.text}".strip())
        now = time.time()
        for p in people:
            if helped_on[p]:
                self.helped_on[p] = tuple(helped_on[p][-2 * MAX_FORUM :])
            if asked[p]:
                self.asked[p] = tuple(asked[p][-MAX_FORUM:])
            if p not in self.no_learning:
                self.people.set_activity(p, self.helped.value(p, now))
            self._refresh(p)


async def recount(s: AsyncSession, eco: EcoIndex, name: str, people: Sequence[str]) -> None:
    """Re-derive ``people``'s forum behaviour in ``eco`` (ecosystem ``name``) from the database."""
    rows = await repo.help_given(s, name, people)
    ids = sorted({r.thread for r in rows if r.thread})
    threads = {t.thread: t for t in await repo.threads(s, name, ids=ids)} if ids else {}
    eco.recount_help(rows, people, threads, await repo.threads(s, name, authors=people))


def _ts(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()  # SQLite drops it


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
            MatchIndex(self.weights, self.featuriser),
            MatchIndex(self.weights, self.featuriser),
            MatchIndex(self.weights, self.featuriser),
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
            shared: dict[str, list[Profile]] = defaultdict(list)
            for p in people:
                doc = PersonPublic.model_validate_json(p.doc)
                by_eco[p.eco][0].append(person_profile(doc))
                if (allied := allied_profile(doc)) is not None:
                    shared[p.eco].append(allied)
            for c in firms:
                by_eco[c.eco][1].append(company_profile(CompanyPublic.model_validate_json(c.doc)))
            ecos: dict[str, EcoIndex] = {eco: self._new() for eco in by_eco}
            for t in ties:
                ecos.setdefault(t.eco, self._new()).social.set(t.a, t.b, t.weight)
            async with self.db.sessions() as s:
                for pref in await repo.preferences(s):
                    ecos.setdefault(pref.eco, self._new()).prefer(
                        pref.person, pref.suggest_me, pref.learn_from_me
                    )
                helped: dict[str, list[HelpGiven]] = defaultdict(list)
                for h in await repo.help_given(s):
                    helped[h.eco].append(h)
                threads: dict[str, list[ForumThread]] = defaultdict(list)
                for thread in await repo.threads(s):
                    threads[thread.eco].append(thread)
                for eco in helped.keys() | threads.keys():
                    given, opened = helped.get(eco, []), threads.get(eco, [])
                    ecos.setdefault(eco, self._new()).recount_help(
                        given,
                        {h.person for h in given} | {t.author for t in opened},
                        {t.thread: t for t in opened},
                        opened,
                    )
                # Profiles are built last, each with the forum behaviour counted above.
                for eco, (ps, cs) in by_eco.items():
                    ecos[eco].people.build(ecos[eco].compose(p) for p in ps)
                    ecos[eco].companies.build(cs)
                    ecos[eco].allied.build(shared.get(eco, ()))
                for eco, found in ecos.items():
                    rows = await repo.intros(s, eco, limit=1_000_000)
                    found.learn(rows, {p for r in rows for p in (r.a, r.b)})
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

    async def refit(self, name: str, prior: learn.Model = expert.DEFAULT) -> refit.Refit:
        """Refit ecosystem ``name``'s expert weights on its forum outcomes (threads and who
        replied), kept only if they rank the newest outcomes better than ``prior``.
        Nothing of anyone who opted out of being learned from is used."""
        eco = self.eco(name)
        async with self.db.sessions() as s:
            rows, opened = await repo.help_given(s, name), await repo.threads(s, name)
        skip = set(eco.no_learning)
        threads = [
            refit.Thread(t.thread, t.author, _ts(t.at), t.title, t.text, t.public)
            for t in opened
            if t.author not in skip
        ]
        replies = [
            refit.Reply(r.person, r.thread, _ts(r.at), r.text)
            for r in rows
            if r.thread and r.person not in skip
        ]
        # Only people of the forum can be its outcomes: the snapshots stay small however
        # many profiles the ecosystem has.
        present = {t.author for t in threads} | {r.author for r in replies}
        declared = [
            replace(row.profile, asked=(), helped=())
            for pid, row in list(eco.people.rows.items())
            if pid in present
        ]
        found = await asyncio.to_thread(refit.refit, declared, threads, replies, time.time(), prior)
        eco.expert, eco.refitted = found.model, found
        log.info(
            "expert model refitted",
            extra={"eco": name, "adopted": found.adopted, "outcomes": found.outcomes},
        )
        return found

    async def refit_all(self, interval: float) -> None:
        """Refit every ecosystem's expert weights now and then every ``interval`` seconds."""
        while True:
            for name in list(self.ecos):
                try:
                    await self.refit(name)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("expert refit failed; keeping the current weights")
            await asyncio.sleep(interval)

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
                    ix.put_person(PersonPublic.model_validate_json(p.doc))
            elif kind == "company":
                for c in await repo.companies(s, eco, sorted(ids)):
                    ix.companies.upsert(company_profile(CompanyPublic.model_validate_json(c.doc)))
            elif kind == "preference":
                for pref in await repo.preferences(s, eco, sorted(ids)):
                    ix.prefer(pref.person, pref.suggest_me, pref.learn_from_me)
                await recount(s, ix, eco, sorted(ids))
            elif kind == "outcome":
                for person in ids:
                    ix.learn(await repo.intros(s, eco, person=person), [person])
            elif kind == "help":
                await recount(s, ix, eco, sorted(ids))
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
