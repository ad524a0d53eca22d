"""Broker console (curate introductions, verify partners) and operator console."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mesh import safejson
from portal.api import ApiError
from portal.forms import text
from portal.identity_admin import POLICIES, IdentityAdmin
from portal.views.names import intro_names, names
from portal.views.team import invitation_view
from portal.web import Ctx, CtxDep, done

router = APIRouter()


def _require(ctx: Ctx, *roles: str) -> None:
    if not ctx.session.has_role(*roles):
        raise ApiError(404, "not_found", "no such page")


async def _broker_page(ctx: Ctx, **extra: Any) -> Response:
    (
        (proposed, p_err),
        (recent, r_err),
        (companies, c_err),
        (audit, a_err),
        (people, _),
    ) = await asyncio.gather(
        ctx.attempt("matching.list_introductions", status="proposed", limit=100),
        ctx.attempt("matching.list_introductions", limit=50),
        ctx.attempt("profile.directory.search", kind="company", sort="name", page_size=100),
        ctx.attempt("profile.verification.audit", limit=20),
        ctx.attempt("profile.directory.search", kind="person", sort="name", page_size=100),
    )
    intros = (proposed or {}).get("introductions", []) + (recent or {}).get("introductions", [])
    entries = (audit or {}).get("entries", [])
    known, allies = await intro_names(
        ctx,
        intros,
        [e["actor"] for e in entries]
        + [e["target"] for e in entries if e.get("target_kind") == "person"],
    )
    return ctx.render(
        "broker.html",
        proposed=(proposed or {}).get("introductions", []),
        p_err=p_err,
        recent=(recent or {}).get("introductions", []),
        r_err=r_err,
        companies=(companies or {}).get("entries", []),
        people=(people or {}).get("entries", []),
        c_err=c_err,
        audit=(audit or {}).get("entries", []),
        a_err=a_err,
        names=known,
        brands=allies,
        **extra,
    )


@router.get("/broker")
async def broker(ctx: CtxDep, a: str = "") -> Response:
    """The broker console; ``?a=<person>`` pre-selects the first person to introduce."""
    _require(ctx, "broker", "operator")
    return await _broker_page(ctx, chosen_a=a)


async def _act(ctx: Ctx, op: str, /, key: str = "", **params: Any) -> Response:
    try:
        result = await ctx.call(op, **params)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await _broker_page(ctx, form_err=exc)
    if op == "matching.optimise_introductions":
        return await _broker_page(ctx, optimised=result)
    return RedirectResponse(done("/broker", key), status_code=303)


@router.post("/broker/introductions/{introduction}/curate")
async def curate(ctx: CtxDep, request: Request, introduction: str) -> Response:
    _require(ctx, "broker", "operator")
    form = await request.form()
    return await _act(
        ctx,
        "matching.curate_introduction",
        introduction=introduction,
        action=text(form, "action"),
        note=text(form, "note"),
        key={"approve": "approved", "reject": "rejected"}.get(text(form, "action"), ""),
    )


@router.post("/broker/propose")
async def propose(ctx: CtxDep, request: Request) -> Response:
    _require(ctx, "broker", "operator")
    form = await request.form()
    return await _act(
        ctx,
        "matching.propose_introduction",
        key="proposed",
        a=text(form, "a"),
        b=text(form, "b"),
        note=text(form, "note"),
    )


@router.post("/broker/optimise")
async def optimise(ctx: CtxDep, request: Request) -> Response:
    _require(ctx, "broker", "operator")
    form = await request.form()
    capacity = text(form, "capacity", "3")
    return await _act(
        ctx,
        "matching.optimise_introductions",
        capacity=int(capacity) if capacity.isdigit() else 3,
        dry_run=text(form, "dry_run") == "1",
    )


@router.post("/broker/verify")
async def verify(ctx: CtxDep, request: Request) -> Response:
    _require(ctx, "broker")
    form = await request.form()
    kind = "company" if text(form, "kind") == "company" else "person"
    revoke = text(form, "action") == "revoke"
    name = f"profile.{kind}.{'revoke' if revoke else 'verify'}"
    target = "partner" if kind == "company" else "person"
    return await _act(
        ctx,
        name,
        key="revoked" if revoke else "verified",
        **{target: text(form, "target")},
        note=text(form, "note"),
    )


# ---------------------------------------------------------------- operator

DONE_KEYS = {"categories": "category", "partners": "partner", "people": "person"}


def _identity(ctx: Ctx) -> IdentityAdmin:
    return IdentityAdmin(ctx.portal.http, ctx.portal.settings.issuer)


async def _attempt(coro: Any) -> tuple[Any, ApiError | None]:
    try:
        return await coro, None
    except ApiError as exc:
        return None, exc


@router.get("/operator")
async def operator(ctx: CtxDep) -> Response:
    _require(ctx, "operator")
    return await _operator_page(ctx)


async def _operator_page(ctx: Ctx, **extra: Any) -> Response:
    idp = _identity(ctx)
    (
        (cats, cat_err),
        (mod, m_err),
        (partners, pa_err),
        (people, p_err),
        (eco, e_err),
    ) = await asyncio.gather(
        ctx.attempt("collaboration.forums.list_categories"),
        ctx.attempt("collaboration.moderation.log", limit=20),
        _attempt(idp.partners(ctx.token)),
        _attempt(idp.people(ctx.token)),
        _attempt(idp.ecosystem(ctx.token)),
    )
    rule = (eco or {}).get("admission_rule")
    extra.setdefault("names", await names(ctx, [m["actor"] for m in (mod or {}).get("items", [])]))
    extra.setdefault("policy", (eco or {}).get("membership_policy"))
    extra.setdefault("rule_json", json.dumps(rule) if rule else "")
    return ctx.render(
        "operator.html",
        categories=(cats or {}).get("items", []),
        cat_err=cat_err,
        partners=partners or [],
        pa_err=pa_err,
        people=people or [],
        p_err=p_err,
        moderation=(mod or {}).get("items", []),
        m_err=m_err,
        issuer=ctx.portal.settings.issuer,
        policies=POLICIES,
        e_err=e_err,
        **extra,
    )


async def _operator_act(ctx: Ctx, coro: Any, anchor: str) -> Response:
    try:
        await coro
    except ApiError as exc:
        return await _operator_page(ctx, form_err=exc)
    return RedirectResponse(done(f"/operator#{anchor}", DONE_KEYS[anchor]), status_code=303)


@router.post("/operator/categories")
async def create_category(ctx: CtxDep, request: Request) -> Response:
    _require(ctx, "operator")
    form = await request.form()
    call = ctx.call(
        "collaboration.forums.create_category",
        slug=text(form, "slug"),
        name=text(form, "name"),
        description=text(form, "description"),
    )
    return await _operator_act(ctx, call, "categories")


@router.post("/operator/partners")
async def add_partner(ctx: CtxDep, request: Request) -> Response:
    """A company, and with an e-mail its first admin's invitation (shown to copy)."""
    _require(ctx, "operator")
    form = await request.form()
    name, email = text(form, "name"), text(form, "admin_email") or None
    call = _identity(ctx).add_partner(ctx.token, text(form, "slug"), name, email)
    if email is None:
        return await _operator_act(ctx, call, "partners")
    try:
        created = await call
    except ApiError as exc:
        return await _operator_page(ctx, form_err=exc)
    invitation = invitation_view(ctx, created["invitation"], name)
    return await _operator_page(ctx, invitation=invitation, invited_company=name)


@router.post("/operator/people/{person}")
async def set_active(ctx: CtxDep, request: Request, person: str) -> Response:
    _require(ctx, "operator")
    form = await request.form()
    call = _identity(ctx).set_active(ctx.token, person, text(form, "active") == "1")
    return await _operator_act(ctx, call, "people")


@router.post("/operator/policy")
async def set_policy(ctx: CtxDep, request: Request) -> Response:
    _require(ctx, "operator")
    form = await request.form()
    policy = text(form, "policy")
    rule: dict[str, Any] | None = None
    if text(form, "rule"):
        try:
            rule = safejson.loads(text(form, "rule"))
        except ValueError:
            err = ApiError(422, "validation_failed", "the admission rule must be JSON")
            return await _operator_page(
                ctx, form_err=err, policy=policy, rule_json=text(form, "rule")
            )
    draft = {"policy": policy, "rule_json": text(form, "rule")}
    if policy not in POLICIES:
        err = ApiError(422, "validation_failed", "choose who may join")
        return await _operator_page(ctx, form_err=err, **draft)
    call = _identity(ctx).set_policy(ctx.token, policy, rule)
    try:
        await call
    except ApiError as exc:
        return await _operator_page(ctx, form_err=exc, **draft)
    return await _operator_page(ctx, saved_policy=policy)
