"""Webhooks of my company: subscriptions with their delivery logs (replay), inbound endpoints
our back-ends push into, and event grants on our event types.

Every member of a partner may look (the connector's read scope); only partner admins act,
as the connector service enforces again. Secrets are shown once, on the page that created them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import text
from portal.web import Ctx, CtxDep, done

router = APIRouter(prefix="/connectors/webhooks")
C = "connector."
# What the demo ecosystem shares with everyone (northwind's deliveries): a subscription
# form that works on first try there, and a plain example anywhere else.
EXAMPLE_SOURCE, EXAMPLE_EVENT = "northwind", "shipment.delivered"


def _partner(ctx: Ctx) -> str:
    if ctx.session.partner is None:  # people outside a partner company have no webhooks
        raise ApiError(404, "not_found", "no such page")
    return ctx.session.partner


def _is_admin(ctx: Ctx) -> bool:
    return ctx.session.partner is not None and ctx.session.has_role("partner_admin")


def _words(value: str) -> list[str]:
    return [w for w in (p.strip() for p in value.replace(",", " ").split()) if w]


async def _page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    partner = _partner(ctx)
    subs, s_err = await ctx.attempt(C + "subscription_list", partner=partner)
    items = (subs or {}).get("items", [])
    logs = await asyncio.gather(
        *(ctx.attempt(C + "delivery_list", partner=partner, subscription=s["id"]) for s in items)
    )
    deliveries = {
        s["id"]: (d or {}).get("items", [])[:20] for s, (d, _e) in zip(items, logs, strict=True)
    }
    grants, g_err, backends = None, None, None
    if _is_admin(ctx):
        (grants, g_err), (backends, _b_err) = await asyncio.gather(
            ctx.attempt(C + "event_grant_list", partner=partner),
            ctx.attempt(C + "backend_list", partner=partner),
        )
    # Our back-ends' webhook addresses, offered for the subscription's URL.
    receivers = [b["base_url"].rstrip("/") + "/webhooks" for b in (backends or {}).get("items", [])]
    extra.setdefault(
        "draft",
        {
            "source_partner": EXAMPLE_SOURCE if partner != EXAMPLE_SOURCE else "",
            "event_types": EXAMPLE_EVENT,
            "url": receivers[0] if receivers else "",
        },
    )
    return ctx.render(
        "webhooks.html",
        status=status,
        partner=partner,
        admin=_is_admin(ctx),
        subscriptions=items,
        deliveries=deliveries,
        s_err=s_err,
        event_grants=(grants or {}).get("items", []),
        g_err=g_err,
        gateway_url=ctx.portal.settings.gateway_url.rstrip("/"),
        receivers=receivers,
        **extra,
    )


@router.get("")
async def webhooks(ctx: CtxDep) -> Response:
    return await _page(ctx)


async def _act(
    ctx: Ctx, op: str, draft: dict[str, str] | None = None, /, **params: Any
) -> tuple[Any, Response | None]:
    """Call ``op`` as a partner admin; on a refusal, the page again with the error (and
    what was typed, ``draft``)."""
    if not _is_admin(ctx):
        raise ApiError(404, "not_found", "no such page")
    try:
        return await ctx.call(op, partner=ctx.session.partner, **params), None
    except ApiError as exc:
        if exc.status == 404 and op == C + "delivery_replay":
            raise
        extra: dict[str, Any] = {"draft": draft} if draft else {}
        return None, await _page(ctx, status=exc.status, form_err=exc, **extra)


@router.post("/subscriptions")
async def subscribe(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    draft = {k: text(form, k) for k in ("source_partner", "event_types", "url")}
    created, page = await _act(
        ctx,
        C + "subscription_create",
        draft,
        source_partner=draft["source_partner"],
        event_types=_words(draft["event_types"]),
        url=draft["url"],
    )
    return page or await _page(ctx, status=201, secret_for=("subscription", created))


@router.post("/subscriptions/{subscription}/delete")
async def unsubscribe(ctx: CtxDep, subscription: str) -> Response:
    _, page = await _act(ctx, C + "subscription_delete", subscription=subscription)
    return page or RedirectResponse(done("/connectors/webhooks", "unsubscribed"), 303)


@router.post("/deliveries/{delivery}/replay")
async def replay(ctx: CtxDep, delivery: str) -> Response:
    _, page = await _act(ctx, C + "delivery_replay", delivery=delivery)
    return page or RedirectResponse(done("/connectors/webhooks#deliveries", "replayed"), 303)


@router.post("/inbound")
async def create_inbound(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    created, page = await _act(ctx, C + "inbound_create", name=text(form, "name"))
    return page or await _page(ctx, status=201, secret_for=("inbound", created))


@router.post("/event-grants")
async def grant_event(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    created, page = await _act(
        ctx,
        C + "event_grant_create",
        event_type=text(form, "event_type"),
        grantee=text(form, "grantee") or None,
    )
    return page or await _page(ctx, status=201, granted=created)


@router.post("/event-grants/revoke")
async def revoke_event_grant(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    revoked, page = await _act(ctx, C + "event_grant_revoke", grant=text(form, "grant"))
    return page or await _page(ctx, revoked=revoked)
