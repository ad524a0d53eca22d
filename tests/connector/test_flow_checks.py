"""A flow's mapping is checked against its operations' schemas and grants before it starts:
a refused flow is never stored, so nothing runs."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from contracts.errors import ErrorCode
from contracts.v1 import connector as c
from mesh.errors import MeshError
from services.connector.flow_check import check_steps
from services.connector.models import OperationRow
from tests.connector.backends import BackendState
from tests.connector.conftest import Mesh
from tests.connector.test_flows import wait_flow

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
# partner → (admin, operation → (input schema, output schema, visibility))
OPERATIONS: dict[str, tuple[str, dict[str, tuple[dict[str, Any], dict[str, Any], str]]]] = {
    "fabrikam": (
        "fatima",
        {
            "forecast": (
                {"type": "object", "required": ["sku"], "properties": {"sku": STRING}},
                {"type": "object", "properties": {"sku": STRING, "units": INTEGER}},
                "ecosystem",
            ),
            "secret-sauce": ({"type": "object"}, {}, "ecosystem"),
        },
    ),
    "contoso": (
        "carlos",
        {
            "reserve": (
                {
                    "type": "object",
                    "required": ["sku", "qty"],
                    "properties": {"sku": {"type": "string", "minLength": 1}, "qty": INTEGER},
                },
                {"type": "object", "properties": {"id": STRING}},
                "private",
            ),
        },
    ),
}


async def declare(mesh: Mesh, url: str) -> None:
    """The operations, granted to northwind (but fabrikam.secret-sauce: listed, not granted)."""
    await mesh(c.SET_ALLOWLIST, "olivia", {"entries": ["127.0.0.1/32"]})
    for partner, (admin, ops) in OPERATIONS.items():
        await mesh(c.REGISTER_BACKEND, admin, {"partner": partner, "name": "erp", "base_url": url})
        for name, (schema_in, schema_out, visibility) in ops.items():
            await mesh(
                c.DECLARE_OPERATION,
                admin,
                {
                    "partner": partner,
                    "backend": "erp",
                    "name": name,
                    "method": "POST",
                    "path": "/orders",
                    "input_schema": schema_in,
                    "output_schema": schema_out,
                    "visibility": visibility,
                },
            )
            if name != "secret-sauce":
                await mesh(
                    c.CREATE_GRANT,
                    admin,
                    {"operation": f"{partner}.{name}", "grantee": "northwind"},
                )


def steps(qty: Any = "$steps.forecast.output.units", **reserve: Any) -> list[dict[str, Any]]:
    return [
        {"name": "forecast", "operation": "fabrikam.forecast", "input": {"sku": "$input.sku"}},
        {
            "name": "reserve",
            "operation": "contoso.reserve",
            "input": {"sku": "$input.sku", "qty": qty, **reserve},
        },
    ]


async def refused(mesh: Mesh, flow_steps: list[dict[str, Any]], **flow_input: Any) -> MeshError:
    err = await _refused(
        mesh(
            c.START_FLOW,
            "nadia",
            {"name": "checked", "input": flow_input or {"sku": "A-1"}, "steps": flow_steps},
        )
    )
    assert (await mesh(c.LIST_FLOWS, "nadia", {})).items == [], "nothing was started"
    return err


def by_field(err: MeshError) -> dict[tuple[Any, ...], str]:
    assert err.code is ErrorCode.VALIDATION_FAILED, err
    return {tuple(e["loc"]): e["msg"] for e in err.errors or []}


class TestTheDemo:
    def test_the_demos_flow_fits_the_demos_operations(self) -> None:
        from deploy.demo import connector as demo

        schemas = {
            "fabrikam.demand-forecast": (demo.SKU_INPUT, demo.FORECAST_OUTPUT, "/forecast/{sku}"),
            "contoso.reserve": (demo.RESERVE_INPUT, demo.RESERVATION_OUTPUT, "/reservations"),
            "contoso.release": (
                demo.RELEASE_INPUT,
                demo.RESERVATION_OUTPUT,
                "/reservations/{reservation}/release",
            ),
            "northwind.ship": (demo.SHIP_INPUT, demo.SHIPMENT_OUTPUT, "/shipments"),
        }
        ops = {
            op_id: OperationRow(id=op_id, input_schema=i, output_schema=o, path=path)
            for op_id, (i, o, path) in schemas.items()
        }
        flow = c.StartFlowRequest.model_validate(
            {"eco": "acme", "name": "demo", "input": demo.FLOW_INPUT, "steps": demo.FLOW_STEPS}
        )
        assert check_steps(flow.steps, flow.input, ops) == []
        flow.steps[1].input["qty"] = "$steps.forecast.output.sku"
        assert [p["loc"] for p in check_steps(flow.steps, flow.input, ops)] == [
            ["steps", 1, "input", "qty"]
        ]

    def test_schemas_with_references_are_checked_where_they_resolve(self) -> None:
        schema = {
            "$defs": {"qty": {"type": "integer", "minimum": 1}},
            "properties": {"qty": {"$ref": "#/$defs/qty"}, "odd": {"$ref": "#/$defs/nowhere"}},
        }
        ops = {"a.make": OperationRow(id="a.make", input_schema=schema, output_schema={}, path="/")}
        step = c.FlowStep(name="make", operation="a.make", input={"qty": 0, "odd": 1})
        problems = check_steps([step], {}, ops)
        assert [(p["loc"][-1], p["msg"]) for p in problems] == [
            ("qty", "the value 0 does not fit: 0 is less than the minimum of 1")
        ], "an unresolvable reference is left to the call, not a crash"


class TestFlowChecks:
    async def test_a_type_mismatch_is_refused_at_its_field(
        self, mesh: Mesh, connector: Any, backend: tuple[str, BackendState]
    ) -> None:
        await declare(mesh, backend[0])
        err = await refused(mesh, steps(qty="$steps.forecast.output.sku"))
        assert by_field(err) == {
            ("steps", 1, "input", "qty"): "expects an integer, but forecast › sku is a string"
        }

    async def test_missing_inputs_unknown_fields_and_later_steps_are_refused(
        self, mesh: Mesh, connector: Any, backend: tuple[str, BackendState]
    ) -> None:
        await declare(mesh, backend[0])
        flow = steps(qty="$steps.forecast.output.pieces")
        del flow[0]["input"]["sku"]
        flow[1]["compensate"] = {"operation": "contoso.reserve", "input": {"sku": "", "qty": 1}}
        flow[1]["input"]["note"] = "$steps.ship.output.id"
        errors = by_field(await refused(mesh, flow))
        assert errors == {
            ("steps", 0, "input", "sku"): "is required by fabrikam.forecast and is not mapped",
            ("steps", 1, "input", "qty"): "forecast's output (fabrikam.forecast) has no field "
            "pieces",
            ("steps", 1, "input", "note"): "refers to step ship, which does not run before it",
            ("steps", 1, "compensate", "input", "sku"): "the value '' does not fit: '' should "
            "be non-empty",
        }

    async def test_constants_and_flow_input_must_fit(
        self, mesh: Mesh, connector: Any, backend: tuple[str, BackendState]
    ) -> None:
        await declare(mesh, backend[0])
        errors = by_field(await refused(mesh, steps(qty="three"), sku=7))
        assert set(errors) == {
            ("steps", 0, "input", "sku"),
            ("steps", 1, "input", "sku"),
            ("steps", 1, "input", "qty"),
        }
        assert "7 is not of type 'string'" in errors[("steps", 0, "input", "sku")]
        errors = by_field(await refused(mesh, steps(qty=2), other="x"))
        assert errors[("steps", 0, "input", "sku")] == "$input.sku: the flow's input has no sku"

    async def test_operations_not_granted_are_refused(
        self, mesh: Mesh, connector: Any, backend: tuple[str, BackendState]
    ) -> None:
        await declare(mesh, backend[0])
        sauce = [{"name": "sauce", "operation": "fabrikam.secret-sauce", "input": {}}]
        err = await refused(mesh, sauce)
        assert err.code is ErrorCode.FORBIDDEN and "not granted" in err.detail
        grants = await mesh(c.LIST_GRANTS, "carlos", {"operation": "contoso.reserve"})
        await mesh(
            c.REVOKE_GRANT, "carlos", {"operation": "contoso.reserve", "grant": grants.items[0].id}
        )
        err = await refused(mesh, steps(qty=2))
        assert err.code is ErrorCode.NOT_FOUND, "a private operation not granted stays hidden"

    async def test_a_fitting_mapping_starts(
        self, mesh: Mesh, connector: Any, backend: tuple[str, BackendState]
    ) -> None:
        await declare(mesh, backend[0])
        flow = await mesh(
            c.START_FLOW,
            "nadia",
            {"name": "fits", "input": {"sku": "A-1"}, "steps": steps()},
        )
        assert [st.status for st in flow.steps] == ["pending", "pending"]
        # The back-end's reply lacks the declared (optional) units: found when the step runs.
        done = await wait_flow(mesh, flow.id)
        assert done.status == "compensated" and "unresolved reference" in (done.error or "")
        assert done.steps[0].status == "done" and done.steps[0].output["sku"] == "A-1"


async def _refused(coro: Awaitable[object]) -> MeshError:
    with pytest.raises(MeshError) as err:
        await coro
    return err.value
