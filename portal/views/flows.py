"""Durable flows of my company: their state step by step, and starting one.

A flow calls partners' operations in order (each step may name a compensation that undoes
it if a later step fails); the connector service runs it to the end even across restarts.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mesh import safejson
from portal.api import ApiError
from portal.forms import text
from portal.web import Ctx, CtxDep

router = APIRouter(prefix="/connectors/flows")
C = "connector."

# The demo ecosystem's supply-chain flow (fabrikam forecasts, contoso reserves, northwind
# ships), as `make run` seeds its operations: the form works on first try there.
EXAMPLE_STEPS = [
    {"name": "forecast", "operation": "fabrikam.demand-forecast", "input": {"sku": "$input.sku"}},
    {
        "name": "reserve",
        "operation": "contoso.reserve",
        "input": {"sku": "$input.sku", "qty": "$steps.forecast.output.units"},
        "compensate": {
            "operation": "contoso.release",
            "input": {"reservation": "$steps.reserve.output.id"},
        },
    },
    {
        "name": "ship",
        "operation": "northwind.ship",
        "input": {"reservation": "$steps.reserve.output.id", "destination": "$input.destination"},
    },
]
EXAMPLE_INPUT = {"sku": "A-1", "destination": "Rotterdam DC"}


async def _list(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    flows, err = await ctx.attempt(C + "flow_list")
    values: dict[str, Any] = {
        "name": "Restock A-1",
        "input_json": json.dumps(EXAMPLE_INPUT),
        "steps_json": json.dumps(EXAMPLE_STEPS, indent=2),
    }
    values.update(extra)
    return ctx.render(
        "flows.html", status=status, flows=(flows or {}).get("items", []), err=err, **values
    )


@router.get("")
async def flows(ctx: CtxDep) -> Response:
    return await _list(ctx)


def _json(value: str, what: str, kind: type) -> Any:
    try:
        parsed = safejson.loads(value or ("{}" if kind is dict else "[]"))
    except ValueError:
        parsed = None
    if not isinstance(parsed, kind):
        article = "an object" if kind is dict else "a list"
        raise ApiError(422, "validation_failed", f"{what} must be {article} in JSON")
    return parsed


@router.post("")
async def start(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    draft = {
        "name": text(form, "name"),
        "input_json": text(form, "input"),
        "steps_json": text(form, "steps"),
    }
    try:
        flow = await ctx.call(
            C + "flow_start",
            name=draft["name"],
            input=_json(draft["input_json"], "the input", dict),
            steps=_json(draft["steps_json"], "the steps", list),
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        return await _list(ctx, status=exc.status, form_err=exc, **draft)
    return RedirectResponse(f"/connectors/flows/{flow['id']}", status_code=303)


@router.get("/{flow}")
async def flow(ctx: CtxDep, flow: str) -> Response:
    view = await ctx.call(C + "flow_get", flow=flow)
    outputs = {s["name"]: json.dumps(s.get("output"), indent=2)[:5000] for s in view["steps"]}
    return ctx.render("flow.html", f=view, outputs=outputs)
