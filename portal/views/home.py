"""Home: what is new for me (introductions waiting for me, mentions, active threads)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from portal.api import ApiError
from portal.views.names import names
from portal.web import Ctx, current_session, render, signed_in

router = APIRouter()
FAVICON = Path(__file__).resolve().parents[1] / "static" / "favicon.svg"


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """Browsers ask for /favicon.ico whatever the page links: the SVG icon answers."""
    return FileResponse(
        FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"}
    )


async def _active_threads(ctx: Ctx) -> tuple[list[dict[str, Any]], ApiError | None]:
    cats, err = await ctx.attempt("collaboration.forums.list_categories")
    if err:
        return [], err
    slugs = [c["slug"] for c in (cats or {}).get("items", [])][:5]
    pages = await asyncio.gather(
        *(ctx.attempt("collaboration.forums.list_threads", category=s, limit=5) for s in slugs)
    )
    threads = [t for page, _ in pages if page for t in page.get("items", [])]
    threads.sort(key=lambda t: t.get("last_activity_at", ""), reverse=True)
    return threads[:8], None


def _waiting(intros: Any, me: str) -> list[dict[str, Any]]:
    """Introductions where it is my turn to answer."""
    waiting = []
    for i in (intros or {}).get("introductions", []):
        if me not in (i.get("a"), i.get("b")):
            continue  # brokers and operators list everyone's
        mine = i.get("a_accepted") if i.get("a") == me else i.get("b_accepted")
        if i.get("status") in ("approved", "accepted") and not mine:
            waiting.append(i)
    return waiting


@router.get("/")
async def home(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return render(request, "landing.html", None, signed_out=True)
    ctx = await signed_in(request)
    (intros, intro_err), (notes, note_err), (threads, thread_err) = await asyncio.gather(
        ctx.attempt("matching.list_introductions"),
        ctx.attempt("collaboration.notifications.list", limit=10),
        _active_threads(ctx),
    )
    waiting = _waiting(intros, ctx.session.sub)
    return ctx.render(
        "home.html",
        waiting=waiting,
        names=await names(
            ctx,
            [x for i in waiting for x in (i["a"], i["b"])]
            + [n["actor"] for n in (notes or {}).get("items", [])],
        ),
        intro_err=intro_err,
        notifications=[n for n in (notes or {}).get("items", []) if n.get("kind") == "mention"],
        note_err=note_err,
        threads=threads,
        thread_err=thread_err,
    )
