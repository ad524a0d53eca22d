"""Onboarding: partner admins invite people into their company, set their roles, suspend and
reinstate them; an invitee follows the link, signs up at identity and lands on a first-run
page. Identity decides who may do what (its admin API); these pages only ask it."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import text
from portal.identity_admin import IdentityAdmin
from portal.views.auth import start_login
from portal.views.scim_section import kept, scim_section
from portal.web import Ctx, CtxDep, done, render

router = APIRouter()
GRANTABLE = ("member", "partner_admin")  # roles a company grants its own people
ROLE_NAMES = {"member": "Member", "partner_admin": "Partner admin"}


def _identity(ctx: Ctx) -> IdentityAdmin:
    return IdentityAdmin(ctx.portal.http, ctx.portal.settings.issuer)


def _require_admin(ctx: Ctx) -> str:
    if not ctx.session.is_admin or not ctx.session.partner:
        raise ApiError(404, "not_found", "no such page")
    return ctx.session.partner


def invitation_view(ctx: Ctx, doc: dict[str, Any], company: str) -> dict[str, Any]:
    """What an admin copies: the link into the portal, and an e-mail around it."""
    link = f"{ctx.portal.settings.public_url.rstrip('/')}/join?invitation={doc['code']}"
    roles = ", ".join(ROLE_NAMES.get(r, r) for r in doc.get("roles", []))
    email = (
        f"Hello,\n\n{ctx.session.name} invites you to join {company} on partnermesh "
        f"(ecosystem {ctx.portal.settings.eco}) as: {roles}.\n\n"
        f"Create your account with this link (it works once, for 7 days):\n{link}\n\n"
        "After signing up you land in the portal, where you can fill in your profile.\n"
    )
    return {"link": link, "email_text": email, "to": doc.get("email") or "", "roles": roles}


async def team_page(ctx: Ctx, partner: str, status: int = 200, **extra: Any) -> Response:
    """The team page of ``partner``, with ``extra`` (a form's error or result) on it."""
    (people, p_err), scim = await asyncio.gather(
        kept(_identity(ctx).people(ctx.token)), scim_section(ctx, partner, "/team/scim")
    )
    return ctx.render(
        "team.html",
        status=status,
        partner=partner,
        people=[p for p in people or [] if p.get("partner") == partner],
        p_err=p_err,
        grantable=[r for r in GRANTABLE if ctx.session.has_role(r)],
        role_names=ROLE_NAMES,
        scim=scim,
        **extra,
    )


@router.get("/team")
async def team(ctx: CtxDep) -> Response:
    """My company's people (partner admins)."""
    return await team_page(ctx, _require_admin(ctx))


@router.post("/team/invitations")
async def invite(ctx: CtxDep, request: Request) -> Response:
    partner = _require_admin(ctx)
    form = await request.form()
    roles = ["member"] + (["partner_admin"] if text(form, "admin") == "1" else [])
    email = text(form, "email") or None
    try:
        doc = await _identity(ctx).invite(ctx.token, partner, roles, email)
    except ApiError as exc:
        if exc.status == 401:
            raise
        return await team_page(ctx, partner, status=exc.status, form_err=exc, email=email)
    company = ctx.portal.companies.get(partner, partner)
    return await team_page(ctx, partner, invitation=invitation_view(ctx, doc, company))


async def _change(ctx: Ctx, partner: str, call: Any) -> Response:
    try:
        await call
    except ApiError as exc:
        if exc.status == 401:
            raise
        return await team_page(ctx, partner, status=exc.status, form_err=exc)
    return RedirectResponse(done("/team#people", "person"), status_code=303)


@router.post("/team/people/{person}/roles")
async def set_roles(ctx: CtxDep, request: Request, person: str) -> Response:
    partner = _require_admin(ctx)
    form = await request.form()
    roles = ["member"] + (["partner_admin"] if text(form, "admin") == "1" else [])
    return await _change(ctx, partner, _identity(ctx).set_roles(ctx.token, person, roles))


@router.post("/team/people/{person}/active")
async def set_active(ctx: CtxDep, request: Request, person: str) -> Response:
    partner = _require_admin(ctx)
    form = await request.form()
    active = text(form, "active") == "1"
    return await _change(ctx, partner, _identity(ctx).set_active(ctx.token, person, active))


# ---------------------------------------------------------------- the invitee


@router.get("/join")
async def join(request: Request, invitation: str = "") -> Response:
    """The invitation link: sign up at identity, then come back signed in to /welcome."""
    if not invitation or len(invitation) > 200:
        message = "This invitation link is incomplete. Copy the whole link from the e-mail."
        return render(request, "error.html", None, 400, title="Invitation", message=message)
    return await start_login(request, "/welcome", invitation)


@router.get("/welcome")
async def welcome(ctx: CtxDep) -> Response:
    """The first-run page: a few words about oneself, the rest later."""
    return ctx.render("welcome.html")
