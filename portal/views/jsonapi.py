"""Small JSON routes for the portal's own scripts: hover cards, the Markdown preview and
@mention suggestions.

The card proxy calls the gateway with the viewer's token (so a card shows only what the
viewer may see) and caches per viewer for a short while.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from mesh import safejson
from portal.api import ApiError
from portal.markup import cloud_size, initials, markdown, tone
from portal.web import CtxDep

router = APIRouter(prefix="/api")
CACHE_MAX = 5000


def _card(doc: dict[str, Any]) -> dict[str, Any]:
    cloud = doc.get("cloud") or {}
    terms = [
        {
            "term": t.get("term", ""),
            "weight": t.get("weight", 0),
            "size": cloud_size(t.get("weight")),
        }
        for t in cloud.get("terms", [])
    ]
    badge = doc.get("badge") or {}
    return {
        "person": doc.get("person"),
        "name": doc.get("name"),
        "headline": doc.get("headline"),
        "partner": doc.get("partner"),
        "company": doc.get("company_name") or doc.get("partner"),
        "verified": bool(badge.get("verified")),
        "terms": terms,
        "posts": cloud.get("posts", 0),
        "initials": initials(doc.get("name") or doc.get("person")),
        "tone": tone(doc.get("person")),
        "avatar": doc.get("avatar"),
        "ecosystem": doc.get("ecosystem"),
        "ecosystem_name": doc.get("ecosystem_name"),
    }


async def _fetch_card(ctx: CtxDep, person: str, ally: str) -> dict[str, Any]:
    """A person's card; with ``ally``, one of that allied ecosystem (what they share)."""
    if ally:
        doc = await ctx.call("profile.ally.person.card", ally=ally, person=person, limit=12)
        body = _card(doc)
        body["ally"] = ally
        body["ecosystem"] = body["ecosystem"] or ally
        body["href"] = f"/allies/{quote(ally, safe='')}/people/{quote(person, safe='')}"
        return body
    body = _card(await ctx.call("profile.person.card", person=person, limit=12))
    body["href"] = f"/people/{quote(person, safe='')}"
    return body


@router.get("/cards/{person}")
async def card(ctx: CtxDep, person: str, ally: str = "") -> Response:
    """The hover card of a person; ``?ally=<eco>`` for a person of an allied ecosystem."""
    portal = ctx.portal
    ally = "" if ally == ctx.session.eco else ally
    key = (ctx.session.sub, person)
    hit = None if ally else portal.cards.get(key)  # an allied card is never kept (below)
    if hit and hit[0] > time.monotonic():
        body = hit[1]
    else:
        try:
            body = await _fetch_card(ctx, person, ally)
            body["me"] = person == ctx.session.sub and not ally
            body["broker"] = ctx.session.has_role("broker")
        except ApiError as exc:
            return JSONResponse({"error": exc.detail}, status_code=exc.status)
        if ally:  # never kept: it must vanish the moment the alliance stops being active
            return JSONResponse(body, headers={"Cache-Control": "no-store"})
        if len(portal.cards) >= CACHE_MAX:
            portal.cards.clear()
        portal.cards[key] = (time.monotonic() + portal.settings.card_cache_seconds, body)
    return JSONResponse(body, headers={"Cache-Control": "private, max-age=60"})


@router.post("/preview")
async def preview(ctx: CtxDep, request: Request) -> Response:
    try:
        doc = safejson.loads(await request.body())  # bounded in depth: a bomb is no text
    except ValueError:
        doc = {}
    source = doc.get("text") if isinstance(doc, dict) else None
    if not isinstance(source, str) or len(source) > 20000:
        return JSONResponse({"error": 'send {"text": "…"} up to 20000 characters'}, 422)
    return JSONResponse({"html": str(markdown(source))})


@router.get("/mentions")
async def mentions(ctx: CtxDep, q: str = "") -> Response:
    """People to @mention whose handle starts with (or name contains) ``q``."""
    q = q.strip().lstrip("@")[:64]
    if not q:
        return JSONResponse({"items": []})
    try:
        found = await ctx.call("collaboration.people.mention_suggestions", q=q, limit=8)
    except ApiError as exc:
        return JSONResponse({"error": exc.detail}, status_code=exc.status)
    return JSONResponse(
        {"items": found.get("items", [])}, headers={"Cache-Control": "private, max-age=30"}
    )
