"""Directory sync (SCIM): a company's directory (Entra ID, Okta) provisions its people with
a token a partner admin issues and revokes, and the directory's groups map to roles.

A partner admin manages its own company's on the team page (``/team/scim/…``); an operator
any company's on a page of the operator console (``/operator/partners/{p}/scim``). Anyone
else is refused (403) before identity is asked; identity then decides again, with the
person's own token, who may do what and which roles a rule may give.

A new token's secret is on the page answering the form and nowhere else: the portal does
not keep it, and identity keeps only its hash.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import text
from portal.identity_admin import IdentityAdmin
from portal.views.scim_section import scim_section
from portal.views.team import ROLE_NAMES, team_page
from portal.web import Ctx, CtxDep, done

router = APIRouter()
# How long a new token lasts: the form's choices, in days ("" never expires).
LIFETIMES = {"": None, "30": 30, "90": 90, "365": 365}
DAY_S = 24 * 3600
Rules = list[dict[str, Any]]


@dataclass(frozen=True)
class Place:
    """Where a company's directory sync is managed: the company, the page that shows it
    (``render(ctx, partner, status, **extra)``) and the page to return to."""

    partner: str
    render: Callable[..., Awaitable[Response]]
    back: str


def _identity(ctx: Ctx) -> IdentityAdmin:
    return IdentityAdmin(ctx.portal.http, ctx.portal.settings.issuer)


def _team(ctx: Ctx) -> Place:
    """The admin's own company on the team page; anyone but a partner admin is refused."""
    if not ctx.session.is_admin or not ctx.session.partner:
        detail = "Only the partner admins of a company manage its directory sync."
        raise ApiError(403, "forbidden", detail)
    return Place(ctx.session.partner, team_page, "/team#scim")


def _operator(ctx: Ctx, partner: str) -> Place:
    if not ctx.session.is_operator:
        raise ApiError(403, "forbidden", "Only operators manage another company's directory sync.")
    page = f"/operator/partners/{quote(partner, safe='')}/scim#scim"
    return Place(partner, operator_page, page)


async def operator_page(ctx: Ctx, partner: str, status: int = 200, **extra: Any) -> Response:
    """A company's directory sync, for an operator."""
    base = f"/operator/partners/{quote(partner, safe='')}/scim"
    return ctx.render(
        "directory_sync_page.html",
        status=status,
        partner=partner,
        scim=await scim_section(ctx, partner, base),
        role_names=ROLE_NAMES,
        **extra,
    )


@router.get("/operator/partners/{partner}/scim")
async def operator_scim(ctx: CtxDep, partner: str) -> Response:
    place = _operator(ctx, partner)
    slugs = {p.get("slug") for p in await _identity(ctx).partners(ctx.token)}
    if partner not in slugs:
        raise ApiError(404, "not_found", "There is no such company in this ecosystem.")
    return await operator_page(ctx, place.partner)


async def _refused(ctx: Ctx, place: Place, exc: ApiError, **form: Any) -> Response:
    """The page again with what was refused (and what was typed), as its status."""
    if exc.status == 401:
        raise exc
    return await place.render(ctx, place.partner, status=exc.status, form_err=exc, scim_form=form)


# ---------------------------------------------------------------- tokens


@router.post("/team/scim/tokens")
async def issue_token(ctx: CtxDep, request: Request) -> Response:
    return await _issue(ctx, _team(ctx), request)


@router.post("/operator/partners/{partner}/scim/tokens")
async def operator_issue_token(ctx: CtxDep, request: Request, partner: str) -> Response:
    return await _issue(ctx, _operator(ctx, partner), request)


async def _issue(ctx: Ctx, place: Place, request: Request) -> Response:
    form = await request.form()
    name, lifetime = text(form, "name"), text(form, "expires")
    if lifetime not in LIFETIMES:
        err = ApiError(422, "validation_failed", "Please choose when the token expires.")
        return await _refused(ctx, place, err, name=name)
    days = LIFETIMES[lifetime]
    try:
        issued = await _identity(ctx).issue_scim_token(
            ctx.token, place.partner, name, days * DAY_S if days else None
        )
    except ApiError as exc:
        return await _refused(ctx, place, exc, name=name, expires=lifetime)
    return await place.render(ctx, place.partner, scim_issued=issued)


@router.post("/team/scim/tokens/{token_id}/revoke")
async def revoke_token(ctx: CtxDep, token_id: str) -> Response:
    return await _revoke(ctx, _team(ctx), token_id)


@router.post("/operator/partners/{partner}/scim/tokens/{token_id}/revoke")
async def operator_revoke_token(ctx: CtxDep, partner: str, token_id: str) -> Response:
    return await _revoke(ctx, _operator(ctx, partner), token_id)


async def _revoke(ctx: Ctx, place: Place, token_id: str) -> Response:
    try:
        await _identity(ctx).revoke_scim_token(ctx.token, place.partner, token_id)
    except ApiError as exc:
        return await _refused(ctx, place, exc)
    return RedirectResponse(done(place.back, "scim-revoked"), status_code=303)


# ---------------------------------------------------------------- group rules


@router.post("/team/scim/rules")
async def add_rule(ctx: CtxDep, request: Request) -> Response:
    return await _add_rule(ctx, _team(ctx), request)


@router.post("/operator/partners/{partner}/scim/rules")
async def operator_add_rule(ctx: CtxDep, request: Request, partner: str) -> Response:
    return await _add_rule(ctx, _operator(ctx, partner), request)


async def _add_rule(ctx: Ctx, place: Place, request: Request) -> Response:
    """A group's rule: its roles join those the group's rule already gives."""
    form = await request.form()
    group = text(form, "group")
    roles = sorted({r for r in form.getlist("role") if isinstance(r, str)})
    if not roles:
        err = ApiError(422, "validation_failed", "Please choose at least one role for the group.")
        return await _refused(ctx, place, err, group=group)
    rule = {"group": group, "roles": roles}
    return await _change_rules(ctx, place, lambda rules: [*rules, rule], group=group)


@router.post("/team/scim/rules/remove")
async def remove_rule(ctx: CtxDep, request: Request) -> Response:
    return await _remove_rule(ctx, _team(ctx), request)


@router.post("/operator/partners/{partner}/scim/rules/remove")
async def operator_remove_rule(ctx: CtxDep, request: Request, partner: str) -> Response:
    return await _remove_rule(ctx, _operator(ctx, partner), request)


async def _remove_rule(ctx: Ctx, place: Place, request: Request) -> Response:
    group = text(await request.form(), "group")

    def without(rules: Rules) -> Rules:
        kept = [r for r in rules if r.get("group") != group]
        if len(kept) == len(rules):
            raise ApiError(404, "not_found", f"There is no rule for the group “{group}”.")
        return kept

    return await _change_rules(ctx, place, without)


async def _change_rules(
    ctx: Ctx, place: Place, change: Callable[[Rules], Rules], **form: Any
) -> Response:
    """Identity keeps a company's rules as one list: read it, change it, write it back."""
    idp = _identity(ctx)
    try:
        current = await idp.scim_rules(ctx.token, place.partner)
        rules = [{"group": r["group"], "roles": r["roles"]} for r in current.get("rules", [])]
        await idp.set_scim_rules(ctx.token, place.partner, change(rules))
    except ApiError as exc:
        return await _refused(ctx, place, exc, **form)
    return RedirectResponse(done(place.back, "scim-rules"), status_code=303)
