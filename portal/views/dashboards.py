"""Mashup dashboards: compose widgets fed by API calls, lay them out, share them.

A dashboard page renders at once with empty widget frames on its grid; its data comes
from ``/dashboards/{id}/data`` (with the page's time range), which fetches every source
of every widget through the gateway's mashup endpoint in one round trip and renders
what arrived (partial results when a source fails). Widgets move and resize with the
mouse or the keyboard (``portal.dashboard_io``); a dashboard is private, shared with
the owner's company or with the whole ecosystem (checked in every query,
``portal.repository``), and can be duplicated, exported and imported as JSON.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError

from portal import dashboard_io as io
from portal import repository as repo
from portal import timerange
from portal.api import ApiError, Call
from portal.forms import text
from portal.web import TEMPLATES, Ctx, CtxDep
from portal.widgets import KINDS, SOURCES, view

router = APIRouter(prefix="/dashboards")
MAX_WIDGETS = io.MAX_WIDGETS


async def _load(ctx: Ctx, dashboard: str) -> dict[str, Any]:
    s = ctx.session
    async with ctx.portal.db.transaction() as db:
        row = await repo.get_dashboard(db, dashboard, s.eco, s.sub, s.partner)
    if row is None:
        raise ApiError(404, "not_found", "no such dashboard")
    row["widgets"] = [io.sized(w) for w in row["widgets"]]
    return row


async def _owned(ctx: Ctx, dashboard: str) -> dict[str, Any]:
    row = await _load(ctx, dashboard)
    if row["owner"] != ctx.session.sub:
        raise ApiError(404, "not_found", "no such dashboard")
    return row


async def _list(ctx: Ctx, status: int = 200, **values: Any) -> Response:
    s = ctx.session
    async with ctx.portal.db.transaction() as db:
        rows = await repo.list_dashboards(db, s.eco, s.sub, s.partner)
    return ctx.render(
        "dashboards.html", status=status, dashboards=rows, visibilities=io.VISIBILITIES, **values
    )


async def _add(ctx: Ctx, title: str, widgets: list[dict[str, Any]]) -> str:
    dashboard, s = secrets.token_hex(8), ctx.session
    async with ctx.portal.db.transaction() as db:
        await repo.add_dashboard(
            db,
            {
                "id": dashboard,
                "eco": s.eco,
                "owner": s.sub,
                "owner_name": s.name,
                "partner": s.partner,
                "title": title,
                "shared": False,
                "visibility": "private",
                "widgets": widgets,
            },
        )
    return dashboard


@router.get("")
async def dashboards(ctx: CtxDep) -> Response:
    return await _list(ctx)


@router.post("")
async def create(ctx: CtxDep, request: Request) -> Response:
    title = text(await request.form(), "title")[:200]
    if not title:
        return await _list(ctx, 422, form_err="Give the dashboard a title.")
    return RedirectResponse(f"/dashboards/{await _add(ctx, title, [])}", status_code=303)


@router.post("/import")
async def import_json(ctx: CtxDep, request: Request) -> Response:
    """A dashboard from exported JSON (a file, or pasted): all of it, or nothing."""
    form = await request.form()
    upload = form.get("file")
    raw = b""
    if upload is not None and not isinstance(upload, str):
        raw = await upload.read(io.MAX_IMPORT_BYTES + 1)
    if not raw.strip():
        raw = text(form, "json").encode()
    try:
        spec = io.parse_import(raw)
    except io.ImportRefused as exc:
        pasted = raw[: io.MAX_IMPORT_BYTES].decode(errors="replace")
        return await _list(ctx, 422, import_err=str(exc), pasted=pasted)
    dashboard = await _add(ctx, spec.title, io.new_widgets(spec))
    return RedirectResponse(f"/dashboards/{dashboard}", status_code=303)


def _page(ctx: Ctx, row: dict[str, Any], status: int = 200, **values: Any) -> Response:
    span, range_err = timerange.parse(ctx.request.query_params)
    return ctx.render(
        "dashboard.html",
        status=status,
        d=row,
        own=row["owner"] == ctx.session.sub,
        kinds=KINDS,
        sources=SOURCES,
        span=span,
        presets=timerange.PRESETS,
        range_err=range_err,
        visibilities=io.VISIBILITIES,
        **values,
    )


@router.get("/{dashboard}")
async def show(ctx: CtxDep, dashboard: str) -> Response:
    return _page(ctx, await _load(ctx, dashboard))


@router.get("/{dashboard}/data")
async def data(ctx: CtxDep, dashboard: str) -> HTMLResponse:
    row = await _load(ctx, dashboard)
    s = ctx.session
    span, _ = timerange.parse(ctx.request.query_params)
    keys = {k for w in row["widgets"] for k in w.get("sources", []) if k in SOURCES}
    calls: dict[str, Call] = {}
    early: dict[str, Any] = {}
    for key in keys:
        try:
            calls[key] = SOURCES[key].call(s.eco, s.sub, s.partner, span)
        except ApiError as exc:
            early[key] = exc
    results = {**early, **await ctx.portal.gateway.mashup(ctx.token, calls)}
    views = [view(w, results) for w in row["widgets"]]
    return TEMPLATES.TemplateResponse(ctx.request, "widgets.html", {"widgets": views, "span": span})


@router.get("/{dashboard}/export")
async def export(ctx: CtxDep, dashboard: str) -> JSONResponse:
    row = await _load(ctx, dashboard)
    name = "".join(c if c.isalnum() else "-" for c in row["title"].lower())[:60] or "dashboard"
    return JSONResponse(
        io.export(row),
        headers={"Content-Disposition": f'attachment; filename="{name}.dashboard.json"'},
    )


@router.post("/{dashboard}/duplicate")
async def duplicate(ctx: CtxDep, dashboard: str) -> Response:
    """A private copy for the viewer, of any dashboard they can see."""
    row = await _load(ctx, dashboard)
    widgets = [{**w, "id": secrets.token_hex(4)} for w in row["widgets"]]
    copy = await _add(ctx, f"Copy of {row['title']}"[:200], widgets)
    return RedirectResponse(f"/dashboards/{copy}", status_code=303)


@router.post("/{dashboard}/widgets")
async def add_widget(ctx: CtxDep, request: Request, dashboard: str) -> Response:
    row = await _owned(ctx, dashboard)
    form = await request.form()
    kind = text(form, "kind")
    chosen = list(dict.fromkeys(str(v) for v in form.getlist("sources") if str(v) in SOURCES))
    error = None
    if kind not in KINDS:
        error = "Choose a kind of widget."
    elif not chosen:
        error = "Choose at least one data source."
    elif len(row["widgets"]) >= MAX_WIDGETS:
        error = f"A dashboard holds at most {MAX_WIDGETS} widgets."
    if error:
        return _page(ctx, row, 422, form_err=error)
    title = text(form, "title")[:120] or KINDS[kind].split(" (")[0]
    widget = {"id": secrets.token_hex(4), "kind": kind, "title": title, "sources": chosen}
    widgets = [*row["widgets"], io.sized(widget)]
    async with ctx.portal.db.transaction() as db:
        await repo.update_dashboard(db, dashboard, widgets=widgets)
    return RedirectResponse(f"/dashboards/{dashboard}", status_code=303)


@router.post("/{dashboard}/widgets/{widget}/delete")
async def remove_widget(ctx: CtxDep, dashboard: str, widget: str) -> Response:
    row = await _owned(ctx, dashboard)
    widgets = [w for w in row["widgets"] if w["id"] != widget]
    async with ctx.portal.db.transaction() as db:
        await repo.update_dashboard(db, dashboard, widgets=widgets)
    return RedirectResponse(f"/dashboards/{dashboard}", status_code=303)


@router.post("/{dashboard}/widgets/{widget}/move")
async def move_widget(ctx: CtxDep, request: Request, dashboard: str, widget: str) -> Response:
    """One step of the keyboard layout (the buttons on each widget, without script)."""
    row = await _owned(ctx, dashboard)
    widgets = row["widgets"]
    if not io.move(widgets, widget, text(await request.form(), "how")):
        raise ApiError(404, "not_found", "no such widget or move")
    async with ctx.portal.db.transaction() as db:
        await repo.update_dashboard(db, dashboard, widgets=widgets)
    return RedirectResponse(f"/dashboards/{dashboard}#widget-{widget}", status_code=303)


@router.post("/{dashboard}/layout")
async def layout(ctx: CtxDep, request: Request, dashboard: str) -> Response:
    """The whole grid from the page's script (after a drag, a resize or a layout key)."""
    row = await _owned(ctx, dashboard)
    try:
        asked = io.Layout.model_validate_json(await request.body())
    except ValidationError:
        raise ApiError(422, "validation_failed", "the layout is not valid") from None
    widgets = io.arrange(row["widgets"], asked)
    if widgets is None:
        raise ApiError(409, "conflict", "the layout does not name each widget once")
    async with ctx.portal.db.transaction() as db:
        await repo.update_dashboard(db, dashboard, widgets=widgets)
    return JSONResponse({"widgets": [{"id": w["id"], "w": w["w"], "h": w["h"]} for w in widgets]})


@router.post("/{dashboard}/settings")
async def settings(ctx: CtxDep, request: Request, dashboard: str) -> Response:
    row = await _owned(ctx, dashboard)
    form = await request.form()
    title = text(form, "title")[:200] or row["title"]
    visibility = text(form, "visibility", row["visibility"])
    if text(form, "shared") == "1":  # the form of the previous release
        visibility = "company"
    if visibility not in io.VISIBILITIES:
        return _page(ctx, row, 422, form_err="Choose who may see the dashboard.")
    if visibility == "company" and ctx.session.partner is None:
        return _page(ctx, row, 422, form_err="You act for no company to share it with.")
    async with ctx.portal.db.transaction() as db:
        await repo.update_dashboard(
            db, dashboard, title=title, visibility=visibility, shared=visibility != "private"
        )
    return RedirectResponse(f"/dashboards/{dashboard}", status_code=303)


@router.post("/{dashboard}/delete")
async def delete(ctx: CtxDep, dashboard: str) -> Response:
    await _owned(ctx, dashboard)
    async with ctx.portal.db.transaction() as db:
        await repo.delete_dashboard(db, dashboard)
    return RedirectResponse("/dashboards", status_code=303)
