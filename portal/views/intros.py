"""Introductions inbox: suggestions with their explanation, accept or decline, status."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import BY_NAME
from portal.forms import text
from portal.views.names import intro_names
from portal.web import CtxDep, done

router = APIRouter(prefix="/introductions")
DECLINE_REASONS = ("not_relevant", "no_capacity", "already_know", "other")


def _mine(intro: dict[str, Any], me: str) -> bool:
    return me in (intro.get("a"), intro.get("b"))


def _group(intros: list[dict[str, Any]], me: str, eco: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {
        "waiting": [],
        "pending": [],
        "connected": [],
        "closed": [],
        "proposed_by_me": [],
    }
    for i in intros:
        if i.get("proposed_by") == me and not _mine(i, me):
            groups["proposed_by_me"].append(i)
            continue
        if not _mine(i, me):
            continue
        i["me_a"] = i.get("a") == me
        i["other"] = i["b"] if i["me_a"] else i["a"]
        i["other_partner"] = i["b_partner"] if i["me_a"] else i["a_partner"]
        other_eco = (i.get("b_eco") if i["me_a"] else i.get("a_eco")) or eco
        i["other_eco"] = other_eco if other_eco != eco else None  # across an alliance
        accepted = i.get("a_accepted") if i["me_a"] else i.get("b_accepted")
        status = i.get("status")
        if status == "connected":
            groups["connected"].append(i)
        elif status in ("approved", "accepted") and not accepted:
            groups["waiting"].append(i)
        elif status in ("proposed", "approved", "accepted"):
            groups["pending"].append(i)
        else:
            groups["closed"].append(i)
    return groups


def _with_allies() -> dict[str, bool]:
    """Suggest people of allied ecosystems too, where this deployment's matching can."""
    op = BY_NAME.get("matching.person_suggestions")
    return {"allied": True} if op is not None and "allied" in op.request.model_fields else {}


@router.get("")
async def inbox(ctx: CtxDep) -> Response:
    me = ctx.session.sub
    (intros, i_err), (sugg, s_err) = await asyncio.gather(
        ctx.attempt("matching.list_introductions", limit=200),
        ctx.attempt("matching.person_suggestions", person=me, k=10, **_with_allies()),
    )
    items = (intros or {}).get("introductions", [])
    groups = _group(items, me, ctx.session.eco)
    people, allies = await intro_names(ctx, items)
    return ctx.render(
        "intros.html",
        groups=groups,
        i_err=i_err,
        suggestions=(sugg or {}).get("suggestions", []),
        s_err=s_err,
        names=people,
        reasons=DECLINE_REASONS,
        brands=allies,
    )


@router.post("/{introduction}/accept")
async def accept(ctx: CtxDep, introduction: str) -> Response:
    await ctx.call("matching.accept_introduction", introduction=introduction)
    return RedirectResponse(done(f"/introductions#intro-{introduction}", "accepted"), 303)


@router.post("/{introduction}/decline")
async def decline(ctx: CtxDep, request: Request, introduction: str) -> Response:
    form = await request.form()
    reason = text(form, "reason")
    await ctx.call(
        "matching.decline_introduction",
        introduction=introduction,
        reason=reason if reason in DECLINE_REASONS else "other",
        comment=text(form, "comment"),
    )
    return RedirectResponse(done("/introductions", "declined"), status_code=303)
