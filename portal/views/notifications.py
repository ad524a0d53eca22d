"""The notification centre: a plain page of my notifications (mark one or all read, turn
kinds off), and their live stream, relayed from the gateway to the open page.

The page works without JavaScript. With it, ``portal.js`` opens
``/api/notifications/stream``, which relays the gateway's Server-Sent Events stream for
the signed-in person (their own token: the gateway sends them their own notifications and
nothing else). The portal keeps no state per stream, so any replica serves any page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

from contracts.v1.collaboration import NOTIFICATION_STREAM
from contracts.v1.collaboration_models import NOTIFICATION_KINDS
from contracts.v1.push import PUSH_KINDS
from portal.views.installable import PUSH_LABELS
from portal.views.names import names
from portal.web import CtxDep, done

router = APIRouter()

KIND_LABELS = {
    "mention": "Mentions of me",
    "reply": "Replies to my threads",
    "introduction": "Introductions (proposed, accepted, declined, connected)",
    "broker": "Broker actions on my introductions",
    "verification": "Verifications of me or my company",
}


@router.get("/notifications")
async def notifications(ctx: CtxDep) -> Response:
    (box, err), (prefs, prefs_err), (push, push_err) = (
        await ctx.attempt("collaboration.notifications.list", limit=50),
        await ctx.attempt("collaboration.notifications.preferences"),
        await ctx.attempt("collaboration.push.settings"),
    )
    pushed = (push or {}).get("kinds", {})
    items = (box or {}).get("items", [])
    on = (prefs or {}).get("kinds", {})
    return ctx.render(
        "notifications.html",
        items=items,
        unread=(box or {}).get("unread", 0),
        newest=max((int(n["id"]) for n in items), default=0),
        err=err,
        kinds=[(k, KIND_LABELS[k], on.get(k, True)) for k in NOTIFICATION_KINDS],
        prefs_err=prefs_err,
        push=push,
        push_err=push_err,
        push_kinds=[(k, PUSH_LABELS[k], pushed.get(k, False)) for k in PUSH_KINDS],
        names=await names(ctx, [n["actor"] for n in items]),
        describe=describe,
        link=link,
    )


@router.post("/notifications/read")
async def mark_read(request: Request, ctx: CtxDep) -> Response:
    form = await request.form()
    given = str(form.get("id") or "")
    ids = [int(given)] if given.isdigit() and len(given) < 19 else []
    if given and not ids:
        return RedirectResponse("/notifications", status_code=303)
    await ctx.call("collaboration.notifications.mark_read", ids=ids)
    return RedirectResponse(done("/notifications", "read"), status_code=303)


@router.post("/notifications/preferences")
async def preferences(request: Request, ctx: CtxDep) -> Response:
    form = await request.form()
    chosen = {k: form.get(k) == "on" for k in NOTIFICATION_KINDS}
    await ctx.call("collaboration.notifications.set_preferences", kinds=chosen)
    return RedirectResponse(done("/notifications", "preferences"), status_code=303)


@router.get("/api/notifications/stream")
async def stream(request: Request, ctx: CtxDep) -> Response:
    """The gateway's stream of my notifications, relayed as it comes."""
    gateway = ctx.portal.gateway
    path = NOTIFICATION_STREAM.path.replace("{eco}", quote(gateway.eco, safe=""))
    headers = {"Authorization": f"Bearer {ctx.token}", "Accept": "text/event-stream"}
    resume = request.headers.get("last-event-id") or request.query_params.get("after")
    if resume and resume.isdigit() and len(resume) < 19:
        headers["Last-Event-ID"] = resume
    heartbeat = 60.0  # the gateway sends a comment more often than this
    req = gateway.http.build_request(
        "GET", path, headers=headers, timeout=httpx.Timeout(10.0, read=heartbeat)
    )
    try:
        upstream = await gateway.http.send(req, stream=True)
    except httpx.HTTPError:
        return JSONResponse({"error": "the gateway is not reachable"}, status_code=503)
    if upstream.status_code != 200:
        body = await upstream.aread()
        await upstream.aclose()
        return Response(
            body,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type", "application/problem+json"),
        )
    return StreamingResponse(
        _relay(upstream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return  # the gateway went away: the browser reconnects
    finally:
        await upstream.aclose()


def describe(n: dict[str, Any]) -> str:
    """What happened, in words (the actor's name goes before it)."""
    action, kind = str(n.get("action")), str(n.get("kind"))
    return {
        ("mention", "mentioned"): "mentioned you",
        ("reply", "replied"): "replied to your thread",
        ("introduction", "proposed"): "proposed an introduction with you",
        ("introduction", "accepted"): "accepted your introduction",
        ("introduction", "declined"): "declined your introduction",
        ("introduction", "connected"): "is connected with you now",
        ("broker", "approved"): "introduced you to someone (answer the introduction)",
        ("broker", "rejected"): "rejected your introduction",
        ("verification", "verified"): "verified "
        + ("you" if n.get("content_kind") == "person" else "your company"),
        ("verification", "unverified"): "withdrew the verification of "
        + ("you" if n.get("content_kind") == "person" else "your company"),
    }.get((kind, action), "notified you")


def link(n: dict[str, Any]) -> str:
    """Where the notification leads."""
    kind, target = n.get("content_kind"), quote(str(n.get("content_id", "")), safe="")
    if kind == "introduction":
        return f"/introductions#intro-{target}"
    if kind == "person":
        return f"/people/{target}"
    if kind == "company":
        return f"/companies/{target}"
    thread = quote(str(n.get("thread") or ""), safe="")
    if n.get("workspace"):
        space = quote(str(n["workspace"]), safe="")
        return f"/workspaces/{space}" + (f"/threads/{thread}" if thread else "")
    return f"/threads/{thread}" if thread else "/notifications"
