"""Dynamic Client Registration (RFC 7591), its management (RFC 7592), and the admin API
through which a partner's admins issue, list and revoke initial access tokens.

Who may issue initial access tokens for partner ``p``: a partner admin of ``p`` (role
``partner_admin``, scope ``connector:admin``, the scope for wiring a partner's back-ends)
or an operator (role ``operator``, scope ``admin``), with a token of this ecosystem.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from identity.domain import registration as reg
from identity.http.admin import admin_subject, caller_claims
from identity.http.oidc import NO_STORE
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store import repository as repo
from identity.store.transaction import Tx
from mesh.errors import MeshError
from mesh.tokens import bearer

router = APIRouter()
MAX_BODY = 64 * 1024


class InitialTokenIn(BaseModel):
    max_clients: int = Field(default=1, ge=1, le=reg.MAX_CLIENTS)
    scopes: list[str] = Field(default_factory=list, max_length=50)
    grant_types: list[str] = Field(default=["authorization_code", "refresh_token"], max_length=4)
    redirect_hosts: list[str] = Field(default_factory=list, max_length=50)
    ttl_s: int = Field(default=7 * 24 * 3600, ge=60, le=365 * 24 * 3600)


def _partner_admin(rt: IdentityRuntime, tx: Tx, eco: str, token: str | None, partner: str) -> str:
    """The caller's subject when it may manage ``partner``'s initial access tokens."""
    claims = caller_claims(rt, tx, eco, token)
    operator = admin_subject(claims)
    if operator is not None:
        return operator
    scopes, roles = set(claims.get("scope", "").split()), set(claims.get("roles", []))
    if (
        Scope.CONNECTOR_ADMIN.value in scopes
        and Role.PARTNER_ADMIN.value in roles
        and claims.get("partner") == partner
    ):
        return str(claims["sub"])
    raise MeshError(ErrorCode.FORBIDDEN, "this partner's admins and the operators only")


def _token(request: Request) -> str | None:
    return bearer(request.headers.get("authorization"))


@router.post("/eco/{eco}/admin/partners/{partner}/initial-access-tokens", status_code=201)
async def issue(
    request: Request, eco: str, partner: str, body: InitialTokenIn, rt: RuntimeDep
) -> dict[str, Any]:
    token = _token(request)
    limits = reg.Limits(**body.model_dump())

    def work(tx: Tx) -> dict[str, Any]:
        actor = _partner_admin(rt, tx, eco, token, partner)
        row, secret = reg.issue_initial_token(
            tx, eco, partner, limits, actor, rt.settings.initial_access_token_max_ttl_s
        )
        return {**reg.view_initial_token(row), "token": secret}

    result: dict[str, Any] = await rt.tx(work)
    return result


@router.get("/eco/{eco}/admin/partners/{partner}/initial-access-tokens")
async def list_tokens(
    request: Request, eco: str, partner: str, rt: RuntimeDep
) -> list[dict[str, Any]]:
    token = _token(request)

    def work(tx: Tx) -> list[dict[str, Any]]:
        _partner_admin(rt, tx, eco, token, partner)
        return [reg.view_initial_token(r) for r in repo.list_initial_tokens(tx.s, eco, partner)]

    result: list[dict[str, Any]] = await rt.tx(work)
    return result


@router.delete(
    "/eco/{eco}/admin/partners/{partner}/initial-access-tokens/{token_id}", status_code=204
)
async def revoke(request: Request, eco: str, partner: str, token_id: str, rt: RuntimeDep) -> None:
    token = _token(request)

    def work(tx: Tx) -> None:
        actor = _partner_admin(rt, tx, eco, token, partner)
        reg.revoke_initial_token(tx, eco, token_id, partner, actor)

    await rt.tx(work)


# --- RFC 7591 / 7592 ---------------------------------------------------------------------


def _error(exc: reg.RegistrationError | reg.TokenRefused) -> JSONResponse:
    if isinstance(exc, reg.RegistrationError):
        body = {"error": exc.error, "error_description": exc.description}
        return JSONResponse(body, 400, NO_STORE)
    error = "invalid_token" if exc.status == 401 else "insufficient_scope"
    challenge = f'Bearer error="{error}", error_description="{exc.description}"'
    headers = {"WWW-Authenticate": challenge, **NO_STORE}
    return JSONResponse({"error": error, "error_description": exc.description}, exc.status, headers)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise reg.RegistrationError("invalid_client_metadata", "the metadata is too large")
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        raise reg.RegistrationError("invalid_client_metadata", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise reg.RegistrationError("invalid_client_metadata", "the body is not a JSON object")
    return body


@router.post("/eco/{eco}/register")
async def register(request: Request, eco: str, rt: RuntimeDep) -> Response:
    token = _token(request)
    issuer = rt.settings.issuer(eco)

    def work(tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        rt.enter(tx, eco)
        client, secret, registration_token = reg.register(tx, eco, token, body)
        doc = reg.view(client, issuer)
        doc["registration_access_token"] = registration_token
        if secret:
            doc["client_secret"], doc["client_secret_expires_at"] = secret, 0
        return doc

    try:
        body = await _json(request)
        doc = await rt.tx(work, body)
    except (reg.RegistrationError, reg.TokenRefused) as exc:
        return _error(exc)
    return JSONResponse(doc, 201, NO_STORE)


@router.get("/eco/{eco}/register/{client_id}")
async def read(request: Request, eco: str, client_id: str, rt: RuntimeDep) -> Response:
    token = _token(request)

    def work(tx: Tx) -> dict[str, Any]:
        rt.enter(tx, eco)
        return reg.view(reg.managed(tx, eco, client_id, token), rt.settings.issuer(eco))

    try:
        doc = await rt.tx(work)
    except reg.TokenRefused as exc:
        return _error(exc)
    return JSONResponse(doc, 200, NO_STORE)


@router.put("/eco/{eco}/register/{client_id}")
async def update(request: Request, eco: str, client_id: str, rt: RuntimeDep) -> Response:
    token = _token(request)

    def work(tx: Tx, body: dict[str, Any]) -> dict[str, Any]:
        rt.enter(tx, eco)
        client = reg.update(tx, eco, client_id, token, body)
        return reg.view(client, rt.settings.issuer(eco))

    try:
        body = await _json(request)
        doc = await rt.tx(work, body)
    except (reg.RegistrationError, reg.TokenRefused) as exc:
        return _error(exc)
    rt.rows.forget(eco)
    return JSONResponse(doc, 200, NO_STORE)


@router.delete("/eco/{eco}/register/{client_id}")
async def delete(request: Request, eco: str, client_id: str, rt: RuntimeDep) -> Response:
    token = _token(request)

    def work(tx: Tx) -> None:
        rt.enter(tx, eco)
        reg.delete(tx, eco, client_id, token)

    try:
        await rt.tx(work)
    except reg.TokenRefused as exc:
        return _error(exc)
    rt.rows.forget(eco)
    return Response(status_code=204, headers=NO_STORE)
