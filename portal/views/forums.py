"""Forums: categories, threads, reading and writing posts (Markdown, with a preview)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import text
from portal.views.names import names
from portal.views.pictures import faces
from portal.web import Ctx, CtxDep, done

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
    return await _thread_page(ctx, thread)


@router.post("/threads/{thread}/reply")
async def reply(ctx: CtxDep, request: Request, thread: str) -> Response:
    form = await request.form()
    try:
        post = await ctx.call(
            "collaboration.forums.create_post", thread=thread, body=text(form, "body")
        )
    except ApiError as exc:
        return await _thread_page(
            ctx, thread, status=exc.status, form_err=exc, draft=text(form, "body")
        )
    return RedirectResponse(done(f"/threads/{thread}#post-{post['id']}", "posted"), 303)


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


# ---------------------------------------------------------------- moderation (brokers, operators)

MODERATORS = ("broker", "operator")
_THREAD_ACTIONS = {
    "hide": ("collaboration.moderation.hide_thread", {"hidden": True}),
    "unhide": ("collaboration.moderation.hide_thread", {"hidden": False}),
    "lock": ("collaboration.moderation.lock_thread", {"locked": True}),
    "unlock": ("collaboration.moderation.lock_thread", {"locked": False}),
}
_POST_ACTIONS = {
    "hide": ("collaboration.moderation.hide_post", {"hidden": True}),
    "unhide": ("collaboration.moderation.hide_post", {"hidden": False}),
}


def _require_moderator(ctx: Ctx) -> None:
    # Others get the same 404 as for any page that is not theirs (the service refuses anyway).
    if not ctx.session.has_role(*MODERATORS):
        raise ApiError(404, "not_found", "no such page")


async def _thread_page(ctx: Ctx, thread: str, **extra: Any) -> Response:
    view = await ctx.call("collaboration.forums.get_thread", thread=thread, limit=100)
    items: list[dict[str, Any]] = []
    if not view.get("workspace"):
        # The breadcrumb names the category; moderators also pick from them to move the thread.
        cats, _ = await ctx.attempt("collaboration.forums.list_categories")
        items = (cats or {}).get("items", [])
    current = next((c for c in items if c["slug"] == view.get("category")), None)
    authors = [view.get("author", "")] + [p.get("author", "") for p in view.get("posts", [])]
    return ctx.render(
        "thread.html",
        t=view,
        base=f"/threads/{thread}",
        categories=items if ctx.session.has_role(*MODERATORS) else [],
        category_name=current["name"] if current else view.get("category"),
        faces=await faces(ctx, authors),
        **extra,
    )


@router.post("/threads/{thread}/moderate")
async def moderate(ctx: CtxDep, request: Request, thread: str) -> Response:
    """Hide/unhide or lock/unlock the thread, hide/unhide one post, or move the thread."""
    _require_moderator(ctx)
    form = await request.form()
    action, post, reason = text(form, "action"), text(form, "post"), text(form, "reason")
    try:
        if action == "move":
            await ctx.call(
                "collaboration.moderation.move_thread",
                thread=thread,
                category=text(form, "category"),
                reason=reason,
            )
        elif post and action in _POST_ACTIONS:
            op, flags = _POST_ACTIONS[action]
            await ctx.call(op, post=post, reason=reason, **flags)
        elif not post and action in _THREAD_ACTIONS:
            op, flags = _THREAD_ACTIONS[action]
            await ctx.call(op, thread=thread, reason=reason, **flags)
        else:
            raise ApiError(422, "validation_failed", f"unknown moderation action {action!r}")
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _thread_page(ctx, thread, status=exc.status, mod_err=exc)
    anchor = f"#post-{post}" if post else ""
    return RedirectResponse(done(f"/threads/{thread}{anchor}", "moderated"), 303)


@router.get("/moderation")
async def moderation_log(ctx: CtxDep, offset: int = 0) -> Response:
    """The ecosystem's moderation audit log: who hid, locked or moved what, and why."""
    _require_moderator(ctx)
    log, err = await ctx.attempt("collaboration.moderation.log", limit=50, offset=max(0, offset))
    entries = (log or {}).get("items", [])
    return ctx.render(
        "moderation.html",
        entries=entries,
        err=err,
        offset=max(0, offset),
        names=await names(ctx, [e["actor"] for e in entries]),
    )
