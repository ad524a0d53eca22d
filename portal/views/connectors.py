"""Connector catalogue (operations granted to my company) and, for partner admins,
our back-ends, their operations and the grants on them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from mesh import safejson
from portal.api import BY_NAME, ApiError
from portal.forms import text
from portal.views.names import brands
from portal.web import Ctx, CtxDep, done

router = APIRouter(prefix="/connectors")
C = "connector."


def example_input(schema: dict[str, Any]) -> str:
    """A JSON object to start from: each property of the operation's input schema with a
    value of its type (required ones, or all when none is required)."""
    props = schema.get("properties") or {}
    wanted = schema.get("required") or list(props)
    samples = {"string": "A-1", "integer": 1, "number": 1, "boolean": True, "array": []}
    value = {
        name: (props.get(name) or {}).get(
            "example", samples.get((props.get(name) or {}).get("type", "string"), "")
        )
        for name in wanted
    }
    return json.dumps(value)


def _grants_across() -> bool:
    """Whether this deployment's connector grants to partners of allied ecosystems."""
    op = BY_NAME.get(C + "grant_create")
    return op is not None and "grantee_eco" in op.request.model_fields


def _admin(ctx: Ctx) -> bool:
    return ctx.session.partner is not None and ctx.session.has_role("partner_admin")


async def _page(ctx: Ctx, **extra: Any) -> Response:
    partner = ctx.session.partner
    catalogue, cat_err = await ctx.attempt(C + "catalogue")
    items = (catalogue or {}).get("items", [])
    backends, grants, b_err, allies = [], {}, None, {}
    if _admin(ctx):  # an allied ecosystem's partner may have the same id: not ours
        own = [op for op in items if op.get("partner") == partner and not op.get("ecosystem")]
        result, b_err = await ctx.attempt(C + "backend_list", partner=partner)
        backends = (result or {}).get("items", [])
        lists = await asyncio.gather(
            *(ctx.attempt(C + "grant_list", operation=op["id"]) for op in own)
        )
        grants = {
            op["id"]: (g or {}).get("items", []) for op, (g, _e) in zip(own, lists, strict=True)
        }
        allies = await brands(ctx) if _grants_across() else {}
    audit, a_err = await ctx.attempt(C + "audit", limit=20)
    examples = {op["id"]: example_input(op.get("input_schema") or {}) for op in items}
    return ctx.render(
        "connectors.html",
        catalogue=items,
        examples=examples,
        cat_err=cat_err,
        admin=_admin(ctx),
        backends=backends,
        b_err=b_err,
        grants=grants,
        allies=allies,
        audit=(audit or {}).get("items", []),
        a_err=a_err,
        **extra,
    )


@router.get("")
async def connectors(ctx: CtxDep) -> Response:
    return await _page(ctx)


async def _admin_call(ctx: Ctx, op: str, /, key: str = "", **params: Any) -> Response:
    if not _admin(ctx):
        raise ApiError(404, "not_found", "no such page")
    try:
        await ctx.call(op, **params)
    except ApiError as exc:
        return await _page(ctx, form_err=exc)
    return RedirectResponse(done("/connectors#admin", key), status_code=303)


@router.post("/backends")
async def register_backend(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    auth: dict[str, Any] = {"kind": "none"}
    if text(form, "api_key"):
        auth = {
            "kind": "api_key",
            "header": text(form, "header") or "X-Api-Key",
            "api_key": text(form, "api_key"),
        }
    return await _admin_call(
        ctx,
        C + "backend_register",
        key="backend",
        partner=ctx.session.partner,
        name=text(form, "name"),
        base_url=text(form, "base_url"),
        auth=auth,
        description=text(form, "description"),
    )


@router.post("/operations")
async def declare_operation(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    return await _admin_call(
        ctx,
        C + "operation_declare",
        key="operation",
        partner=ctx.session.partner,
        backend=text(form, "backend"),
        name=text(form, "name"),
        method=text(form, "method") or "POST",
        path=text(form, "path"),
        visibility=text(form, "visibility") or "private",
        description=text(form, "description"),
    )


@router.post("/grants")
async def create_grant(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    return await _admin_call(
        ctx,
        C + "grant_create",
        key="grant",
        operation=text(form, "operation"),
        grantee=text(form, "grantee") or None,
        **({"grantee_eco": text(form, "grantee_eco") or None} if _grants_across() else {}),
    )


@router.post("/grants/revoke")
async def revoke_grant(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    return await _admin_call(
        ctx,
        C + "grant_revoke",
        key="grant-revoked",
        operation=text(form, "operation"),
        grant=text(form, "grant"),
    )


@router.post("/invoke")
async def invoke(ctx: CtxDep, request: Request) -> Response:
    form = await request.form()
    try:
        payload = safejson.loads(text(form, "input") or "{}")
        if not isinstance(payload, dict):
            raise ValueError("not an object")
    except ValueError:
        err: ApiError | None = ApiError(422, "validation_failed", "the input must be a JSON object")
        return await _page(
            ctx, form_err=err, chosen=text(form, "operation"), input_json=text(form, "input")
        )
    operation = text(form, "operation")
    result, err = await ctx.attempt(C + "invoke", operation=operation, input=payload)
    return await _page(
        ctx,
        form_err=err,
        invoked=result,
        invoked_json=json.dumps(result or {}, indent=2)[:20000],
        chosen=operation,
        input_json=text(form, "input"),
    )
