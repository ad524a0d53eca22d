"""Matching across an alliance over real NATS: allied people in suggestions (scored on
what they share with allies only), introductions across (open and curated, each person
through their own ecosystem), withdrawal when the alliance stops, and every denial."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.claims import Role
from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.v1 import matching as m
from contracts.v1.alliances import (
    AllianceChanged,
    AllianceState,
    AllianceStatus,
    Curators,
    DirectionTerms,
    Introductions,
    Sharing,
)
from contracts.v1.profile import PersonProfileUpdated, PersonPublic
from mesh.errors import MeshError
from tests.matching.conftest import Mesh, until
from tests.matching.test_service_introductions import denied

BRAND = "Globex Brand"
# People of the allied ecosystem: (partner, needs, offers, fields shared with allies)
ALLIED = {
    # offers what alice needs, and shares it
    "yara": ("yonder", ["business intelligence"], ["freight forwarding"], ["needs", "offers"]),
    # offers the same, but shares nothing: never crosses
    "yuri": ("yonder", [], ["freight forwarding"], []),
    # offers the same without sharing it; shares only a region, which alone matches nobody
    "yves": ("yellow", [], ["freight forwarding"], ["regions"]),
}


class Ally:
    """The second ecosystem of the test, and the alliance of the two (``mesh.eco`` first)."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.eco = f"{mesh.eco}-ally"
        self.id = f"al-{uuid.uuid4().hex[:10]}"
        self.version = 0

    def token(self, sub: str, roles: tuple[Role, ...] = (Role.MEMBER,)) -> str:
        partner = ALLIED[sub][0] if sub in ALLIED else "globex-hq"
        return self.mesh.token(sub, roles=roles, partner=partner, eco=self.eco)

    def broker(self) -> str:
        return self.token("gina", (Role.BROKER, Role.MEMBER))

    async def call(self, op: Any, token: str, **body: Any) -> Any:
        return await self.mesh.call(op, token, eco=self.eco, **body)

    async def seed(self) -> None:
        for pid, (partner, needs, offers, shared) in ALLIED.items():
            data = PersonPublic(
                person=pid,
                partner=partner,
                name=pid.title(),
                needs=needs,
                offers=offers,
                regions=["germany"],
                allied_fields=shared,
            )
            event = PersonProfileUpdated(ecosystem=self.eco, partner=partner, data=data)
            await self.mesh.publish(event)
        store = self.mesh.svc.store
        await until(lambda: len(store.eco(self.eco).people) == len(ALLIED))

    async def set(
        self,
        status: AllianceStatus,
        share: Sharing = Sharing.PEOPLE,
        introductions: Introductions = Introductions.OPEN,
        curators: Curators = Curators.OWNER,
    ) -> None:
        """Publish the alliance's next state (the ally's terms as given; ``mesh.eco``
        shares its people openly) and wait until matching recorded it."""
        self.version += 1
        x, y = self.mesh.eco, self.eco
        state = AllianceState(
            alliance=self.id,
            ecosystems=[x, y],
            names={y: BRAND},
            status=status,
            version=self.version,
            offered_by=x,
            terms={
                y: DirectionTerms(share=share, introductions=introductions, curators=curators),
                x: DirectionTerms(share=Sharing.PEOPLE, introductions=Introductions.OPEN),
            },
            changed_at=datetime.now(UTC),
            changed_by="olga",
        )
        await self.mesh.publish(AllianceChanged(ecosystem=x, subject=self.id, data=state))
        flow, version = self.mesh.svc.flow, self.version

        async def recorded() -> bool:
            async with self.mesh.svc.db.transaction() as s:
                got = await flow.alliances.get(s, self.id)
            return got is not None and got.version == version

        await until(recorded)

    async def propose(self, a: str = "alice", b: str = "yara") -> m.Introduction:
        intro: m.Introduction = await self.mesh.call(
            m.PROPOSE_INTRODUCTION, self.mesh.broker(), a=a, b=b, b_eco=self.eco
        )
        return intro


@pytest.fixture
async def ally(seeded: Mesh) -> Ally:
    """Five people in the test's ecosystem and three in an allied one (no alliance yet)."""
    found = Ally(seeded)
    await found.seed()
    return found


async def suggest(mesh: Mesh, allied: bool) -> m.SuggestionsReply:
    reply: m.SuggestionsReply = await mesh.call(
        m.PERSON_SUGGESTIONS, mesh.token("alice"), person="alice", allied=allied
    )
    return reply


class TestAlliedSuggestions:
    async def test_allied_people_are_suggested_on_what_they_share(self, ally: Ally) -> None:
        own = await suggest(ally.mesh, allied=False)
        await ally.set(AllianceStatus.ACTIVE)
        assert await suggest(ally.mesh, allied=False) == own  # unchanged without the flag
        reply = await suggest(ally.mesh, allied=True)
        across = [s for s in reply.suggestions if s.ecosystem is not None]
        assert [(s.id, s.ecosystem, s.ecosystem_name) for s in across] == [
            ("yara", ally.eco, BRAND)
        ]
        [yara] = across
        assert yara.score > 0 and yara.partner == "yonder" and yara.name == "Yara"
        assert any(r.kind == "need_offer" and r.concept == "freight" for r in yara.reasons)
        assert any("Yara offers freight forwarding" in r.text for r in yara.reasons)
        # only her shared fields explain her: her unshared region appears nowhere
        assert {r.field_b for r in yara.reasons} <= {"needs", "offers"}
        own_ids = [s.id for s in own.suggestions]
        assert [s.id for s in reply.suggestions if s.ecosystem is None] == own_ids
        scores = [s.score for s in reply.suggestions]
        assert scores == sorted(scores, reverse=True)
        # a replica's start builds the same people from the database (idf refitted)
        await ally.mesh.svc.store.rebuild()
        rebuilt = (await suggest(ally.mesh, allied=True)).suggestions
        assert {(s.id, s.ecosystem) for s in rebuilt} == {
            (s.id, s.ecosystem) for s in reply.suggestions
        }

    @pytest.mark.parametrize(
        "status,share",
        [
            (None, Sharing.PEOPLE),  # never allied
            (AllianceStatus.PROPOSED, Sharing.PEOPLE),
            (AllianceStatus.ACTIVE, Sharing.COMPANIES),  # terms do not share people
            (AllianceStatus.ACTIVE, Sharing.NOTHING),
            (AllianceStatus.SUSPENDED, Sharing.PEOPLE),
            (AllianceStatus.ENDED, Sharing.PEOPLE),
        ],
    )
    async def test_nobody_crosses_unless_the_terms_share_people(
        self, ally: Ally, status: AllianceStatus | None, share: Sharing
    ) -> None:
        if status in (AllianceStatus.SUSPENDED, AllianceStatus.ENDED):
            await ally.set(AllianceStatus.ACTIVE, share)
            assert any(s.ecosystem for s in (await suggest(ally.mesh, True)).suggestions)
        if status is not None:
            await ally.set(status, share)
        reply = await suggest(ally.mesh, allied=True)
        assert reply.suggestions and all(s.ecosystem is None for s in reply.suggestions)
        assert reply == await suggest(ally.mesh, allied=False)

    async def test_someone_already_introduced_is_not_suggested_again(self, ally: Ally) -> None:
        await ally.set(AllianceStatus.ACTIVE)
        await ally.propose()
        reply = await suggest(ally.mesh, allied=True)
        assert "yara" not in [s.id for s in reply.suggestions]


class TestOpenIntroductionsAcross:
    async def test_double_opt_in_each_through_their_own_ecosystem(
        self, ally: Ally, events: list[EventBase]
    ) -> None:
        mesh = ally.mesh
        await ally.set(AllianceStatus.ACTIVE)
        intro = await ally.propose()
        assert (intro.status, intro.a_eco, intro.b_eco, intro.awaiting) == (
            "approved",
            mesh.eco,
            ally.eco,
            [],
        )
        # yara reads its reasons too: alice shares nothing with allies, so nothing explains it
        assert intro.score and intro.reasons == []
        # both inboxes list it, each with the other side's ecosystem
        [mine] = (await mesh.call(m.LIST_INTRODUCTIONS, mesh.token("alice"))).introductions
        [hers] = (await ally.call(m.LIST_INTRODUCTIONS, ally.token("yara"))).introductions
        assert mine.id == hers.id == intro.id and hers.b_eco == ally.eco == mine.b_eco
        # yara acts only through her own ecosystem: in alice's she is nobody
        as_guest = mesh.token("yara", partner="yonder")
        assert await denied(mesh.call(m.ACCEPT_INTRODUCTION, as_guest, introduction=intro.id)) in (
            ErrorCode.NOT_FOUND,
            ErrorCode.FORBIDDEN,
        )
        one = await ally.call(m.ACCEPT_INTRODUCTION, ally.token("yara"), introduction=intro.id)
        assert (one.status, one.b_accepted, one.a_accepted) == ("accepted", True, False)
        two = await mesh.call(m.ACCEPT_INTRODUCTION, mesh.token("alice"), introduction=intro.id)
        assert two.status == "connected"
        full = await ally.call(m.GET_INTRODUCTION, ally.token("yara"), introduction=intro.id)
        assert [h.action for h in full.history] == ["propose", "accept", "accept"]

        async def announced() -> bool:
            return any(isinstance(e, m.IntroductionConnected) for e in events)

        await until(announced)
        [done] = [e for e in events if isinstance(e, m.IntroductionConnected)]
        assert (done.ecosystem, done.data.a_eco, done.data.b_eco) == (mesh.eco, mesh.eco, ally.eco)

    async def test_explained_by_what_both_share_with_allies(self, ally: Ally) -> None:
        mesh = ally.mesh
        await ally.set(AllianceStatus.ACTIVE)
        data = PersonPublic(
            person="alice",
            partner="north",
            name="Alice",
            needs=["freight forwarding"],
            offers=["business intelligence"],
            regions=["germany"],
            allied_fields=["needs"],
        )
        await mesh.publish(PersonProfileUpdated(ecosystem=mesh.eco, partner="north", data=data))
        await until(lambda: "alice" in mesh.svc.store.eco(mesh.eco).allied)
        intro = await ally.propose()
        assert [(r.kind, r.field_a, r.field_b, r.concept) for r in intro.reasons] == [
            ("need_offer", "needs", "offers", "freight")
        ]

    async def test_only_its_two_people_and_its_brokers_see_it(self, ally: Ally) -> None:
        mesh = ally.mesh
        await ally.set(AllianceStatus.ACTIVE)
        intro = await ally.propose()
        ref = {"introduction": intro.id}
        for token, call in (
            (mesh.token("bob"), mesh.call),  # a third person of alice's ecosystem
            (ally.token("yuri"), ally.call),  # a third person of yara's
            (ally.broker(), ally.call),  # yara's brokers do not curate an open one
        ):
            assert await denied(call(m.GET_INTRODUCTION, token, **ref)) == ErrorCode.NOT_FOUND
            listed = (await call(m.LIST_INTRODUCTIONS, token)).introductions
            assert intro.id not in [i.id for i in listed]
        assert (
            await denied(ally.call(m.ACCEPT_INTRODUCTION, ally.token("yuri"), **ref))
            == ErrorCode.NOT_FOUND
        )
        seen = await mesh.call(m.GET_INTRODUCTION, mesh.broker(), **ref)
        assert seen.id == intro.id


class TestProposeAcrossDenied:
    @pytest.mark.parametrize(
        "status,share,introductions",
        [
            (None, Sharing.PEOPLE, Introductions.OPEN),  # not allied
            (AllianceStatus.PROPOSED, Sharing.PEOPLE, Introductions.OPEN),
            (AllianceStatus.SUSPENDED, Sharing.PEOPLE, Introductions.OPEN),
            (AllianceStatus.REJECTED, Sharing.PEOPLE, Introductions.OPEN),
            (AllianceStatus.ACTIVE, Sharing.PEOPLE, Introductions.NONE),
            (AllianceStatus.ACTIVE, Sharing.COMPANIES, Introductions.OPEN),
        ],
    )
    async def test_refused_without_terms_that_allow_it(
        self,
        ally: Ally,
        status: AllianceStatus | None,
        share: Sharing,
        introductions: Introductions,
    ) -> None:
        if status is not None:
            await ally.set(status, share, introductions)
        assert await denied(ally.propose()) == ErrorCode.FORBIDDEN
        listed = await ally.mesh.call(m.LIST_INTRODUCTIONS, ally.mesh.broker())
        assert listed.introductions == []

    async def test_someone_who_shares_nothing_cannot_be_introduced(self, ally: Ally) -> None:
        await ally.set(AllianceStatus.ACTIVE)
        for nobody in ("yuri", "ghost"):
            assert await denied(ally.propose(b=nobody)) == ErrorCode.NOT_FOUND
        assert await denied(ally.propose(a="yara", b="yara")) == ErrorCode.NOT_FOUND

    async def test_twice_is_a_conflict(self, ally: Ally) -> None:
        await ally.set(AllianceStatus.ACTIVE)
        await ally.propose()
        assert await denied(ally.propose()) == ErrorCode.CONFLICT


class TestCuratedAcross:
    async def test_the_owner_sides_broker_approves_first(self, ally: Ally) -> None:
        mesh = ally.mesh
        await ally.set(AllianceStatus.ACTIVE, introductions=Introductions.CURATED)
        intro = await ally.propose()
        ref = {"introduction": intro.id}
        assert (intro.status, intro.awaiting) == ("proposed", [ally.eco])
        # before approval neither person sees or acts on it
        assert await denied(ally.call(m.ACCEPT_INTRODUCTION, ally.token("yara"), **ref)) == (
            ErrorCode.NOT_FOUND
        )
        assert await denied(mesh.call(m.GET_INTRODUCTION, mesh.token("alice"), **ref)) == (
            ErrorCode.NOT_FOUND
        )
        assert (await ally.call(m.LIST_INTRODUCTIONS, ally.token("yara"))).introductions == []
        # a broker of the wrong side is told so
        with pytest.raises(MeshError) as wrong:
            await mesh.call(m.CURATE_INTRODUCTION, mesh.broker(), action="approve", **ref)
        assert wrong.value.code == ErrorCode.FORBIDDEN
        assert f"brokers of {ally.eco} curate this introduction" in wrong.value.detail
        # the owner side's broker queue lists it
        queue = await ally.call(m.LIST_INTRODUCTIONS, ally.broker(), status="proposed")
        assert [i.id for i in queue.introductions] == [intro.id]
        approved = await ally.call(m.CURATE_INTRODUCTION, ally.broker(), action="approve", **ref)
        assert (approved.status, approved.awaiting) == ("approved", [])
        assert (
            await denied(ally.call(m.CURATE_INTRODUCTION, ally.broker(), action="approve", **ref))
            == ErrorCode.CONFLICT
        )
        await ally.call(m.ACCEPT_INTRODUCTION, ally.token("yara"), **ref)
        done = await mesh.call(m.ACCEPT_INTRODUCTION, mesh.token("alice"), **ref)
        assert done.status == "connected"

    async def test_the_owner_sides_broker_may_reject_it(self, ally: Ally) -> None:
        await ally.set(AllianceStatus.ACTIVE, introductions=Introductions.CURATED)
        intro = await ally.propose()
        ref = {"introduction": intro.id}
        gone = await ally.call(m.CURATE_INTRODUCTION, ally.broker(), action="reject", **ref)
        assert gone.status == "rejected"
        assert (
            await denied(ally.mesh.call(m.ACCEPT_INTRODUCTION, ally.mesh.token("alice"), **ref))
            == ErrorCode.CONFLICT
        )

    async def test_curated_by_the_viewer_the_proposing_broker_approves(self, ally: Ally) -> None:
        await ally.set(
            AllianceStatus.ACTIVE, introductions=Introductions.CURATED, curators=Curators.VIEWER
        )
        intro = await ally.propose()
        assert (intro.status, intro.awaiting) == ("approved", [])
        ref = {"introduction": intro.id}
        # the owner's brokers are not named: they neither see nor curate it
        assert await denied(ally.call(m.GET_INTRODUCTION, ally.broker(), **ref)) == (
            ErrorCode.NOT_FOUND
        )

    async def test_curated_by_both_waits_for_the_other_side(self, ally: Ally) -> None:
        await ally.set(
            AllianceStatus.ACTIVE, introductions=Introductions.CURATED, curators=Curators.BOTH
        )
        intro = await ally.propose()
        assert (intro.status, intro.awaiting) == ("proposed", [ally.eco])
        ref = {"introduction": intro.id}
        # the proposing side has approved by proposing
        assert (
            await denied(
                ally.mesh.call(m.CURATE_INTRODUCTION, ally.mesh.broker(), action="approve", **ref)
            )
            == ErrorCode.CONFLICT
        )
        ok = await ally.call(m.CURATE_INTRODUCTION, ally.broker(), action="approve", **ref)
        assert ok.status == "approved"


class TestAllianceEnds:
    @pytest.mark.parametrize("status", [AllianceStatus.SUSPENDED, AllianceStatus.ENDED])
    async def test_open_introductions_are_withdrawn(
        self, ally: Ally, status: AllianceStatus, events: list[EventBase]
    ) -> None:
        mesh = ally.mesh
        await ally.set(AllianceStatus.ACTIVE, introductions=Introductions.CURATED)
        waiting = await ally.propose()  # proposed: awaiting the owner's broker
        await ally.set(AllianceStatus.ACTIVE, introductions=Introductions.OPEN)
        half = await ally.propose(a="erin")  # approved, then accepted by one
        await ally.call(m.ACCEPT_INTRODUCTION, ally.token("yara"), introduction=half.id)
        inside = await mesh.call(m.PROPOSE_INTRODUCTION, mesh.broker(), a="alice", b="bob")
        await ally.set(status)
        for intro in (waiting, half):
            got = await mesh.call(m.GET_INTRODUCTION, mesh.broker(), introduction=intro.id)
            assert got.status == "withdrawn"
            last = got.history[-1]
            assert (last.action, last.actor, last.to_status) == ("withdraw", "olga", "withdrawn")
            assert status.value in last.note
        # what stays within one ecosystem is untouched
        same = await mesh.call(m.GET_INTRODUCTION, mesh.broker(), introduction=inside.id)
        assert same.status == "approved"
        # nothing across can be accepted or proposed any more
        assert (
            await denied(mesh.call(m.ACCEPT_INTRODUCTION, mesh.token("erin"), introduction=half.id))
            == ErrorCode.CONFLICT
        )
        assert await denied(ally.propose(a="carol")) == ErrorCode.FORBIDDEN

        async def announced() -> bool:
            return (
                sum(
                    isinstance(e, m.IntroductionChanged) and e.data.status == "withdrawn"
                    for e in events
                )
                == 2
            )

        await until(announced)

    async def test_resumed_alliance_allows_introductions_again(self, ally: Ally) -> None:
        await ally.set(AllianceStatus.ACTIVE)
        await ally.set(AllianceStatus.SUSPENDED)
        assert await denied(ally.propose()) == ErrorCode.FORBIDDEN
        await ally.set(AllianceStatus.ACTIVE)
        assert (await ally.propose()).status == "approved"

    async def test_accepting_while_not_active_is_refused(self, ally: Ally) -> None:
        """Even before the withdrawal reaches it, the projection refuses the act."""
        await ally.set(AllianceStatus.ACTIVE)
        intro = await ally.propose()
        svc = ally.mesh.svc
        state = await _state(ally)
        paused = state.model_copy(update={"status": AllianceStatus.SUSPENDED, "version": 99})
        async with svc.db.transaction() as s:
            await svc.flow.alliances.record(s, paused)  # recorded, nothing withdrawn yet
        assert (
            await denied(
                ally.call(m.ACCEPT_INTRODUCTION, ally.token("yara"), introduction=intro.id)
            )
            == ErrorCode.FORBIDDEN
        )


async def _state(ally: Ally) -> AllianceState:
    svc = ally.mesh.svc
    async with svc.db.transaction() as s:
        got = await svc.flow.alliances.get(s, ally.id)
    assert got is not None
    return got
