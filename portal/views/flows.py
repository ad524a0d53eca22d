"""Durable flows of my company: the builder that starts one, and each flow's steps live.

A flow calls partners' operations in order (each step may name a compensation that undoes
it if a later step fails); the connector service runs it to the end even across restarts.
The builder (``portal.flow_builder``) picks operations granted to my company from the
catalogue and maps earlier steps' output fields and constants to each step's inputs: every
button is a plain form post, so it works without JavaScript.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from portal import flow_builder as fb
from portal.api import ApiError
from portal.flow_view import ACTIVE, events, render_steps
from portal.forms import text
from portal.web import Ctx, CtxDep

router = APIRouter()
C = "connector."
PAGE = "/connectors/flows"

# The demo ecosystem's supply-chain flow (fabrikam forecasts, contoso reserves, northwind
# ships), as `make run` seeds its operations: the builder starts with it there.
EXAMPLE = fb.Draft(
    name="Restock A-1",
    steps=[
        fb.Step(
            "demand-forecast",
            fb.Call("fabrikam.demand-forecast", {"sku": fb.CONST}, {"sku": "A-1"}),
        ),
        fb.Step(
            "reserve",
            fb.Call(
                "contoso.reserve",
                {"sku": fb.CONST, "qty": "demand-forecast.units"},
                {"sku": "A-1"},
            ),
            fb.Call("contoso.release", {"reservation": "reserve.id"}),
        ),
        fb.Step(
            "ship",
            fb.Call(
                "northwind.ship",
                {"reservation": "reserve.id", "destination": fb.CONST},
                {"destination": "Rotterdam DC"},
            ),
        ),
    ],
)


def _example(catalogue: dict[str, dict[str, Any]]) -> fb.Draft:
    """The example when every operation and output field it uses is offered, else empty."""
    calls = [c for s in EXAMPLE.steps for c in (s.call, s.compensate) if c is not None]
    offered = all((catalogue.get(c.operation) or {}).get("granted") for c in calls)
    fields = {
        f"{s.name}.{n}"
        for s in EXAMPLE.steps
        for n, _ in fb.output_fields(catalogue.get(s.call.operation) or {})
    }
    used = {v for c in calls for v in c.sources.values() if v != fb.CONST}
    if not offered or not used <= fields:
        return fb.Draft()
    return fb.Draft(EXAMPLE.name, [fb.Step(s.name, s.call, s.compensate) for s in EXAMPLE.steps])


async def _catalogue(ctx: Ctx) -> tuple[dict[str, dict[str, Any]], ApiError | None]:
    found, err = await ctx.attempt(C + "catalogue")
    return {op["id"]: op for op in (found or {}).get("items", [])}, err


async def _page(
    ctx: Ctx,
    draft: fb.Draft,
    catalogue: dict[str, dict[str, Any]],
    cat_err: ApiError | None,
    status: int = 200,
    **extra: Any,
) -> Response:
    flows, err = await ctx.attempt(C + "flow_list")
    granted = [op for op in catalogue.values() if op.get("granted")]
    return ctx.render(
        "flows.html",
        status=status,
        flows=(flows or {}).get("items", []),
        err=err,
        cat_err=cat_err,
        draft=draft,
        catalogue=catalogue,
        granted=granted,
        inputs=lambda op_id: fb.input_fields(catalogue.get(op_id) or {}),
        sources=lambda i, own: fb.sources(draft.steps, i + 1 if own else i, catalogue),
        **extra,
    )


@router.get(PAGE)
async def flows(ctx: CtxDep) -> Response:
    catalogue, cat_err = await _catalogue(ctx)
    return await _page(ctx, _example(catalogue), catalogue, cat_err)


@router.post(PAGE)
async def build(ctx: CtxDep, request: Request) -> Response:
    """Every builder button: change the draft and show it again, or start the flow."""
    form = await request.form()
    catalogue, cat_err = await _catalogue(ctx)
    draft = fb.read(form, catalogue)
    action = text(form, "do")
    if action != "start":
        fb.apply(draft, action, text(form, "new_op"), catalogue)
        status = 403 if "new_op" in draft.problems else 200
        return await _page(ctx, draft, catalogue, cat_err, status=status)
    if draft.problems or not draft.steps:
        why = "add at least one step" if not draft.steps else "see the marked fields"
        refused = ApiError(403 if draft.problems else 422, "refused", why)
        return await _page(ctx, draft, catalogue, cat_err, refused.status, form_err=refused)
    try:
        flow = await ctx.call(
            C + "flow_start",
            name=draft.name or "Flow",
            input={},
            steps=fb.compile_steps(draft, catalogue),
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        others = fb.place_errors(draft, exc.errors)
        return await _page(ctx, draft, catalogue, cat_err, exc.status, form_err=exc, others=others)
    return RedirectResponse(f"{PAGE}/{flow['id']}", status_code=303)


@router.get(PAGE + "/{flow}")
async def flow(ctx: CtxDep, flow: str) -> Response:
    view = await ctx.call(C + "flow_get", flow=flow)
    steps = render_steps(view, ctx.portal.companies)
    return ctx.render("flow.html", f=view, steps_html=steps, active=view["status"] in ACTIVE)


@router.get("/api" + PAGE + "/{flow}/events")
async def flow_events(ctx: CtxDep, flow: str) -> Response:
    """The flow's step list each time it changes, as Server-Sent Events (see flow_view)."""
    try:
        first = await ctx.call(C + "flow_get", flow=flow)
    except ApiError as exc:
        if exc.status == 401:
            raise
        return JSONResponse({"error": exc.detail}, status_code=exc.status)

    async def read() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await ctx.call(C + "flow_get", flow=flow)
        except ApiError:
            return None
        return found

    return StreamingResponse(
        events(read, ctx.portal.companies, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
