"""Durable supply-chain flows across three partners' back-ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.errors import MeshError
from tests.connector.backends import BackendState, backend_app
from tests.connector.conftest import Mesh
from tests.support.infra import serve_app

# partner → (admin, operations: name → (path, compensation?))
PARTNERS = {
    "fabrikam": ("fatima", {"place-order": "/orders", "cancel-order": "/cancel"}),
    "contoso": ("carlos", {"reserve": "/reserve", "release": "/cancel"}),
    "northwind": ("nadia", {"ship": "/ship"}),
}

STEPS = [
    {
        "name": "order",
        "operation": "fabrikam.place-order",
        "input": {"sku": "$input.sku", "qty": "$input.qty"},
        "compensate": {
            "operation": "fabrikam.cancel-order",
            "input": {"order": "$steps.order.output.ref"},
        },
    },
    {
        "name": "reserve",
        "operation": "contoso.reserve",
        "input": {"order": "$steps.order.output.ref", "qty": "$input.qty"},
        "compensate": {
            "operation": "contoso.release",
            "input": {"reservation": "$steps.reserve.output.ref"},
        },
    },
    {
        "name": "ship",
        "operation": "northwind.ship",
        "input": {"order": "$steps.order.output.ref", "reservation": "$steps.reserve.output.ref"},
    },
]


async def setup_chain(mesh: Mesh, urls: dict[str, str], **claims: Any) -> None:
    """Each partner registers its back-end and operations; northwind is granted the others'."""
    await mesh(c.SET_ALLOWLIST, "olivia", {"entries": ["127.0.0.1/32"]}, **claims)
    for partner, (admin, ops) in PARTNERS.items():
        await mesh(
            c.REGISTER_BACKEND,
            admin,
            {"partner": partner, "name": "erp", "base_url": urls[partner]},
            **claims,
        )
        for name, path in ops.items():
            await mesh(
                c.DECLARE_OPERATION,
                admin,
                {
                    "partner": partner,
                    "backend": "erp",
                    "name": name,
                    "method": "POST",
                    "path": path,
                },
                **claims,
            )
            if partner != "northwind":
                await mesh(
                    c.CREATE_GRANT,
                    admin,
                    {"operation": f"{partner}.{name}", "grantee": "northwind"},
                    **claims,
                )


async def wait_flow(
    mesh: Mesh, flow_id: str, who: str = "nadia", timeout: float = 30.0, **claims: Any
) -> c.FlowReply:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            flow: c.FlowReply = await mesh(c.GET_FLOW, who, {"flow": flow_id}, **claims)
            if flow.status not in ("running", "compensating"):
                return flow
        except MeshError as exc:  # the connector may be restarting
            if exc.code not in (ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT):
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the flow did not finish in time")
        await asyncio.sleep(0.1)


@pytest.fixture
async def chain() -> AsyncIterator[tuple[dict[str, str], dict[str, BackendState]]]:
    """Three real back-ends (fabrikam orders, contoso stock, northwind shipping)."""
    states = {p: BackendState() for p in PARTNERS}
    async with (
        serve_app(backend_app(states["fabrikam"])) as f,
        serve_app(backend_app(states["contoso"])) as k,
        serve_app(backend_app(states["northwind"])) as n,
    ):
        yield {"fabrikam": f, "contoso": k, "northwind": n}, states


async def start(mesh: Mesh, steps: list[dict[str, Any]] = STEPS, **claims: Any) -> Any:
    return await mesh(
        c.START_FLOW,
        "nadia",
        {"name": "order-to-ship", "input": {"sku": "widget", "qty": 3}, "steps": steps},
        **claims,
    )


class TestFlows:
    async def test_flow_runs_every_step_as_its_owner(
        self, mesh: Mesh, connector: Any, chain: tuple[dict[str, str], dict[str, BackendState]]
    ) -> None:
        urls, states = chain
        await setup_chain(mesh, urls)
        flow = await wait_flow(mesh, (await start(mesh)).id)
        assert flow.status == "completed" and flow.owner_partner == "northwind"
        order, reserve, ship = (st.output for st in flow.steps)
        assert reserve["order"] == order["ref"] and ship["reservation"] == reserve["ref"]
        for st in flow.steps:  # what the portal's step list shows
            assert st.status == "done" and st.attempts == 1 and st.error is None
            assert st.started_at is not None and st.finished_at is not None
            assert st.started_at <= st.finished_at
        assert [st.operation for st in flow.steps] == [s["operation"] for s in STEPS]
        assert [st.compensation for st in flow.steps] == [
            "fabrikam.cancel-order",
            "contoso.release",
            None,
        ]
        assert [s.effects for s in states.values()] == [
            {"order": 1},
            {"reservation": 1},
            {"shipment": 1},
        ]
        audit = (await mesh(c.AUDIT, "carlos", {})).items
        assert [(a.operation, a.caller_partner, a.flow) for a in audit] == [
            ("contoso.reserve", "northwind", flow.id)
        ]

    async def test_failure_compensates_done_steps_in_reverse(
        self, mesh: Mesh, connector: Any, chain: tuple[dict[str, str], dict[str, BackendState]]
    ) -> None:
        urls, states = chain
        await setup_chain(mesh, urls)
        states["northwind"].fail_kinds.add("shipment")
        flow = await wait_flow(mesh, (await start(mesh)).id)
        assert flow.status == "compensated" and "ship" in (flow.error or "")
        assert [s.status for s in flow.steps] == ["compensated", "compensated", "failed"]
        order, reserve, ship = flow.steps
        assert ship.finished_at is not None and ship.error
        assert reserve.compensation_attempts == 1 and order.compensation_attempts == 1
        assert reserve.compensation_started_at is not None
        assert reserve.compensation_finished_at is not None
        assert order.compensation_started_at is not None
        assert order.compensation_started_at >= reserve.compensation_finished_at, "newest first"
        assert states["fabrikam"].effects == {"order": 1, "cancellation": 1}
        assert states["contoso"].effects == {"reservation": 1, "cancellation": 1}
        cancel = states["fabrikam"].by_key
        assert any(v.get("order") == flow.steps[0].output["ref"] for v in cancel.values())

    async def test_transient_failures_are_retried_before_compensating(
        self, mesh: Mesh, connector: Any, chain: tuple[dict[str, str], dict[str, BackendState]]
    ) -> None:
        urls, states = chain
        await setup_chain(mesh, urls)
        states["northwind"].fail_first["shipment"] = 2  # 503 twice, then fine
        flow = await wait_flow(mesh, (await start(mesh)).id)
        assert flow.status == "completed"
        assert states["northwind"].hits["/ship"] == 3
        assert flow.steps[2].attempts == 3 and flow.steps[2].status == "done"
        assert flow.steps[2].error is None, "the last failure is cleared once it succeeds"
        assert states["northwind"].effects == {"shipment": 1}
        assert "cancellation" not in states["fabrikam"].effects

    async def test_a_retry_under_way_is_shown_with_its_attempt_and_last_failure(
        self, mesh: Mesh, connector: Any, chain: tuple[dict[str, str], dict[str, BackendState]]
    ) -> None:
        urls, states = chain
        await setup_chain(mesh, urls)
        contoso = states["contoso"]
        contoso.gated, contoso.fail_first["reservation"] = True, 1
        flow = await start(mesh)
        await asyncio.wait_for(contoso.reached_gate.wait(), 20)
        running = await mesh(c.GET_FLOW, "nadia", {"flow": flow.id})
        assert [st.status for st in running.steps] == ["done", "running", "pending"]
        assert running.steps[1].attempts == 1 and running.steps[1].started_at is not None
        contoso.reached_gate.clear()
        contoso.gate.set()  # the first call goes on (and gets a 503) ...
        contoso.gate.clear()  # ... the second one waits at the gate
        await asyncio.wait_for(contoso.reached_gate.wait(), 20)
        retrying = (await mesh(c.GET_FLOW, "nadia", {"flow": flow.id})).steps[1]
        assert retrying.status == "retrying" and retrying.attempts == 2
        assert retrying.error and "503" in retrying.error
        contoso.gate.set()
        done = await wait_flow(mesh, flow.id)
        assert done.status == "completed" and done.steps[1].attempts == 2
        assert done.steps[1].error is None

    async def test_a_blocked_flow_does_not_hold_up_others(
        self, mesh: Mesh, connector: Any, chain: tuple[dict[str, str], dict[str, BackendState]]
    ) -> None:
        urls, states = chain
        await setup_chain(mesh, urls)
        states["contoso"].gated = True
        held = await start(mesh)
        await asyncio.wait_for(states["contoso"].reached_gate.wait(), 20)
        quick = await wait_flow(mesh, (await start(mesh, steps=STEPS[:1])).id)
        assert quick.status == "completed"
        assert (await mesh(c.GET_FLOW, "nadia", {"flow": held.id})).status == "running"
        states["contoso"].gate.set()
        assert (await wait_flow(mesh, held.id)).status == "completed"

    async def test_steps_are_authorised_as_the_owner_while_they_run(
        self, mesh: Mesh, connector: Any, chain: tuple[dict[str, str], dict[str, BackendState]]
    ) -> None:
        urls, states = chain
        await setup_chain(mesh, urls)
        states["contoso"].gated = True
        flow = await start(mesh)
        await asyncio.wait_for(states["contoso"].reached_gate.wait(), 20)
        # Revoked after the start: the compensation that needs it is refused when it runs.
        grants = await mesh(c.LIST_GRANTS, "fatima", {"operation": "fabrikam.cancel-order"})
        await mesh(
            c.REVOKE_GRANT,
            "fatima",
            {"operation": "fabrikam.cancel-order", "grant": grants.items[0].id},
        )
        states["northwind"].fail_kinds.add("shipment")
        states["contoso"].gate.set()
        done = await wait_flow(mesh, flow.id)
        assert done.status == "failed"
        assert [s.status for s in done.steps] == ["compensation_failed", "compensated", "failed"]
        assert "operation not found" in (done.steps[0].error or "")
        assert states["fabrikam"].effects == {"order": 1}, "nothing cancelled without a grant"
        assert states["contoso"].effects == {"reservation": 1, "cancellation": 1}

    async def test_flow_visibility_and_denials(
        self, mesh: Mesh, connector: Any, chain: tuple[dict[str, str], dict[str, BackendState]]
    ) -> None:
        urls, _ = chain
        await setup_chain(mesh, urls)
        flow = await start(mesh)
        err = await _refused(mesh(c.GET_FLOW, "carlos", {"flow": flow.id}))
        assert err.code is ErrorCode.NOT_FOUND
        assert (await mesh(c.GET_FLOW, "olivia", {"flow": flow.id})).id == flow.id
        assert [f.id for f in (await mesh(c.LIST_FLOWS, "nadia", {})).items] == [flow.id]
        assert (await mesh(c.LIST_FLOWS, "carlos", {})).items == []
        err = await _refused(start(mesh, scope="connector:read"))
        assert err.code is ErrorCode.FORBIDDEN
        err = await _refused(start(mesh, steps=[{**STEPS[0], "operation": "fabrikam.nope"}]))
        assert err.code is ErrorCode.NOT_FOUND
        await wait_flow(mesh, flow.id)


async def _refused(coro: Awaitable[object]) -> MeshError:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value
