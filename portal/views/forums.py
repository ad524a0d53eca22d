"""Forums: categories, threads, reading and writing posts (Markdown, with a preview)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import text
from portal.web import CtxDep

router = APIRouter()


@router.get("/forums")
async def categories(ctx: CtxDep) -> Response:
    cats, err = await ctx.attempt("collaboration.forums.list_categories")
    return ctx.render("forums.html", categories=(cats or {}).get("items", []), err=err)


@router.get("/forums/{category}")
async def category(ctx: CtxDep, category: str, offset: int = 0) -> Response:
    cats = await ctx.call("collaboration.forums.list_categories")
    current = next((c for c in cats.get("items", []) if c["slug"] == category), None)
    if current is None:
        raise ApiError(404, "not_found", "no such forum category")
    threads, err = await ctx.attempt(
        "collaboration.forums.list_threads", category=category, limit=30, offset=max(0, offset)
    )
    return ctx.render("category.html", category=current, threads=threads, err=err)


@router.post("/forums/{category}")
async def new_thread(ctx: CtxDep, request: Request, category: str) -> Response:
    form = await request.form()
    try:
        thread = await ctx.call(
            "collaboration.forums.create_thread",
            category=category,
            title=text(form, "title"),
            body=text(form, "body"),
        )
    except ApiError as exc:
        cats = await ctx.call("collaboration.forums.list_categories")
        current = next((c for c in cats.get("items", []) if c["slug"] == category), None)
        if current is None:
            raise
        threads, err = await ctx.attempt("collaboration.forums.list_threads", category=category)
        return ctx.render(
            "category.html",
            status=exc.status,
            category=current,
            threads=threads,
            err=err,
            form_err=exc,
            draft=dict(form),
        )
    return RedirectResponse(f"/threads/{thread['id']}", status_code=303)


@router.get("/threads/{thread}")
async def thread(ctx: CtxDep, thread: str) -> Response:
    view = await ctx.call("collaboration.forums.get_thread", thread=thread, limit=100)
    return ctx.render("thread.html", t=view, base=f"/threads/{thread}")


@router.post("/threads/{thread}/reply")
async def reply(ctx: CtxDep, request: Request, thread: str) -> Response:
    form = await request.form()
    try:
        post = await ctx.call(
            "collaboration.forums.create_post", thread=thread, body=text(form, "body")
        )
    except ApiError as exc:
        view = await ctx.call("collaboration.forums.get_thread", thread=thread, limit=100)
        return ctx.render(
            "thread.html",
            status=exc.status,
            t=view,
            base=f"/threads/{thread}",
            form_err=exc,
            draft=text(form, "body"),
        )
    return RedirectResponse(f"/threads/{thread}#post-{post['id']}", status_code=303)


@router.post("/threads/{thread}/agree")
async def agree(ctx: CtxDep, request: Request, thread: str) -> Response:
    form = await request.form()
    post = text(form, "post")
    undo = text(form, "undo") == "1"
    if post:
        name = "collaboration.posts.unagree" if undo else "collaboration.posts.agree"
        await ctx.call(name, post=post)
    else:
        name = (
            "collaboration.forums.unagree_thread" if undo else "collaboration.forums.agree_thread"
        )
        await ctx.call(name, thread=thread)
    return RedirectResponse(f"/threads/{thread}" + (f"#post-{post}" if post else ""), 303)
