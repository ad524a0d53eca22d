"""Mashup dashboards: compose widgets fed by API calls, save, share with my company.

A dashboard page renders at once with empty widget frames; its data comes from
``/dashboards/{id}/data``, which fetches every source of every widget through the
gateway's mashup endpoint in one round trip and renders what arrived (partial
results when a source fails).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal import repository as repo
from portal.api import ApiError, Call
from portal.forms import text
from portal.web import TEMPLATES, Ctx, CtxDep
from portal.widgets import KINDS, SOURCES, view

router = APIRouter(prefix="/dashboards")
MAX_WIDGETS = 12


async def _load(ctx: Ctx, dashboard: str) -> dict[str, Any]:
    s = ctx.session
    async with ctx.portal.db.transaction() as db:
        row = await repo.get_dashboard(db, dashboard, s.eco, s.sub, s.partner)
    if row is None:
        raise ApiError(404, "not_found", "no such dashboard")
    return row


async def _owned(ctx: Ctx, dashboard: str) -> dict[str, Any]:
    row = await _load(ctx, dashboard)
    if row["owner"] != ctx.session.sub:
        raise ApiError(404, "not_found", "no such dashboard")
    return row


@router.get("")
async def dashboards(ctx: CtxDep) -> Response:
    s = ctx.session
    async with ctx.portal.db.transaction() as db:
        rows = await repo.list_dashboards(db, s.eco, s.sub, s.partner)
    return ctx.render("dashboards.html", dashboards=rows)


@router.post("")
async def create(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    title = text(form, "title")[:200]
    if not title:
        async with ctx.portal.db.transaction() as db:
            rows = await repo.list_dashboards(
                db, ctx.session.eco, ctx.session.sub, ctx.session.partner
            )
        return ctx.render(
            "dashboards.html", status=422, dashboards=rows, form_err="Give the dashboard a title."
        )
    dashboard = secrets.token_hex(8)
    s = ctx.session
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
                "widgets": [],
            },
        )
    return RedirectResponse(f"/dashboards/{dashboard}", status_code=303)


@router.get("/{dashboard}")
async def show(ctx: CtxDep, dashboard: str) -> Response:
    row = await _load(ctx, dashboard)
    return ctx.render(
        "dashboard.html", d=row, own=row["owner"] == ctx.session.sub, kinds=KINDS, sources=SOURCES
    )


@router.get("/{dashboard}/data")
async def data(ctx: CtxDep, dashboard: str) -> HTMLResponse:
    row = await _load(ctx, dashboard)
    s = ctx.session
    keys = {k for w in row["widgets"] for k in w.get("sources", []) if k in SOURCES}
    calls: dict[str, Call] = {}
    early: dict[str, Any] = {}
    for key in keys:
        try:
            calls[key] = SOURCES[key].call(s.eco, s.sub, s.partner)
        except ApiError as exc:
            early[key] = exc
    results = {**early, **await ctx.portal.gateway.mashup(ctx.token, calls)}
    views = [view(w, results) for w in row["widgets"]]
    return TEMPLATES.TemplateResponse(ctx.request, "widgets.html", {"widgets": views})


@router.post("/{dashboard}/widgets")
async def add_widget(ctx: CtxDep, request: Request, dashboard: str) -> Response:
    row = await _owned(ctx, dashboard)
    form = await request.form()
    kind = text(form, "kind")
    chosen = [str(v) for v in form.getlist("sources") if str(v) in SOURCES]
    error = None
    if kind not in KINDS:
        error = "Choose a kind of widget."
    elif not chosen:
        error = "Choose at least one data source."
    elif len(row["widgets"]) >= MAX_WIDGETS:
        error = f"A dashboard holds at most {MAX_WIDGETS} widgets."
    if error:
        return ctx.render(
            "dashboard.html",
            status=422,
            d=row,
            own=True,
            kinds=KINDS,
            sources=SOURCES,
            form_err=error,
        )
    title = text(form, "title")[:120] or KINDS[kind]
    widgets = [
        *row["widgets"],
        {"id": secrets.token_hex(4), "kind": kind, "title": title, "sources": chosen},
    ]
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


@router.post("/{dashboard}/settings")
async def settings(ctx: CtxDep, request: Request, dashboard: str) -> Response:
    row = await _owned(ctx, dashboard)
    form = await request.form()
    title = text(form, "title")[:200] or row["title"]
    shared = text(form, "shared") == "1" and ctx.session.partner is not None
    async with ctx.portal.db.transaction() as db:
        await repo.update_dashboard(db, dashboard, title=title, shared=shared)
    return RedirectResponse(f"/dashboards/{dashboard}", status_code=303)


@router.post("/{dashboard}/delete")
async def delete(ctx: CtxDep, dashboard: str) -> Response:
    await _owned(ctx, dashboard)
    async with ctx.portal.db.transaction() as db:
        await repo.delete_dashboard(db, dashboard)
    return RedirectResponse("/dashboards", status_code=303)
