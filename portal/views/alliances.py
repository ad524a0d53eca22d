"""The operator's alliance console: alliances with other ecosystems of this deployment —
list, propose with terms, review an offer, counter it, accept or reject it, suspend,
resume or end it (after a confirmation), and read its audit trail. Every call goes to the
identity provider's admin API with the operator's own token; identity decides."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal import alliance_terms as terms_form
from portal.api import ApiError
from portal.identity_admin import ALLIANCE_STEPS, IdentityAdmin
from portal.views.names import names
from portal.views.scim_section import kept
from portal.web import Ctx, CtxDep, done

router = APIRouter(prefix="/operator/alliances")

# Steps that change what crosses at once: asked again before they are sent.
CONFIRM = {
    "suspend": "Suspend the alliance? Nothing crosses while it is suspended: tokens "
    "exchanged into either ecosystem stop working at once, allied results disappear and "
    "pending introductions across are withdrawn. Either side may resume it.",
    "resume": "Resume the alliance? The agreed terms apply again at once.",
    "end": "End the alliance? This is final: tokens exchanged across stop working at once, "
    "allied results, cards and introductions across are removed. A new alliance needs a "
    "new proposal.",
}
DONE_KEYS = {
    "accept": "alliance-accepted",
    "reject": "alliance-rejected",
    "suspend": "alliance-suspended",
    "resume": "alliance-resumed",
    "end": "alliance-ended",
}


def _require_operator(ctx: Ctx) -> IdentityAdmin:
    if not ctx.session.has_role("operator"):
        raise ApiError(404, "not_found", "no such page")
    return IdentityAdmin(ctx.portal.http, ctx.portal.settings.issuer)


def _me(ctx: Ctx) -> str:
    return ctx.session.eco or ctx.portal.settings.eco


def _view(state: dict[str, Any], me: str) -> dict[str, Any]:
    """The alliance as this side reads it: the peer, its brand, whose move it is."""
    peer = next((e for e in state.get("ecosystems", []) if e != me), "")
    names = state.get("names") or {}
    status = str(state.get("status", ""))
    terms = state.get("terms") or {}
    return {
        **state,
        "peer": peer,
        "peer_name": names.get(peer) or peer,
        "my_name": names.get(me) or me,
        "offered_by_us": state.get("offered_by") == me,
        "ours": terms.get(me) or {},
        "theirs": terms.get(peer) or {},
        "status": status,
        "steps": [s for s in _actions(state, me) if s in ALLIANCE_STEPS],
        "can_counter": "counter" in _actions(state, me),
        "audit": [e for e in state.get("audit") or [] if isinstance(e, dict)],
    }


def _actions(state: dict[str, Any], me: str) -> list[str]:
    """What this side may do now, as identity says (and checks again when it is done)."""
    said = state.get("actions")
    if isinstance(said, list):
        return [str(a) for a in said]
    status, ours = state.get("status"), state.get("offered_by") == me
    if status == "proposed":
        return ["counter", "end"] if ours else ["counter", "accept", "reject", "end"]
    return {"active": ["suspend", "end"], "suspended": ["resume", "end"]}.get(str(status), [])


async def _list_page(
    ctx: Ctx, idp: IdentityAdmin, draft: terms_form.Draft | None = None, status: int = 200
) -> Response:
    me = _me(ctx)
    (found, err), (peers, _) = await asyncio.gather(
        kept(idp.alliances(ctx.token)), kept(idp.alliance_peers(ctx.token))
    )
    return ctx.render(
        "alliances.html",
        status=status,
        alliances=[_view(a, me) for a in found or []],
        peers=peers,  # None when identity cannot say: the form takes an id then
        list_err=err,
        draft=draft or terms_form.Draft(),
        me_eco=me,
        form=terms_form,
    )


@router.get("")
async def console(ctx: CtxDep) -> Response:
    return await _list_page(ctx, _require_operator(ctx))


@router.post("")
async def propose(ctx: CtxDep, request: Request) -> Response:
    idp = _require_operator(ctx)
    me = _me(ctx)
    draft = terms_form.read(await request.form(), me, with_peer=True)
    if draft.errors:
        return await _list_page(ctx, idp, draft, status=422)
    try:
        made = await idp.propose_alliance(
            ctx.token, draft.peer, terms_form.by_owner(draft, me, draft.peer)
        )
    except ApiError as exc:
        if exc.status == 401:
            raise
        draft.errors.append(f"Not proposed: {exc.detail}")
        return await _list_page(ctx, idp, draft, status=exc.status if exc.status < 500 else 502)
    target = f"/operator/alliances/{made['alliance']}" if made.get("alliance") else ""
    return RedirectResponse(done(target or "/operator/alliances", "alliance-proposed"), 303)


async def _detail_page(
    ctx: Ctx,
    idp: IdentityAdmin,
    alliance: str,
    draft: terms_form.Draft | None = None,
    status: int = 200,
    step_err: ApiError | None = None,
) -> Response:
    me = _me(ctx)
    state = await idp.alliance(ctx.token, alliance)  # 404: not an alliance of this ecosystem
    view = _view(state, me)
    ours = [e["actor"] for e in view["audit"] if e.get("eco") == me and e.get("actor")]
    return ctx.render(
        "alliance.html",
        names=await names(ctx, ours),
        status=status,
        a=view,
        draft=draft or terms_form.from_state(state, me),
        step_err=step_err,
        me_eco=me,
        form=terms_form,
    )


@router.get("/{alliance}")
async def review(ctx: CtxDep, alliance: str) -> Response:
    return await _detail_page(ctx, _require_operator(ctx), alliance)


@router.post("/{alliance}/counter")
async def counter(ctx: CtxDep, request: Request, alliance: str) -> Response:
    idp = _require_operator(ctx)
    me = _me(ctx)
    state = await idp.alliance(ctx.token, alliance)
    peer = _view(state, me)["peer"]
    draft = terms_form.read(await request.form(), me, with_peer=False)
    draft.peer = peer
    if not draft.errors:
        try:
            await idp.counter_alliance(ctx.token, alliance, terms_form.by_owner(draft, me, peer))
        except ApiError as exc:
            if exc.status in (401, 404):
                raise
            draft.errors.append(f"Not sent: {exc.detail}")
    if draft.errors:
        return await _detail_page(ctx, idp, alliance, draft, status=422)
    return RedirectResponse(done(f"/operator/alliances/{alliance}", "alliance-countered"), 303)


@router.post("/{alliance}/{step}")
async def act(ctx: CtxDep, request: Request, alliance: str, step: str) -> Response:
    idp = _require_operator(ctx)
    if step not in ALLIANCE_STEPS:
        raise ApiError(404, "not_found", "no such page")
    form = await request.form()
    if step in CONFIRM and form.get("confirmed") != "yes":
        state = await idp.alliance(ctx.token, alliance)
        return ctx.render(
            "alliance_confirm.html", a=_view(state, _me(ctx)), step=step, why=CONFIRM[step]
        )
    try:
        await idp.alliance_step(ctx.token, alliance, step)
    except ApiError as exc:
        if exc.status in (401, 404):
            raise
        return await _detail_page(ctx, idp, alliance, status=exc.status, step_err=exc)
    return RedirectResponse(done(f"/operator/alliances/{alliance}", DONE_KEYS[step]), 303)
