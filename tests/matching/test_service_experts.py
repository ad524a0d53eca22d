"""Expert finding, a person's say and outcomes as priors, over real NATS and a real database."""

import json
from collections import Counter
from collections.abc import Awaitable
from typing import Any, Literal

import pytest

from contracts.errors import ErrorCode
from contracts.v1 import collaboration as col
from contracts.v1 import matching as m
from mesh.client import request_raw
from mesh.errors import MeshError
from tests.matching.conftest import PEOPLE, Mesh, until


async def denied(coro: Awaitable[object]) -> ErrorCode:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value.code


class TestFindExperts:
    async def test_offer_of_the_need_first_never_the_asker(self, seeded: Mesh) -> None:
        reply = await seeded.call(
            m.FIND_EXPERTS, seeded.token("alice"), text="<p>Who can do <b>haulage</b>?</p>"
        )
        ids = [e.id for e in reply.experts]
        assert ids[0] in ("bob", "erin") and "alice" not in ids
        top = reply.experts[0]
        assert 0 < top.probability < 1
        assert top.reasons and top.reasons[0].endswith("which you need")
        assert all("<" not in r for e in reply.experts for r in e.reasons)

    async def test_replies_in_threads_raise_the_chance(self, seeded: Mesh) -> None:
        ask = {"text": "kubernetes clusters please"}
        before = await seeded.call(m.FIND_EXPERTS, seeded.token("alice"), **ask)
        p0 = next(e.probability for e in before.experts if e.id == "dave")
        for i in range(3):
            data = col.ContentData(
                content_id=f"p{i}",
                kind="post",
                author="dave",
                author_partner="south",
                thread="t1",
                text="here is how",
            )
            await seeded.publish(col.ContentCreated(ecosystem=seeded.eco, data=data))
        eco = seeded.svc.store.eco(seeded.eco)
        await until(lambda: eco.people.activity.get("dave", 0) > 2.5)
        after = await seeded.call(m.FIND_EXPERTS, seeded.token("alice"), **ask)
        dave = next(e for e in after.experts if e.id == "dave")
        assert dave.probability > p0 and dave.helped > 2.5

    async def test_needs_a_token_and_text(self, seeded: Mesh) -> None:
        assert await denied(seeded.call(m.FIND_EXPERTS, None, text="x")) in (
            ErrorCode.UNAUTHENTICATED,
            ErrorCode.FORBIDDEN,
        )
        body = json.dumps({"eco": seeded.eco, "text": ""}).encode()
        raw = request_raw(seeded.nc, m.FIND_EXPERTS.subject, body, seeded.token("alice"))
        assert await denied(raw) is ErrorCode.VALIDATION_FAILED


class TestPreferences:
    async def test_opted_out_is_never_suggested_until_back_in(self, seeded: Mesh) -> None:
        def suggested(reply: m.SuggestionsReply) -> list[str]:
            return [s.id for s in reply.suggestions]

        alice = seeded.token("alice")
        assert "bob" in suggested(await seeded.call(m.PERSON_SUGGESTIONS, alice, person="alice"))
        out = await seeded.call(
            m.SET_PREFERENCES, seeded.token("bob"), person="bob", suggest_me=False
        )
        assert out.suggest_me is False and out.learn_from_me is True
        assert "bob" not in suggested(
            await seeded.call(m.PERSON_SUGGESTIONS, alice, person="alice")
        )
        experts = await seeded.call(m.FIND_EXPERTS, alice, text="cargo transport")
        assert "bob" not in [e.id for e in experts.experts]
        # bob may still ask for suggestions himself
        assert suggested(await seeded.call(m.PERSON_SUGGESTIONS, seeded.token("bob"), person="bob"))
        await seeded.call(m.SET_PREFERENCES, seeded.token("bob"), person="bob")
        assert "bob" in suggested(await seeded.call(m.PERSON_SUGGESTIONS, alice, person="alice"))

    async def test_only_the_person_sets_their_say(self, seeded: Mesh) -> None:
        code = await denied(
            seeded.call(m.SET_PREFERENCES, seeded.token("alice"), person="bob", suggest_me=False)
        )
        assert code == ErrorCode.FORBIDDEN
        assert "bob" not in seeded.svc.store.eco(seeded.eco).people.opted_out

    async def test_opt_out_survives_a_rebuild(self, seeded: Mesh) -> None:
        await seeded.call(m.SET_PREFERENCES, seeded.token("bob"), person="bob", suggest_me=False)
        await seeded.svc.store.rebuild()
        assert "bob" in seeded.svc.store.eco(seeded.eco).people.opted_out


class TestOutcomes:
    async def propose(self, mesh: Any, a: str, b: str) -> Any:
        return await mesh.call(m.PROPOSE_INTRODUCTION, mesh.broker(), a=a, b=b, note="talk")

    async def test_declines_lower_the_prior_unless_learning_is_refused(self, seeded: Mesh) -> None:
        ix = seeded.svc.store.eco(seeded.eco).people
        intro = await self.propose(seeded, "alice", "bob")
        await seeded.call(
            m.DECLINE_INTRODUCTION,
            seeded.token("bob"),
            introduction=intro.id,
            reason="no_capacity",
        )
        assert ix.priors["bob"] < 0.5
        await seeded.call(m.SET_PREFERENCES, seeded.token("bob"), person="bob", learn_from_me=False)
        assert ix.priors["bob"] == 0.5
        await seeded.svc.store.rebuild()
        assert seeded.svc.store.eco(seeded.eco).people.priors.get("bob", 0.5) == 0.5

    async def test_already_knowing_each_other_is_no_verdict(self, seeded: Mesh) -> None:
        intro = await self.propose(seeded, "carol", "dave")
        await seeded.call(
            m.DECLINE_INTRODUCTION,
            seeded.token("dave"),
            introduction=intro.id,
            reason="already_know",
        )
        assert seeded.svc.store.eco(seeded.eco).people.priors["dave"] == 0.5

    async def test_the_plan_reports_calibrated_chances(self, seeded: Mesh) -> None:
        reply = await seeded.call(m.OPTIMISE_INTRODUCTIONS, seeded.broker(), dry_run=True)
        assert reply.proposals
        for p in reply.proposals:
            assert 0 < p.probability < 1
        assert reply.objective == pytest.approx(sum(p.probability for p in reply.proposals))


class TestForumBehaviour:
    async def test_threads_and_replies_are_evidence_and_favours_kept_and_refused(
        self, seeded: Mesh
    ) -> None:
        async def say(
            cid: str,
            kind: Literal["thread", "post", "note"],
            author: str,
            thread: str | None = None,
            title: str = "",
            text: str = "",
            workspace: str | None = None,
        ) -> None:
            data = col.ContentData(
                content_id=cid,
                kind=kind,
                author=author,
                author_partner=PEOPLE[author][0],
                thread=thread,
                workspace=workspace,
                title=title,
                text=text,
            )
            await seeded.publish(col.ContentCreated(ecosystem=seeded.eco, data=data))

        store = seeded.svc.store
        await say("t1", "thread", "alice", title="Descaling an espresso machine", text="slow")
        await say("p1", "post", "carol", thread="t1", text="<p>Use citric acid</p>")
        await say("t2", "thread", "bob", title="Merger plans", text="secret", workspace="w1")
        await say("p2", "post", "carol", thread="t2", text="secret reply", workspace="w1")
        await until(
            lambda: store.eco(seeded.eco).favours.get("carol", Counter[str]()).get("bob") == 1
        )

        def forum(person: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
            p = store.eco(seeded.eco).people.profile(person)
            assert p is not None
            return p.asked, p.helped

        assert forum("alice")[0] == ("Descaling an espresso machine\nslow",)
        assert forum("carol")[1] == ("Descaling an espresso machine", "<p>Use citric acid</p>")
        assert forum("bob") == ((), ())  # workspace words never become evidence

        reply = await seeded.call(m.FIND_EXPERTS, seeded.token("erin"), text="espresso descaling")
        carol = reply.experts[0]
        assert carol.id == "carol"
        assert "Carol has helped others with descaling and espresso" in carol.reasons

        ask = {"text": "business intelligence"}
        owed = await seeded.call(m.FIND_EXPERTS, seeded.token("carol"), **ask)
        plain = await seeded.call(m.FIND_EXPERTS, seeded.token("dave"), **ask)
        alice = next(e for e in owed.experts if e.id == "alice")
        assert alice.probability > next(e for e in plain.experts if e.id == "alice").probability
        assert "You helped Alice before" in alice.reasons

        await store.rebuild()
        assert forum("carol")[1] and store.eco(seeded.eco).favours["carol"]["alice"] == 1

        carol_token = seeded.token("carol")
        await seeded.call(m.SET_PREFERENCES, carol_token, person="carol", learn_from_me=False)
        assert forum("carol") == ((), ()) and "carol" not in store.eco(seeded.eco).favours
        await store.rebuild()
        assert forum("carol") == ((), ())
        await seeded.call(m.SET_PREFERENCES, carol_token, person="carol")
        assert forum("carol")[1] and store.eco(seeded.eco).favours["carol"]["bob"] == 1


class TestRefit:
    async def test_weights_refit_on_forum_outcomes_serve_expert_finding(self, seeded: Mesh) -> None:
        from datetime import UTC, datetime, timedelta

        from services.matching import repository as repo
        from services.matching.engine import expert, learn
        from services.matching.engine.expert import find_experts
        from services.matching.engine.model import Asker

        blind = learn.Model(expert.FEATURES, (0.0, 0.0, 0.0, 1.0, 0.0, 0.0), -4.0)
        words = ("espresso", "roasting", "kettle", "milk", "grinder")
        people = list(PEOPLE)
        start = datetime.now(UTC) - timedelta(hours=100)
        async with seeded.svc.db.transaction() as s:
            for i in range(90):
                at = start + timedelta(hours=i)
                helper, asker = people[i % 5], people[(i + 1 + i // 5 % 4) % 5]
                word = words[i % 5]
                await repo.add_thread(
                    s, seeded.eco, f"t{i}", asker, True, f"A {word} question", "", at
                )
                await repo.add_help(
                    s,
                    seeded.eco,
                    f"p{i}",
                    helper,
                    at + timedelta(minutes=1),
                    f"t{i}",
                    f"{word} tip",
                )
        store = seeded.svc.store
        got = await store.refit(seeded.eco, prior=blind)
        eco = store.eco(seeded.eco)
        assert got.adopted and got.model.coef[0] > 0.5 and eco.expert == got.model
        await store.sync()  # the forum evidence reaches the index
        reply = await seeded.call(m.FIND_EXPERTS, seeded.token("erin"), text="milk")
        top = reply.experts[0]
        assert top.id == people[3]
        ctx = Asker(exclude={"erin"}, helped={k: float(v) for k, v in eco.favours["erin"].items()})
        ours = find_experts(eco.people, "milk", 1, None, ctx, eco.expert)[0]
        prior = find_experts(eco.people, "milk", 1, None, ctx, expert.DEFAULT)[0]
        assert top.probability == pytest.approx(ours.probability, abs=1e-6)
        assert abs(prior.probability - ours.probability) > 1e-3
