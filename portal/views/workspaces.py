"""Partnering workspaces: private spaces of people from two or more companies."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import split_tags, text
from portal.views.names import brands, names
from portal.web import Ctx, CtxDep

router = APIRouter(prefix="/workspaces")
WS = "collaboration.workspaces."


@router.get("")
async def workspaces(ctx: CtxDep, with_: str = Query("", alias="with")) -> Response:
    """My workspaces; ``?with=<person>`` pre-fills the form to open one with that person."""
    result, err = await ctx.attempt(WS + "list")
    draft: dict[str, str] = {}
    if with_:
        other = (await names(ctx, [with_])).get(with_, with_)
        draft = {"members": with_, "title": f"{ctx.session.name} & {other}"}
    return ctx.render(
        "workspaces.html", workspaces=(result or {}).get("items", []), err=err, draft=draft
    )


@router.post("")
async def create(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    members = [{"person": p} for p in split_tags(form.get("members"), limit=50)]
    try:
        ws = await ctx.call(
            WS + "create",
            title=text(form, "title"),
            description=text(form, "description"),
            members=members,
        )
    except ApiError as exc:
        result, err = await ctx.attempt(WS + "list")
        return ctx.render(
            "workspaces.html",
            status=exc.status,
            err=err,
            form_err=exc,
            workspaces=(result or {}).get("items", []),
            draft=dict(form),
        )
    return RedirectResponse(f"/workspaces/{ws['id']}", status_code=303)


async def _page(ctx: Ctx, workspace: str, **extra: Any) -> Response:
    ws = await ctx.call(WS + "get", workspace=workspace)
    (threads, t_err), (notes, n_err), (tasks, k_err) = await asyncio.gather(
        ctx.attempt(WS + "list_threads", workspace=workspace),
        ctx.attempt(WS + "list_notes", workspace=workspace),
        ctx.attempt(WS + "list_tasks", workspace=workspace),
    )
    note_items = (notes or {}).get("items", [])
    task_items = (tasks or {}).get("items", [])
    people = [n["author"] for n in note_items] + [k.get("assignee") or "" for k in task_items]
    across = any(m.get("ecosystem") not in (None, ctx.session.eco) for m in ws.get("members") or [])
    return ctx.render(
        "workspace.html",
        names=await names(ctx, people),
        brands=await brands(ctx) if across else {},  # members of allied ecosystems
        ws=ws,
        threads=(threads or {}).get("items", []),
        t_err=t_err,
        notes=note_items,
        n_err=n_err,
        tasks=task_items,
        k_err=k_err,
        **extra,
    )


@router.get("/{workspace}")
async def workspace(ctx: CtxDep, workspace: str) -> Response:
    return await _page(ctx, workspace)


async def _submit(
    ctx: Ctx, workspace: str, name: str, fields: dict[str, Any], anchor: str
) -> Response:
    try:
        await ctx.call(WS + name, workspace=workspace, **fields)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _page(ctx, workspace, form_err=exc)
    return RedirectResponse(f"/workspaces/{workspace}#{anchor}", status_code=303)


@router.post("/{workspace}/threads")
async def new_thread(ctx: CtxDep, request: Request, workspace: str) -> Response:
    form = await request.form()
    fields = {"title": text(form, "title"), "body": text(form, "body")}
    return await _submit(ctx, workspace, "create_thread", fields, "threads")


@router.post("/{workspace}/notes")
async def new_note(ctx: CtxDep, request: Request, workspace: str) -> Response:
    form = await request.form()
    fields = {"title": text(form, "title"), "body": text(form, "body")}
    return await _submit(ctx, workspace, "create_note", fields, "notes")


@router.post("/{workspace}/tasks")
async def new_task(ctx: CtxDep, request: Request, workspace: str) -> Response:
    form = await request.form()
    fields = {"title": text(form, "title"), "assignee": text(form, "assignee") or None}
    return await _submit(ctx, workspace, "create_task", fields, "tasks")


@router.post("/{workspace}/tasks/{task}")
async def update_task(ctx: CtxDep, request: Request, workspace: str, task: str) -> Response:
    form = await request.form()
    return await _submit(
        ctx, workspace, "update_task", {"task": task, "status": text(form, "status")}, "tasks"
    )


@router.post("/{workspace}/members")
async def add_member(ctx: CtxDep, request: Request, workspace: str) -> Response:
    form = await request.form()
    return await _submit(ctx, workspace, "add_member", {"person": text(form, "person")}, "members")


@router.get("/{workspace}/threads/{thread}")
async def thread(ctx: CtxDep, workspace: str, thread: str) -> Response:
    view = await ctx.call(WS + "get_thread", workspace=workspace, thread=thread)
    return ctx.render("thread.html", t=view, base=f"/workspaces/{workspace}/threads/{thread}")


@router.post("/{workspace}/threads/{thread}/reply")
async def reply(ctx: CtxDep, request: Request, workspace: str, thread: str) -> Response:
    form = await request.form()
    base = f"/workspaces/{workspace}/threads/{thread}"
    try:
        post = await ctx.call(
            WS + "create_post", workspace=workspace, thread=thread, body=text(form, "body")
        )
    except ApiError as exc:
        view = await ctx.call(WS + "get_thread", workspace=workspace, thread=thread)
        return ctx.render("thread.html", status=exc.status, t=view, base=base, form_err=exc)
    return RedirectResponse(f"{base}#post-{post['id']}", status_code=303)
