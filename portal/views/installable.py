"""The portal as an installable app: its web app manifest, its service worker, and the
Web Push settings of the signed-in person (the subscriptions and kinds are kept by the
collaboration service, reached through the gateway with the person's own token).

The service worker (``static/sw.js``) is served at ``/sw.js`` so that its scope is the
whole portal; it caches the app shell, and the pages a person opened of the kinds listed
in :data:`OFFLINE_PAGES`, in a cache named after ``portal.web.offline_key`` (one per person, so a
sign-out clears exactly theirs). Nothing here is inline: the portal's CSP stays as it is.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from contracts.v1.push import PUSH_KINDS
from portal.api import ApiError
from portal.web import Ctx, CtxDep, current_session, done, portal_of

router = APIRouter()
STATIC = Path(__file__).resolve().parent.parent / "static"

# Pages readable offline once opened (the service worker holds the same list).
OFFLINE_PAGES = (
    r"^/threads/[^/]+$",
    r"^/workspaces/[^/]+/threads/[^/]+$",
    r"^/people/[^/]+$",
    r"^/companies/[^/]+$",
    r"^/introductions$",
)
PUSH_LABELS = {
    "introduction": "When an introduction concerns me (proposed, by a broker, accepted, connected)",
    "mention": "When someone mentions me",
    "reply": "When someone answers a thread I started",
}


def manifest(eco: str) -> dict[str, object]:
    icons = [
        {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
        {
            "src": "/static/icons/maskable-512.png",
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ]
    return {
        "id": "/",
        "name": f"partnermesh · {eco}",
        "short_name": "partnermesh",
        "description": "Partners, introductions and conversations of the ecosystem",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": "#1f4e8c",
        "icons": icons,
    }


@router.get("/manifest.webmanifest", include_in_schema=False)
async def web_manifest(request: Request) -> Response:
    body = manifest(portal_of(request).settings.eco)
    headers = {"Cache-Control": "public, max-age=3600"}
    return JSONResponse(body, headers=headers, media_type="application/manifest+json")


@router.get("/sw.js", include_in_schema=False)
async def service_worker() -> Response:
    # Checked by the browser on every navigation: never an old copy from an HTTP cache.
    headers = {"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"}
    return FileResponse(STATIC / "sw.js", media_type="text/javascript", headers=headers)


@router.get("/api/session")
async def session_state(request: Request) -> Response:
    """Whether this browser is still signed in (the service worker asks before showing a
    push: a session ended elsewhere, e.g. by a back-channel logout, unsubscribes it)."""
    session = await current_session(request)
    if session is None:
        return JSONResponse({"signed_in": False}, status_code=401)
    return JSONResponse({"signed_in": True})


@router.post("/notifications/push")
async def push_kinds(request: Request, ctx: CtxDep) -> Response:
    """The kinds to push (the form on the notifications page; works without JavaScript)."""
    form = await request.form()
    chosen = {k: form.get(k) == "on" for k in PUSH_KINDS}
    await ctx.call("collaboration.push.set_kinds", kinds=chosen)
    return RedirectResponse(done("/notifications", "push") + "#push", status_code=303)


@router.post("/api/push/subscriptions")
async def subscribe(request: Request, ctx: CtxDep) -> Response:
    """This browser's ``PushSubscription.toJSON()``, registered for the signed-in person."""
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "a JSON body is expected"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "a JSON object is expected"}, status_code=400)
    keys = body.get("keys")
    try:
        view = await ctx.call(
            "collaboration.push.subscribe",
            endpoint=body.get("endpoint"),
            keys=keys if isinstance(keys, dict) else None,
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        return JSONResponse({"error": exc.detail, "code": exc.code}, status_code=exc.status)
    return JSONResponse(view, status_code=201)


@router.delete("/api/push/subscriptions/{subscription}")
async def unsubscribe(ctx: CtxDep, subscription: str) -> Response:
    try:
        await ctx.call("collaboration.push.unsubscribe", subscription=subscription)
    except ApiError as exc:
        if exc.status == 401:
            raise
        return JSONResponse({"error": exc.detail, "code": exc.code}, status_code=exc.status)
    return Response(status_code=204)


async def forget_push(ctx: Ctx, subscription: str) -> None:
    """At sign-out: this browser's subscription goes (best effort: the sign-out goes on)."""
    if not subscription or len(subscription) > 64:
        return
    try:
        await ctx.call("collaboration.push.unsubscribe", subscription=subscription)
    except ApiError:
        return
