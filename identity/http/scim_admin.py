"""A partner's SCIM provisioning, administered: its directory's bearer tokens and the
rules mapping the directory's groups to roles.

Who: an operator of the ecosystem, or a partner admin of that partner (the people admin
API's check, :func:`identity.http.admin.check_people_admin`); another partner's admin is
refused (403).

| route | what |
|---|---|
| ``POST {iss}/admin/partners/{p}/scim-tokens`` | ``{"name", "ttl_s"?}`` → 201, ``token`` (once) |
| ``GET {iss}/admin/partners/{p}/scim-tokens`` | the partner's tokens (never their secrets) |
| ``DELETE {iss}/admin/partners/{p}/scim-tokens/{id}`` | revoke (204) |
| ``GET/PUT {iss}/admin/partners/{p}/scim-role-rules`` | ``{"rules": [{"group", "roles"}]}`` |

Both rule routes answer ``{"rules", "grantable"}``: ``grantable`` lists the roles the caller
may put in a rule, so a page offers exactly those.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from identity.domain import scim_admin
from identity.domain.company_admin import Admin
from identity.http.admin import check_people_admin
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store.transaction import Tx
from mesh.tokens import bearer

router = APIRouter(prefix="/eco/{eco}/admin/partners/{partner}", tags=["admin"])


class ScimTokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    ttl_s: int | None = Field(default=None, ge=60, le=3 * 365 * 24 * 3600)


class RoleRuleIn(BaseModel):
    group: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(max_length=10)


class RoleRulesIn(BaseModel):
    rules: list[RoleRuleIn] = Field(max_length=scim_admin.MAX_RULES)


async def _as_admin(request: Request, rt: IdentityRuntime, eco: str, fn: Any) -> Any:
    token = bearer(request.headers.get("authorization"))
    result = await rt.tx(lambda tx: fn(tx, check_people_admin(rt, tx, eco, token)))
    if request.method != "GET":
        rt.rows.forget(eco)
    return result


@router.post("/scim-tokens", status_code=201)
async def issue_token(
    request: Request, eco: str, partner: str, body: ScimTokenIn, rt: RuntimeDep
) -> dict[str, Any]:
    def work(tx: Tx, admin: Any) -> dict[str, Any]:
        row, secret = scim_admin.issue_token(tx, eco, partner, body.name, body.ttl_s, admin)
        scim_url = f"{rt.settings.issuer(eco)}/scim/v2"
        return {**scim_admin.view_token(row), "token": secret, "scim_url": scim_url}

    result: dict[str, Any] = await _as_admin(request, rt, eco, work)
    return result


@router.get("/scim-tokens")
async def list_tokens(
    request: Request, eco: str, partner: str, rt: RuntimeDep
) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await _as_admin(
        request, rt, eco, lambda tx, admin: scim_admin.list_tokens(tx, eco, partner, admin)
    )
    return result


@router.delete("/scim-tokens/{token_id}", status_code=204)
async def revoke_token(
    request: Request, eco: str, partner: str, token_id: str, rt: RuntimeDep
) -> Response:
    await _as_admin(
        request,
        rt,
        eco,
        lambda tx, admin: scim_admin.revoke_token(tx, eco, partner, token_id, admin),
    )
    return Response(status_code=204)


def _rules_doc(rules: list[dict[str, Any]], admin: Admin) -> dict[str, Any]:
    return {"rules": rules, "grantable": scim_admin.grantable_roles(admin)}


@router.get("/scim-role-rules")
async def get_rules(request: Request, eco: str, partner: str, rt: RuntimeDep) -> dict[str, Any]:
    doc: dict[str, Any] = await _as_admin(
        request,
        rt,
        eco,
        lambda tx, admin: _rules_doc(scim_admin.view_rules(tx, eco, partner, admin), admin),
    )
    return doc


@router.put("/scim-role-rules")
async def set_rules(
    request: Request, eco: str, partner: str, body: RoleRulesIn, rt: RuntimeDep
) -> dict[str, Any]:
    pairs = [(r.group, r.roles) for r in body.rules]
    doc: dict[str, Any] = await _as_admin(
        request,
        rt,
        eco,
        lambda tx, admin: _rules_doc(scim_admin.set_rules(tx, eco, partner, pairs, admin), admin),
    )
    return doc
