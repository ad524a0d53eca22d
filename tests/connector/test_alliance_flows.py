"""A durable flow of an allied ecosystem's partner that calls an operation of acme granted
to it across the alliance: checked at start, run, audited on both sides, and failed (then
compensated) when the alliance ends while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from nats.aio.client import Client

from contracts.claims import Role
from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from contracts.v1.alliances import AllianceStatus
from tests.connector.allied import PARTS, Alliance
from tests.connector.backends import BackendState, backend_app
from tests.connector.conftest import Mesh
from tests.connector.test_alliances import refused
from tests.support.infra import serve_app
from tests.support.tokens import TokenFactory

ORDER = "fabrikam.place-order"
STEPS: list[dict[str, Any]] = [
    {
        "name": "reserve",
        "operation": f"{PARTS}.reserve",
        "input": {"qty": "$input.qty"},
        "compensate": {
            "operation": f"{PARTS}.release",
            "input": {"reservation": "$steps.reserve.output.ref"},
        },
    },
    {
        "name": "order",
        "operation": ORDER,
        "ecosystem": "acme",
        "input": {"sku": "$input.sku", "reservation": "$steps.reserve.output.ref"},
    },
]

Backends = dict[str, BackendState]


@pytest.fixture
async def allied(
    nc: Client, tokens: TokenFactory, connector: Any, mesh: Mesh
) -> AsyncIterator[tuple[Alliance, Backends]]:
    """fabrikam's orders in acme, granted to gl-parts of the allied ecosystem, whose own
    stock back-end reserves and releases; the alliance active."""
    states = {"acme": BackendState(), "b": BackendState()}
    ally = Alliance(nc, tokens, connector)
    async with (
        serve_app(backend_app(states["acme"])) as a,
        serve_app(backend_app(states["b"])) as b,
    ):
        await mesh(c.SET_ALLOWLIST, "olivia", {"entries": ["127.0.0.1/32"]})
        fatima = lambda op, body: mesh(op, "fatima", body)  # noqa: E731
        await _backend(fatima, "fabrikam", a, ["place-order", "cancel-order"])
        operator = ally.home_token("otto", "gl-hq", roles=[Role.OPERATOR])
        await ally.at_home(c.SET_ALLOWLIST, {"entries": ["127.0.0.1/32"]}, operator)
        await _backend(ally.at_home, PARTS, b, ["reserve", "release"])
        await ally.change(AllianceStatus.ACTIVE)
        body = {"operation": ORDER, "grantee": PARTS, "grantee_eco": ally.b}
        await mesh(c.CREATE_GRANT, "fatima", body)
        yield ally, states


async def _backend(at: Any, partner: str, url: str, ops: list[str]) -> None:
    paths = {"place-order": "/orders", "cancel-order": "/cancel", "reserve": "/reserve"}
    paths["release"] = "/cancel"
    await at(c.REGISTER_BACKEND, {"partner": partner, "name": "erp", "base_url": url})
    for name in ops:
        await at(
            c.DECLARE_OPERATION,
            {
                "partner": partner,
                "backend": "erp",
                "name": name,
                "method": "POST",
                "path": paths[name],
            },
        )


async def start(ally: Alliance, steps: list[dict[str, Any]] = STEPS) -> c.FlowReply:
    body = {"name": "reserve-then-order", "input": {"sku": "widget", "qty": 3}, "steps": steps}
    reply: c.FlowReply = await ally.at_home(c.START_FLOW, body)
    return reply


async def finished(ally: Alliance, flow_id: str) -> c.FlowReply:
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        flow: c.FlowReply = await ally.at_home(c.GET_FLOW, {"flow": flow_id})
        if flow.status not in ("running", "compensating"):
            return flow
        assert asyncio.get_running_loop().time() < deadline, "the flow did not finish in time"
        await asyncio.sleep(0.1)


class TestFlowsAcross:
    async def test_a_flow_calls_an_allied_operation_and_both_audits_show_it(
        self, mesh: Mesh, allied: tuple[Alliance, Backends]
    ) -> None:
        ally, states = allied
        flow = await finished(ally, (await start(ally)).id)
        assert flow.status == "completed", flow.error
        assert [(s.operation, s.ecosystem) for s in flow.steps] == [
            (f"{PARTS}.reserve", None),
            (ORDER, "acme"),
        ]
        assert flow.steps[1].output["reservation"] == "reservation-1"
        assert states["acme"].effects == {"order": 1}
        owner = await mesh(c.AUDIT, "fatima", {"operation": ORDER})
        assert [(r.flow, r.caller_eco, r.caller_partner) for r in owner.items] == [
            (flow.id, ally.b, PARTS)
        ]
        home = await ally.at_home(c.AUDIT, {})
        assert sorted((r.operation, r.owner_eco, r.flow) for r in home.items) == [
            (ORDER, "acme", flow.id),
            (f"{PARTS}.reserve", ally.b, flow.id),
        ]

    async def test_ending_the_alliance_fails_the_step_and_compensates(
        self, allied: tuple[Alliance, Backends]
    ) -> None:
        ally, states = allied
        states["b"].gated = True
        flow = await start(ally)
        await asyncio.wait_for(states["b"].reached_gate.wait(), 20)
        await ally.change(AllianceStatus.ENDED)  # while the first step runs
        states["b"].gate.set()
        done = await finished(ally, flow.id)
        assert done.status == "compensated"
        assert [s.status for s in done.steps] == ["compensated", "failed"]
        assert "no active alliance between acme and" in (done.steps[1].error or "")
        assert "step order" in (done.error or "")
        assert states["acme"].effects == {}, "nothing ordered once the alliance ended"
        assert states["b"].effects == {"reservation": 1, "cancellation": 1}

    async def test_steps_across_are_checked_at_start(
        self, allied: tuple[Alliance, Backends]
    ) -> None:
        ally, _ = allied
        not_granted = {**STEPS[1], "operation": "fabrikam.cancel-order"}  # declared, private
        await refused(start(ally, [STEPS[0], not_granted]), ErrorCode.NOT_FOUND)
        stranger = {**STEPS[1], "ecosystem": "initech"}
        await refused(start(ally, [STEPS[0], stranger]), ErrorCode.NOT_FOUND)
        wrong_input = {**STEPS[1], "input": {"sku": "$input.nothing"}}
        await refused(start(ally, [STEPS[0], wrong_input]), ErrorCode.VALIDATION_FAILED)
        other = ally.home_token("oscar", "gl-other")
        body = {"name": "f", "input": {"sku": "w", "qty": 1}, "steps": [STEPS[1]]}
        await refused(ally.at_home(c.START_FLOW, body, other), ErrorCode.NOT_FOUND)
        await ally.change(AllianceStatus.SUSPENDED)
        await refused(start(ally), ErrorCode.FORBIDDEN, "no active alliance")
        await ally.change(AllianceStatus.ACTIVE)
        assert (await finished(ally, (await start(ally)).id)).status == "completed"
