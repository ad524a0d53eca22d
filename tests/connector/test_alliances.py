"""Grants and calls across an alliance: a partner of acme grants an operation to a partner
of an allied ecosystem, which calls it with its token exchanged into acme; both
ecosystems' audits show the call; the allied catalogue lists it; every denial."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from nats.aio.client import Client
from sqlalchemy import event

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from contracts.v1.alliances import AllianceStatus
from mesh.errors import MeshError
from tests.connector.allied import OTHER, PARTS, Alliance, terms
from tests.connector.backends import BackendState
from tests.connector.conftest import Mesh, declare, register
from tests.support.tokens import TokenFactory

OP = "fabrikam.stock"
ITEM = {"item_id": "42"}


async def refused(coro: Awaitable[object], code: ErrorCode, says: str = "") -> MeshError:
    with pytest.raises(MeshError) as err:
        await coro
    assert err.value.code is code, err.value
    assert says in (err.value.detail or ""), err.value.detail
    return err.value


@pytest.fixture
async def ally(nc: Client, tokens: TokenFactory, connector: Any) -> Alliance:
    return Alliance(nc, tokens, connector)


@pytest.fixture
async def stock(mesh: Mesh, backend: tuple[str, BackendState], loopback_allowed: None) -> None:
    """fabrikam (acme) declares a private operation on its back-end."""
    url, _ = backend
    await register(mesh, url)
    await declare(mesh, "stock", "/items/{item_id}")


async def grant_across(mesh: Mesh, ally: Alliance, grantee: str | None = PARTS, **kw: Any) -> Any:
    body = {"operation": OP, "grantee": grantee, "grantee_eco": ally.b, **kw}
    return await mesh(c.CREATE_GRANT, "fatima", body)


async def invoke_across(ally: Alliance, token: str | None = None) -> c.InvokeReply:
    reply: c.InvokeReply = await ally.in_acme(
        c.INVOKE, {"operation": OP, "input": ITEM}, token=token
    )
    return reply


class TestGrantsAcross:
    async def test_granted_called_audited_and_listed_on_both_sides(
        self, mesh: Mesh, ally: Alliance, stock: None
    ) -> None:
        await ally.change(AllianceStatus.ACTIVE)
        grant = await grant_across(mesh, ally, rate_limit_per_minute=100)
        assert (grant.grantee, grant.grantee_eco, grant.active) == (PARTS, ally.b, True)

        reply = await invoke_across(ally)
        assert reply.status == 200 and reply.output["id"] == "42"

        # acme's audit: the owner sees who called from where; acme's other partners do not
        mine = await mesh(c.AUDIT, "fatima", {"operation": OP})
        [record] = [r for r in mine.items if r.id == reply.audit_id]
        assert (record.owner_eco, record.owner_partner) == ("acme", "fabrikam")
        assert (record.caller_eco, record.caller_partner, record.outcome) == (ally.b, PARTS, "ok")
        assert reply.audit_id not in {r.id for r in (await mesh(c.AUDIT, "carlos", {})).items}
        assert reply.audit_id in {r.id for r in (await mesh(c.AUDIT, "olivia", {})).items}

        # the caller's ecosystem's audit, through its own route: its partner and operators
        theirs = await ally.at_home(c.AUDIT, {})
        assert [(r.id, r.owner_eco, r.caller_eco) for r in theirs.items] == [
            (reply.audit_id, "acme", ally.b)
        ]
        other = await ally.at_home(c.AUDIT, {}, ally.home_token("oscar", OTHER))
        assert other.items == []
        operator = ally.home_token("otto", "gl-hq", roles=[Role.OPERATOR])
        assert [r.id for r in (await ally.at_home(c.AUDIT, {}, operator)).items] == [reply.audit_id]

        # the allied catalogue lists it with its owner's ecosystem, to the grantee only
        listed = await ally.at_home(c.CATALOGUE, {})
        assert [(o.id, o.ecosystem, o.ecosystem_name, o.granted) for o in listed.items] == [
            (OP, "acme", "Acme", True)
        ]
        assert listed.items[0].backend is None  # the owner's back-end stays the owner's
        assert (await ally.at_home(c.CATALOGUE, {"q": "nothing-like-it"})).items == []
        assert (await ally.at_home(c.CATALOGUE, {}, ally.home_token("o", OTHER))).items == []
        # acme's own catalogue is unchanged for its partners
        assert OP not in {o.id for o in (await mesh(c.CATALOGUE, "carlos", {})).items}

    async def test_grants_need_an_active_alliance_whose_terms_allow_the_owner(
        self, mesh: Mesh, ally: Alliance, stock: None
    ) -> None:
        says = "no active alliance"
        await refused(grant_across(mesh, ally), ErrorCode.CONFLICT, says)  # never allied
        await ally.change(AllianceStatus.PROPOSED)
        await refused(grant_across(mesh, ally), ErrorCode.CONFLICT, says)
        await ally.change(AllianceStatus.ACTIVE, terms(partners=["contoso"]))
        await refused(grant_across(mesh, ally), ErrorCode.FORBIDDEN, "do not let fabrikam")
        await ally.change(AllianceStatus.ACTIVE, terms(partners=["*"]))
        await refused(grant_across(mesh, ally, grantee=None), ErrorCode.BAD_REQUEST, "one partner")
        # only the owner's admins grant, across as within
        body = {"operation": OP, "grantee": PARTS, "grantee_eco": ally.b}
        await refused(mesh(c.CREATE_GRANT, "felix", body), ErrorCode.FORBIDDEN)
        assert (await grant_across(mesh, ally)).active
        await ally.change(AllianceStatus.SUSPENDED, terms(partners=["*"]))
        await refused(grant_across(mesh, ally), ErrorCode.CONFLICT, says)
        await ally.change(AllianceStatus.ENDED, terms(partners=["*"]))
        await refused(grant_across(mesh, ally), ErrorCode.CONFLICT, says)
        # naming its own ecosystem is a grant within it
        own = await mesh(c.CREATE_GRANT, "fatima", {**body, "grantee_eco": "acme"})
        assert (own.grantee, own.grantee_eco) == (PARTS, None)


class TestCallsAcross:
    async def test_the_alliance_is_read_on_every_call(
        self, mesh: Mesh, ally: Alliance, stock: None, connector: Any
    ) -> None:
        await ally.change(AllianceStatus.ACTIVE)
        grant = await grant_across(mesh, ally)
        before = ally.exchanged()  # exchanged while the alliance was active
        assert (await invoke_across(ally, before)).status == 200  # and now in the plan cache
        plans = connector.connector.plans
        assert ("acme", OP) in plans._entries

        says = "no active alliance between acme and"
        await ally.change(AllianceStatus.SUSPENDED)
        assert ("acme", OP) not in plans._entries  # the alliance's commit dropped the plans
        await mesh(c.INVOKE, "fatima", {"operation": OP, "input": ITEM})  # cached again
        assert ("acme", OP) in plans._entries  # with the grant across in it: still refused
        await refused(invoke_across(ally, before), ErrorCode.FORBIDDEN, says)
        listed = await mesh(c.LIST_GRANTS, "fatima", {"operation": OP})
        assert [(g.id, g.active, g.revoked_at) for g in listed.items] == [(grant.id, False, None)]
        assert (await ally.at_home(c.CATALOGUE, {})).items == []

        await ally.change(AllianceStatus.ACTIVE)  # resumed: the kept grant applies again
        assert (await invoke_across(ally, before)).status == 200
        assert (await mesh(c.LIST_GRANTS, "fatima", {"operation": OP})).items[0].active

        # terms that no longer let fabrikam grant, or give no invoke scope, refuse the call
        await ally.change(AllianceStatus.ACTIVE, terms(partners=["contoso"]))
        await refused(invoke_across(ally, before), ErrorCode.FORBIDDEN, "do not let fabrikam")
        await ally.change(AllianceStatus.ACTIVE, terms(scopes=[Scope.CONNECTOR_READ]))
        await refused(invoke_across(ally, before), ErrorCode.FORBIDDEN, "connector:invoke")

        await ally.change(AllianceStatus.ENDED)
        await refused(invoke_across(ally, before), ErrorCode.FORBIDDEN, says)
        await refused(invoke_across(ally), ErrorCode.FORBIDDEN, says)
        denied = [r for r in (await mesh(c.AUDIT, "fatima", {})).items if r.outcome == "denied"]
        assert len(denied) == 5 and {r.caller_eco for r in denied} == {ally.b}

    async def test_calls_within_an_ecosystem_never_read_the_alliances(
        self, mesh: Mesh, ally: Alliance, stock: None, connector: Any
    ) -> None:
        await ally.change(AllianceStatus.ACTIVE)
        await grant_across(mesh, ally)
        await mesh(c.CREATE_GRANT, "fatima", {"operation": OP, "grantee": "contoso"})
        statements: list[str] = []

        def seen(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            statements.append(sql)

        engine = connector.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            for who in ("carlos", "fatima"):  # granted within acme, and the owner
                await mesh(c.INVOKE, who, {"operation": OP, "input": ITEM})
            within = list(statements)
            await invoke_across(ally)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert within and not [q for q in within if "mesh_alliances" in q]
        assert [q for q in statements[len(within) :] if "mesh_alliances" in q]

    async def test_only_the_grantee_of_the_allied_ecosystem_may_call(
        self, mesh: Mesh, ally: Alliance, stock: None, tokens: TokenFactory
    ) -> None:
        await ally.change(AllianceStatus.ACTIVE)
        await grant_across(mesh, ally)
        # another partner of the allied ecosystem: the operation is not there for it
        await refused(invoke_across(ally, ally.exchanged("oscar", OTHER)), ErrorCode.NOT_FOUND)
        # the same partner name from a non-allied ecosystem
        stranger = ally.exchanged("sam", PARTS, home="initech")
        await refused(invoke_across(ally, stranger), ErrorCode.NOT_FOUND)
        # a partner of acme that happens to have the grantee's name: the grant is not its
        local = tokens.mint(eco="acme", partner=PARTS, roles=[Role.MEMBER], sub="lena")
        await refused(invoke_across(ally, local), ErrorCode.NOT_FOUND)
        # an exchanged token without the invoke scope
        await refused(
            invoke_across(ally, ally.exchanged(scope="connector:read")), ErrorCode.FORBIDDEN
        )
        # a token of the allied ecosystem itself, at its own route: no such operation there
        await refused(ally.at_home(c.INVOKE, {"operation": OP, "input": ITEM}), ErrorCode.NOT_FOUND)
        # a revoked grant is refused like within an ecosystem
        grant = (await mesh(c.LIST_GRANTS, "fatima", {"operation": OP})).items[0]
        await mesh(c.REVOKE_GRANT, "fatima", {"operation": OP, "grant": grant.id})
        await refused(invoke_across(ally), ErrorCode.FORBIDDEN, "revoked")

    async def test_an_exchanged_token_reaches_only_what_was_granted_in_acme(
        self, mesh: Mesh, ally: Alliance, stock: None
    ) -> None:
        await ally.change(AllianceStatus.ACTIVE)
        await grant_across(mesh, ally)
        await declare(mesh, "public", "/items/{item_id}", visibility="ecosystem")
        seen = await ally.in_acme(c.GET_OPERATION, {"operation": OP})
        assert seen.granted and seen.backend is None
        await refused(
            ally.in_acme(c.GET_OPERATION, {"operation": "fabrikam.public"}), ErrorCode.NOT_FOUND
        )
        await refused(
            ally.in_acme(c.INVOKE, {"operation": "fabrikam.public", "input": ITEM}),
            ErrorCode.NOT_FOUND,
        )
        for op, body in [
            (c.CATALOGUE, {}),
            (c.AUDIT, {}),
            (c.LIST_FLOWS, {}),
            (c.START_FLOW, {"name": "f", "steps": [{"name": "a", "operation": OP}]}),
        ]:
            await refused(ally.in_acme(op, body), ErrorCode.FORBIDDEN, "own ecosystem")
