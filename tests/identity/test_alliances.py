"""Alliances between ecosystems through identity's admin API: the lifecycle, who may do
what (and who may not), the audit trail both operators read, the members' list of
allies, and the ``AllianceChanged`` events on the real stream."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.client import Client

from contracts.v1.alliances import AllianceChanged, DirectionTerms, Sharing
from identity.domain import alliances
from tests.identity.alliance_support import World, default_terms, make_world
from tests.identity.conftest import IdP
from tests.support.events import first_event


@pytest.fixture(scope="module")
async def world(idp: IdP) -> World:
    """acme, globex and initech with their operators' tokens and back-ends."""
    return await make_world(idp)


def _problem(resp: Any, status: int, *words: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    detail = resp.json()["detail"]
    for word in words:
        assert word in detail, detail


class TestLifecycle:
    async def test_propose_counter_accept_suspend_resume_end(self, world: World) -> None:
        alliance = await world.propose("acme", "globex")
        seen = (await world.call("globex", "GET", f"/{alliance}")).json()
        assert seen["status"] == "proposed" and seen["offered_by"] == "acme"
        assert seen["ecosystems"] == ["acme", "globex"] and seen["ally"] == "acme"
        assert seen["actions"] == ["counter", "accept", "reject", "end"]
        assert seen["names"] == {"acme": "ACME Partner Network", "globex": "Globex Brand"}
        mine = (await world.call("acme", "GET", f"/{alliance}")).json()
        assert mine["actions"] == ["counter", "end"]

        terms = {"globex": {"share": "people", "roles": ["member", "broker"], "scopes": []}}
        resp = await world.call("globex", "POST", f"/{alliance}/counter", body={"terms": terms})
        assert resp.status_code == 200, resp.text
        countered = resp.json()
        assert countered["offered_by"] == "globex" and countered["version"] == 2
        assert countered["terms"]["globex"]["roles"] == ["member", "broker"]
        assert countered["terms"]["acme"]["share"] == "people"  # the side left out is kept

        accepted = (await world.act("acme", alliance, "accept")).json()
        assert accepted["status"] == "active" and accepted["version"] == 3
        assert accepted["active_since"] is not None
        suspended = (await world.act("globex", alliance, "suspend")).json()
        assert suspended["status"] == "suspended" and suspended["suspended_by"] == "globex"
        resumed = (await world.act("globex", alliance, "resume")).json()
        assert resumed["status"] == "active" and resumed["suspended_by"] is None
        ended = (await world.act("acme", alliance, "end")).json()
        assert ended["status"] == "ended" and ended["version"] == 6 and ended["actions"] == []

        detail = (await world.call("acme", "GET", f"/{alliance}")).json()
        trail = [(a["action"], a["eco"], a["status"], a["version"]) for a in detail["audit"]]
        assert trail == [
            ("proposed", "acme", "proposed", 1),
            ("countered", "globex", "proposed", 2),
            ("accepted", "acme", "active", 3),
            ("suspended", "globex", "suspended", 4),
            ("resumed", "globex", "active", 5),
            ("ended", "acme", "ended", 6),
        ]
        assert detail["audit"][1]["terms"]["globex"]["roles"] == ["member", "broker"]
        assert (await world.call("globex", "GET", f"/{alliance}")).json()["audit"] == detail[
            "audit"
        ]

    async def test_both_sides_list_it_and_a_new_one_may_follow_an_ended_one(
        self, world: World
    ) -> None:
        first = await world.propose("globex", "initech")
        assert (await world.act("initech", first, "reject")).json()["status"] == "rejected"
        second = await world.propose("initech", "globex")
        for eco in ("globex", "initech"):
            listed = {a["alliance"]: a["status"] for a in (await world.call(eco, "GET", "")).json()}
            assert listed[first] == "rejected" and listed[second] == "proposed"
        only = (await world.call("globex", "GET", "?status=proposed")).json()
        assert [a["alliance"] for a in only if a["ally"] == "initech"] == [second]
        await world.act("globex", second, "end")

    async def test_operators_see_whom_they_may_propose_to(self, world: World, idp: IdP) -> None:
        resp = await world.call("globex", "GET", "/peers")
        assert resp.status_code == 200, resp.text
        # every other enabled ecosystem: the module's and the demo seed's second one
        assert {p["ecosystem"]: p["name"] for p in resp.json()} == {
            "acme": "ACME Partner Network",
            "initech": "Initech Brand",
            "meridian": "Meridian Trade Network",
        }
        member = (await idp.person_tokens("noah"))["access_token"]
        _problem(await world.call("acme", "GET", "/peers", member), 403)

    async def test_a_seed_agrees_one_in_one_step(self, world: World, idp: IdP) -> None:
        await world.end_open("globex", "initech")
        terms = {"globex": DirectionTerms(share=Sharing.PEOPLE)}
        made = await idp.rt.tx(lambda tx: alliances.agree(tx, "globex", "initech", terms, "seed"))
        assert made.state.status.value == "active" and made.state.version == 2
        seen = (await world.call("initech", "GET", f"/{made.state.alliance}")).json()
        assert [a["action"] for a in seen["audit"]] == ["proposed", "accepted"]
        assert seen["terms"]["globex"]["share"] == "people"
        assert seen["terms"]["initech"]["share"] == "nothing"
        await world.act("initech", made.state.alliance, "end")

    async def test_withdrawing_a_proposal_ends_it(self, world: World) -> None:
        alliance = await world.propose("acme", "initech")
        assert (await world.act("acme", alliance, "end")).json()["status"] == "ended"


class TestDenials:
    async def test_a_member_or_back_end_is_not_an_operator(self, world: World, idp: IdP) -> None:
        member = (await idp.person_tokens("noah"))["access_token"]
        _problem(await world.call("acme", "GET", "", member), 403, "operators")
        _problem(await world.call("acme", "POST", "", member, {"peer": "globex"}), 403, "operators")
        backend = await world.client_token("acme", "acme-backend")
        _problem(await world.call("acme", "GET", "", backend), 403)
        _problem(await world.call("acme", "GET", "", ""), 401)

    async def test_another_ecosystems_operator_token_is_refused(self, world: World) -> None:
        # gina's globex token at acme's routes: not a token of acme's issuer
        _problem(await world.call("acme", "GET", "", world.operators["globex"]), 401)

    async def test_a_third_ecosystem_does_not_see_it(self, world: World) -> None:
        alliance = await world.propose("acme", "globex")
        _problem(await world.call("initech", "GET", f"/{alliance}"), 404, "alliance")
        for action in ("accept", "reject", "suspend", "resume", "end"):
            _problem(await world.act("initech", alliance, action), 404, "alliance")
        listed = (await world.call("initech", "GET", "")).json()
        assert alliance not in {a["alliance"] for a in listed}
        assert (await world.call("globex", "GET", f"/{alliance}")).json()["status"] == "proposed"
        await world.act("acme", alliance, "end")

    async def test_only_the_side_that_did_not_offer_accepts_or_rejects(self, world: World) -> None:
        alliance = await world.propose("acme", "globex")
        _problem(await world.act("acme", alliance, "accept"), 403, "other side")
        _problem(await world.act("acme", alliance, "reject"), 403, "other side")
        body = {"terms": default_terms("globex", "acme")}
        assert (await world.call("globex", "POST", f"/{alliance}/counter", body=body)).is_success
        _problem(await world.act("globex", alliance, "accept"), 403, "globex's own")
        assert (await world.act("acme", alliance, "accept")).json()["status"] == "active"
        await world.act("acme", alliance, "end")

    async def test_wrong_state_transitions_are_conflicts(self, world: World) -> None:
        alliance = await world.propose("acme", "globex")
        _problem(await world.act("globex", alliance, "suspend"), 409, "proposed", "active")
        _problem(await world.act("globex", alliance, "resume"), 409, "suspended")
        await world.act("globex", alliance, "accept")
        _problem(await world.act("globex", alliance, "accept"), 409, "is active")
        counter = {"terms": default_terms("acme", "globex")}
        _problem(await world.call("acme", "POST", f"/{alliance}/counter", body=counter), 409)
        await world.act("acme", alliance, "end")
        _problem(await world.act("globex", alliance, "accept"), 409, "is ended")
        _problem(await world.call("globex", "POST", f"/{alliance}/counter", body=counter), 409)
        _problem(await world.act("globex", alliance, "end"), 409, "is ended")
        _problem(await world.act("globex", alliance, "resume"), 409, "is ended")

    async def test_only_the_side_that_suspended_resumes(self, world: World) -> None:
        alliance = await world.active("acme", "globex")
        await world.act("acme", alliance, "suspend")
        seen = (await world.call("globex", "GET", f"/{alliance}")).json()
        assert seen["actions"] == ["end"]
        _problem(await world.act("globex", alliance, "resume"), 403, "acme suspended")
        _problem(await world.act("globex", alliance, "suspend"), 409, "suspended")
        assert (await world.act("acme", alliance, "resume")).json()["status"] == "active"
        await world.act("globex", alliance, "end")

    async def test_propose_to_itself_an_unknown_ecosystem_or_twice(self, world: World) -> None:
        _problem(await world.call("acme", "POST", "", body={"peer": "acme"}), 422, "different")
        _problem(await world.call("acme", "POST", "", body={"peer": "nowhere"}), 404, "nowhere")
        _problem(await world.call("acme", "POST", "", body={"peer": "Not A Slug"}), 422)
        alliance = await world.propose("acme", "globex")
        _problem(await world.call("acme", "POST", "", body={"peer": "globex"}), 409, alliance)
        _problem(await world.call("globex", "POST", "", body={"peer": "acme"}), 409, "already")
        await world.act("globex", alliance, "end")

    @pytest.mark.parametrize(
        "terms",
        [
            {"acme": {"roles": ["operator"]}},
            {"acme": {"scopes": ["admin"]}},
            {"acme": {"scopes": ["no:such"]}},
            {"acme": {"share": "everything"}},
            {"acme": {"connector_partners": ["*", "acme-hq"]}},
            {"initech": {"share": "people"}},
        ],
    )
    async def test_unsound_terms_are_refused(self, world: World, terms: dict[str, Any]) -> None:
        await world.end_open("acme", "globex")
        resp = await world.call("acme", "POST", "", body={"peer": "globex", "terms": terms})
        assert resp.status_code == 422, resp.text
        listed = (await world.call("acme", "GET", "?status=proposed")).json()
        assert not [a for a in listed if a["ally"] == "globex"]  # nothing written


class TestAllies:
    async def test_members_read_their_active_allies_only(self, world: World, idp: IdP) -> None:
        await world.end_open("acme", "initech")
        alliance = await world.active("acme", "globex")
        pending = await world.propose("acme", "initech")
        member = (await idp.person_tokens("noah"))["access_token"]
        resp = await idp.http.get(
            world.url("acme", "/alliances"), headers={"Authorization": f"Bearer {member}"}
        )
        assert resp.status_code == 200, resp.text
        allies = resp.json()["allies"]
        assert [(a["alliance"], a["ecosystem"], a["name"]) for a in allies] == [
            (alliance, "globex", "Globex Brand")
        ]
        assert allies[0]["shares"]["share"] == "companies"  # what globex shares with acme
        assert allies[0]["receives"]["share"] == "people"
        resp = await idp.http.get(world.url("acme", "/alliances"))
        assert resp.status_code == 401
        await world.act("acme", alliance, "end")
        await world.act("acme", pending, "end")
        resp = await idp.http.get(
            world.url("acme", "/alliances"), headers={"Authorization": f"Bearer {member}"}
        )
        assert resp.json()["allies"] == []


class TestEvents:
    async def test_every_change_is_published_with_a_growing_version(
        self, world: World, nc: Client
    ) -> None:
        alliance = await world.propose("acme", "globex")
        await world.act("globex", alliance, "accept")
        await world.act("globex", alliance, "suspend")
        await world.act("acme", alliance, "end")
        subject = "pm.v1.evt.acme.identity.alliance_changed"
        for version, status in enumerate(("proposed", "active", "suspended", "ended"), 1):

            def wanted(event: Any, v: int = version) -> bool:
                return (
                    isinstance(event, AllianceChanged)
                    and event.data.alliance == alliance
                    and event.data.version == v
                )

            event = await first_event(nc, subject, wanted, f"version {version} of {alliance}")
            assert event.data.status.value == status and event.subject == alliance
        audit = "pm.v1.evt.globex.identity.audit"
        seen = await first_event(
            nc,
            audit,
            lambda e: e.data.action == "admin.alliance.ended" and e.data.target == alliance,
            "globex's audit event of the end",
        )
        assert seen.data.details["by"] == "acme"
