"""The introduction workflow over real NATS: double opt-in, curation, audit, denials, events."""

from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest

from contracts.claims import Role, Scope
from contracts.envelope import EventBase
from contracts.errors import ErrorCode
from contracts.v1 import matching as m
from mesh.errors import MeshError
from tests.matching.conftest import Mesh


async def denied(coro: Awaitable[object]) -> ErrorCode:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value.code


async def propose(
    mesh: Any, a: str = "alice", b: str = "bob", note: str = "you two should talk"
) -> m.Introduction:
    return cast(
        m.Introduction,
        await mesh.call(m.PROPOSE_INTRODUCTION, mesh.broker(), a=a, b=b, note=note),
    )


class TestDoubleOptIn:
    async def test_both_accept_then_connected(self, seeded: Mesh, events: list[EventBase]) -> None:
        intro = await propose(seeded)
        assert intro.score is not None
        assert intro.status == "approved" and intro.broker == "bruno" and intro.score > 0
        assert any(r.concept == "freight" for r in intro.reasons)
        one = await seeded.call(m.ACCEPT_INTRODUCTION, seeded.token("alice"), introduction=intro.id)
        assert (one.status, one.a_accepted, one.b_accepted) == ("accepted", True, False)
        again = await seeded.call(
            m.ACCEPT_INTRODUCTION, seeded.token("alice"), introduction=intro.id
        )
        assert again.status == "accepted"  # idempotent
        two = await seeded.call(m.ACCEPT_INTRODUCTION, seeded.token("bob"), introduction=intro.id)
        assert two.status == "connected"
        full = await seeded.call(m.GET_INTRODUCTION, seeded.token("bob"), introduction=intro.id)
        assert [(h.actor, h.action, h.to_status) for h in full.history] == [
            ("bruno", "propose", "approved"),
            ("alice", "accept", "accepted"),
            ("bob", "accept", "connected"),
        ]
        await _wait(lambda: any(isinstance(e, m.IntroductionConnected) for e in events))
        connected = [e for e in events if isinstance(e, m.IntroductionConnected)]
        assert len(connected) == 1 and connected[0].data.introduction == intro.id
        assert [e.data.status for e in events if isinstance(e, m.IntroductionChanged)] == [
            "approved",
            "accepted",
            "connected",
        ]
        # Connected people are never suggested again.
        reply = await seeded.call(m.PERSON_SUGGESTIONS, seeded.token("alice"), person="alice")
        assert "bob" not in [s.id for s in reply.suggestions]

    async def test_decline_with_reason_feeds_back(self, seeded: Mesh) -> None:
        intro = await propose(seeded, "carol", "dave")
        out = await seeded.call(
            m.DECLINE_INTRODUCTION,
            seeded.token("dave"),
            introduction=intro.id,
            reason="not_relevant",
            comment="not now",
        )
        assert (out.status, out.declined_by, out.decline_reason) == (
            "declined",
            "dave",
            "not_relevant",
        )
        reply = await seeded.call(m.PERSON_SUGGESTIONS, seeded.token("carol"), person="carol")
        assert "dave" not in [s.id for s in reply.suggestions]
        assert await denied(propose(seeded, "carol", "dave")) is ErrorCode.CONFLICT
        code = await denied(
            seeded.call(m.ACCEPT_INTRODUCTION, seeded.token("carol"), introduction=intro.id)
        )
        assert code is ErrorCode.CONFLICT

    async def test_already_knowing_each_other_becomes_a_social_tie(self, seeded: Mesh) -> None:
        intro = await propose(seeded, "alice", "dave")
        await seeded.call(
            m.DECLINE_INTRODUCTION,
            seeded.token("alice"),
            introduction=intro.id,
            reason="already_know",
        )
        assert seeded.svc.store.eco(seeded.eco).social.adj["alice"]["dave"] == 1.0
        await seeded.svc.store.rebuild()  # persisted, not only in memory
        assert seeded.svc.store.eco(seeded.eco).social.proximity("dave")["alice"] > 0

    async def test_my_introductions(self, seeded: Mesh) -> None:
        intro = await propose(seeded)
        mine = await seeded.call(m.LIST_INTRODUCTIONS, seeded.token("bob"))
        assert [i.id for i in mine.introductions] == [intro.id]
        assert (await seeded.call(m.LIST_INTRODUCTIONS, seeded.token("carol"))).introductions == []
        everyone = await seeded.call(m.LIST_INTRODUCTIONS, seeded.broker(), status="approved")
        assert [i.id for i in everyone.introductions] == [intro.id]


class TestDenials:
    async def test_only_the_two_people_accept(self, seeded: Mesh) -> None:
        intro = await propose(seeded)
        ref = {"introduction": intro.id}
        c = seeded.call
        assert (
            await denied(c(m.ACCEPT_INTRODUCTION, seeded.token("carol"), **ref))
            is ErrorCode.NOT_FOUND
        )
        assert await denied(c(m.ACCEPT_INTRODUCTION, seeded.broker(), **ref)) is ErrorCode.FORBIDDEN
        wrong_partner = seeded.token("alice", partner="west")
        assert await denied(c(m.ACCEPT_INTRODUCTION, wrong_partner, **ref)) is ErrorCode.NOT_FOUND
        assert await denied(c(m.ACCEPT_INTRODUCTION, None, **ref)) is ErrorCode.UNAUTHENTICATED
        expired = seeded.token("alice", expires_in=-120)
        assert await denied(c(m.ACCEPT_INTRODUCTION, expired, **ref)) is ErrorCode.UNAUTHENTICATED
        other_eco = seeded.token("alice", eco="elsewhere")
        assert await denied(c(m.ACCEPT_INTRODUCTION, other_eco, **ref)) is ErrorCode.FORBIDDEN
        no_scope = seeded.token("alice", scope=Scope.MATCHING_READ.value)
        assert await denied(c(m.ACCEPT_INTRODUCTION, no_scope, **ref)) is ErrorCode.FORBIDDEN
        assert (
            await denied(c(m.GET_INTRODUCTION, seeded.token("carol"), **ref)) is ErrorCode.NOT_FOUND
        )
        unchanged = await c(m.GET_INTRODUCTION, seeded.token("alice"), **ref)
        assert unchanged.status == "approved" and len(unchanged.history) == 1

    async def test_only_brokers_curate_and_propose(self, seeded: Mesh) -> None:
        intro = await propose(seeded)
        member = seeded.token("alice")
        admin = seeded.token("carol", roles=(Role.PARTNER_ADMIN, Role.MEMBER))
        for token in (member, admin):
            code = await denied(
                seeded.call(m.CURATE_INTRODUCTION, token, introduction=intro.id, action="reject")
            )
            assert code is ErrorCode.FORBIDDEN
            assert (
                await denied(seeded.call(m.PROPOSE_INTRODUCTION, token, a="carol", b="dave"))
                is ErrorCode.FORBIDDEN
            )
            assert await denied(seeded.call(m.OPTIMISE_INTRODUCTIONS, token)) is ErrorCode.FORBIDDEN
        no_scope = seeded.broker(scope=Scope.MATCHING_READ.value)
        code = await denied(
            seeded.call(m.CURATE_INTRODUCTION, no_scope, introduction=intro.id, action="note")
        )
        assert code is ErrorCode.FORBIDDEN
        code = await denied(
            seeded.call(m.CURATE_INTRODUCTION, seeded.broker(), introduction="nope", action="note")
        )
        assert code is ErrorCode.NOT_FOUND

    async def test_brokers_do_not_curate_their_own(self, seeded: Mesh) -> None:
        await seeded.person("bruno", "acme-hq", ["cargo transport"], ["dashboards"])
        await _wait(lambda: "bruno" in seeded.svc.store.eco(seeded.eco).people)
        olivia = seeded.token("olivia", roles=(Role.OPERATOR,), partner=None)
        intro = await seeded.call(m.PROPOSE_INTRODUCTION, olivia, a="bruno", b="alice")
        code = await denied(
            seeded.call(
                m.CURATE_INTRODUCTION, seeded.broker(), introduction=intro.id, action="note"
            )
        )
        assert code is ErrorCode.FORBIDDEN

    async def test_bad_proposals(self, seeded: Mesh) -> None:
        assert await denied(propose(seeded, "alice", "alice")) is ErrorCode.BAD_REQUEST
        assert await denied(propose(seeded, "alice", "ghost")) is ErrorCode.NOT_FOUND
        await propose(seeded)
        assert await denied(propose(seeded, "bob", "alice")) is ErrorCode.CONFLICT


class TestOptimise:
    async def test_engine_proposals_wait_for_curation(
        self, seeded: Mesh, events: list[EventBase]
    ) -> None:
        out = await seeded.call(
            m.OPTIMISE_INTRODUCTIONS, seeded.broker(), capacity=1, min_score=0.01
        )
        pairs = {frozenset((p.a, p.b)) for p in out.proposals}
        assert {frozenset(("alice", "bob")), frozenset(("carol", "dave"))} <= pairs
        assert (
            out.solver == "highs-milp"
            and out.gap <= 0.01
            and out.objective <= out.upper_bound + 1e-9
        )
        counts: dict[str, int] = {}
        for p in out.proposals:
            for x in (p.a, p.b):
                counts[x] = counts.get(x, 0) + 1
        assert max(counts.values()) == 1  # capacity
        ab = next(p for p in out.proposals if {p.a, p.b} == {"alice", "bob"})
        # Hidden from the two people until a broker approves it.
        assert (await seeded.call(m.LIST_INTRODUCTIONS, seeded.token("alice"))).introductions == []
        code = await denied(
            seeded.call(m.ACCEPT_INTRODUCTION, seeded.token("alice"), introduction=ab.introduction)
        )
        assert code is ErrorCode.NOT_FOUND
        approved = await seeded.call(
            m.CURATE_INTRODUCTION,
            seeded.broker(),
            introduction=ab.introduction,
            action="approve",
            note="great fit",
        )
        assert (approved.status, approved.note, approved.proposed_by) == (
            "approved",
            "great fit",
            "engine",
        )
        assert [
            i.id
            for i in (await seeded.call(m.LIST_INTRODUCTIONS, seeded.token("alice"))).introductions
        ] == [ab.introduction]
        again = await seeded.call(
            m.OPTIMISE_INTRODUCTIONS, seeded.broker(), capacity=3, min_score=0.01
        )
        assert not {frozenset((p.a, p.b)) for p in again.proposals} & pairs  # never proposed twice

    async def test_an_empty_ecosystem_has_nothing_to_propose(self, mesh: Any) -> None:
        out = await mesh.call(m.OPTIMISE_INTRODUCTIONS, mesh.broker())
        assert (out.proposals, out.viable_people, out.solver) == ([], 0, "empty")

    async def test_dry_run_creates_nothing(self, seeded: Mesh) -> None:
        out = await seeded.call(
            m.OPTIMISE_INTRODUCTIONS, seeded.broker(), dry_run=True, min_score=0.01
        )
        assert out.proposals and all(p.introduction is None for p in out.proposals)
        assert (await seeded.call(m.LIST_INTRODUCTIONS, seeded.broker())).introductions == []

    async def test_reject(self, seeded: Mesh) -> None:
        out = await seeded.call(
            m.OPTIMISE_INTRODUCTIONS, seeded.broker(), capacity=1, min_score=0.01
        )
        first = out.proposals[0].introduction
        rejected = await seeded.call(
            m.CURATE_INTRODUCTION, seeded.broker(), introduction=first, action="reject"
        )
        assert rejected.status == "rejected"
        code = await denied(
            seeded.call(
                m.CURATE_INTRODUCTION, seeded.broker(), introduction=first, action="approve"
            )
        )
        assert code is ErrorCode.CONFLICT


async def _wait(cond: Callable[[], bool | Awaitable[bool]]) -> None:
    from tests.matching.conftest import until

    await until(cond)
