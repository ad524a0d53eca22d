"""Directory sync (SCIM) on the team page: a partner admin issues and revokes the tokens
its company's directory (Entra ID, Okta) provisions people with, and maps the directory's
groups to roles. Identity decides who may do what and which roles a rule may give; these
routes refuse anyone but a partner admin (403) and only ask identity, for the admin's own
company, with the admin's own token.

A new token's secret is on the page answering the form and nowhere else: the portal does
not keep it, and identity keeps only its hash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from portal.api import ApiError
from portal.forms import text
from portal.identity_admin import IdentityAdmin
from portal.views.team import team_page
from portal.web import Ctx, CtxDep, done

router = APIRouter(prefix="/team/scim")
Rules = list[dict[str, Any]]
# How long a new token lasts: the form's choices, in days ("" never expires).
LIFETIMES = {"": None, "30": 30, "90": 90, "365": 365}
DAY_S = 24 * 3600


def _admin_of(ctx: Ctx) -> str:
    """The admin's own company; anyone but a partner admin is refused."""
    if not ctx.session.is_admin or not ctx.session.partner:
        detail = "Only the partner admins of a company manage its directory sync."
        raise ApiError(403, "forbidden", detail)
    return ctx.session.partner


def _identity(ctx: Ctx) -> IdentityAdmin:
    return IdentityAdmin(ctx.portal.http, ctx.portal.settings.issuer)


async def _refused(ctx: Ctx, partner: str, exc: ApiError, **form: Any) -> Response:
    """The team page again with what was refused (and what was typed), as its status."""
    if exc.status == 401:
        raise exc
    return await team_page(ctx, partner, status=exc.status, form_err=exc, scim_form=form)


@router.post("/tokens")
async def issue_token(ctx: CtxDep, request: Request) -> Response:
    partner = _admin_of(ctx)
    form = await request.form()
    name, lifetime = text(form, "name"), text(form, "expires")
    if lifetime not in LIFETIMES:
        err = ApiError(422, "validation_failed", "Please choose when the token expires.")
        return await _refused(ctx, partner, err, name=name)
    days = LIFETIMES[lifetime]
    try:
        issued = await _identity(ctx).issue_scim_token(
            ctx.token, partner, name, days * DAY_S if days else None
        )
    except ApiError as exc:
        return await _refused(ctx, partner, exc, name=name, expires=lifetime)
    return await team_page(ctx, partner, scim_issued=issued)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(ctx: CtxDep, token_id: str) -> Response:
    partner = _admin_of(ctx)
    try:
        await _identity(ctx).revoke_scim_token(ctx.token, partner, token_id)
    except ApiError as exc:
        return await _refused(ctx, partner, exc)
    return RedirectResponse(done("/team#scim", "scim-revoked"), status_code=303)


@router.post("/rules")
async def add_rule(ctx: CtxDep, request: Request) -> Response:
    """A group's rule: its roles join those the group's rule already gives."""
    partner = _admin_of(ctx)
    form = await request.form()
    group = text(form, "group")
    roles = sorted({r for r in form.getlist("role") if isinstance(r, str)})
    if not roles:
        err = ApiError(422, "validation_failed", "Please choose at least one role for the group.")
        return await _refused(ctx, partner, err, group=group)
    rule = {"group": group, "roles": roles}
    return await _change_rules(ctx, partner, lambda rules: [*rules, rule], group=group)


@router.post("/rules/remove")
async def remove_rule(ctx: CtxDep, request: Request) -> Response:
    partner = _admin_of(ctx)
    group = text(await request.form(), "group")

    def without(rules: Rules) -> Rules:
        kept = [r for r in rules if r.get("group") != group]
        if len(kept) == len(rules):
            raise ApiError(404, "not_found", f"There is no rule for the group “{group}”.")
        return kept

    return await _change_rules(ctx, partner, without)


async def _change_rules(
    ctx: Ctx, partner: str, change: Callable[[Rules], Rules], **form: Any
) -> Response:
    """Identity keeps a company's rules as one list: read it, change it, write it back."""
    idp = _identity(ctx)
    try:
        current = await idp.scim_rules(ctx.token, partner)
        rules = [{"group": r["group"], "roles": r["roles"]} for r in current.get("rules", [])]
        await idp.set_scim_rules(ctx.token, partner, change(rules))
    except ApiError as exc:
        return await _refused(ctx, partner, exc, **form)
    return RedirectResponse(done("/team#scim", "scim-rules"), status_code=303)
