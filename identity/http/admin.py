"""Admin API per ecosystem: operators manage everything; brokers may verify partners.

Callers present an access token of this ecosystem with scope ``admin`` and role
``operator`` (or ``broker:curate`` and role ``broker`` for partner verification).
An ecosystem's operators manage their own ecosystem (``/ecosystem``: name, lifetimes,
membership policy); creating, listing and disabling ecosystems is the platform admin
API's (:mod:`identity.http.platform`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from identity.domain import directory, ecosystems, keys
from identity.http.platform import SettingsIn
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.oauth.access_tokens import AccessTokenView, decode_own_access_token
from identity.store import repository as repo
from identity.store.transaction import Tx
from mesh.errors import MeshError
from mesh.tokens import bearer

router = APIRouter(prefix="/eco/{eco}/admin", tags=["admin"])


class PartnerIn(BaseModel):
    slug: str
    name: str = Field(min_length=1, max_length=200)
    verified: bool = False


class VerificationIn(BaseModel):
    verified: bool = True


class PersonIn(BaseModel):
    username: str
    partner: str
    name: str = Field(min_length=1, max_length=200)
    email: str | None = None
    roles: list[str] = ["member"]
    password: str | None = Field(default=None, min_length=12, max_length=256)


class MembershipIn(BaseModel):
    roles: list[str] | None = None
    active: bool | None = None


class ClientIn(BaseModel):
    client_id: str
    name: str
    partner: str | None = None
    auth_method: str = "client_secret_basic"
    grant_types: list[str] = ["client_credentials"]
    scopes: list[str] = []
    redirect_uris: list[str] = []
    post_logout_redirect_uris: list[str] = []
    id_token_alg: str = "RS256"
    roles: list[str] = []
    first_party: bool = False
    jwks: dict[str, Any] | None = None
    dpop_bound_access_tokens: bool = False
    application_type: str = "web"
    require_pushed_authorization_requests: bool = False
    backchannel_logout_uri: str | None = Field(default=None, max_length=2000)
    backchannel_logout_session_required: bool = False


class PolicyIn(BaseModel):
    membership_policy: str
    admission_rule: dict[str, Any] | None = None
    default_partner: str | None = None


class ExchangeRulesIn(BaseModel):
    rules: list[dict[str, Any]]


class InvitationIn(BaseModel):
    partner: str
    roles: list[str] = ["member"]
    email: str | None = None


def check_admin(
    rt: IdentityRuntime, tx: Tx, eco: str, token: str | None, broker_ok: bool = False
) -> str:
    """The caller's subject, when its token lets it administer ``eco``."""
    rt.enter(tx, eco)
    claims = decode_own_access_token(token) if token else None
    if not claims or AccessTokenView(claims).is_revoked():
        raise MeshError(
            ErrorCode.UNAUTHENTICATED, "a valid access token of this ecosystem is needed"
        )
    scopes, roles = set(claims.get("scope", "").split()), set(claims.get("roles", []))
    if Scope.ADMIN.value in scopes and Role.OPERATOR.value in roles:
        return str(claims["sub"])
    if broker_ok and Scope.BROKER_CURATE.value in scopes and Role.BROKER.value in roles:
        return str(claims["sub"])
    raise MeshError(ErrorCode.FORBIDDEN, "operators of this ecosystem only")


async def _admin(
    request: Request, rt: IdentityRuntime, eco: str, fn: Any, *args: Any, broker_ok: bool = False
) -> Any:
    token = bearer(request.headers.get("authorization"))
    result = await rt.tx(lambda tx: fn(tx, check_admin(rt, tx, eco, token, broker_ok), *args))
    if request.method != "GET":
        rt.rows.forget(eco)  # admin writes refresh the cached rows and keys of this ecosystem
        rt.keys.invalidate(eco)
        rt.backchannel.wake()  # a disabled person's sessions may owe logout tokens
    return result


def _partner(p: Any) -> dict[str, Any]:
    return {"slug": p.slug, "name": p.name, "verified": p.verified}


def _person(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "username": p.username,
        "partner": p.partner,
        "name": p.name,
        "email": p.email,
        "roles": p.roles,
        "active": p.active,
    }


def _client(c: Any) -> dict[str, Any]:
    return {
        "client_id": c.client_id,
        "name": c.name,
        "partner": c.partner,
        "auth_method": c.auth_method,
        "grant_types": c.grant_types,
        "scopes": c.scopes,
        "redirect_uris": c.redirect_uris,
        "roles": c.roles,
        "first_party": c.first_party,
        "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
        "application_type": c.application_type,
        "require_pushed_authorization_requests": c.require_pushed_authorization_requests,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "backchannel_logout_session_required": c.backchannel_logout_session_required,
    }


@router.get("/partners")
async def list_partners(request: Request, eco: str, rt: RuntimeDep) -> list[dict[str, Any]]:
    return await _admin(
        request,
        rt,
        eco,
        lambda tx, _a: [_partner(p) for p in repo.list_partners(tx.s, eco)],
        broker_ok=True,
    )


@router.post("/partners", status_code=201)
async def create_partner(
    request: Request, eco: str, body: PartnerIn, rt: RuntimeDep
) -> dict[str, Any]:
    return await _admin(
        request,
        rt,
        eco,
        lambda tx, a: _partner(
            directory.create_partner(tx, eco, body.slug, body.name, body.verified, actor=a)
        ),
    )


@router.post("/partners/{slug}/verification")
async def verify_partner(
    request: Request, eco: str, slug: str, body: VerificationIn, rt: RuntimeDep
) -> dict[str, Any]:
    return await _admin(
        request,
        rt,
        eco,
        lambda tx, a: _partner(directory.verify_partner(tx, eco, slug, body.verified, a)),
        broker_ok=True,
    )


@router.get("/people")
async def list_people(
    request: Request, eco: str, rt: RuntimeDep, partner: str | None = None
) -> list[dict[str, Any]]:
    return await _admin(
        request, rt, eco, lambda tx, _a: [_person(p) for p in repo.list_people(tx.s, eco, partner)]
    )


@router.post("/people", status_code=201)
async def create_person(
    request: Request, eco: str, body: PersonIn, rt: RuntimeDep
) -> dict[str, Any]:
    token = bearer(request.headers.get("authorization"))
    await rt.tx(lambda tx: check_admin(rt, tx, eco, token))
    hashed = await asyncio.to_thread(rt.passwords.hash, body.password) if body.password else None
    return await _admin(
        request,
        rt,
        eco,
        lambda tx, a: _person(
            directory.create_person(
                tx, eco, body.username, body.partner, body.name, body.roles, hashed, body.email, a
            )
        ),
    )


@router.patch("/people/{person_id}")
async def update_membership(
    request: Request, eco: str, person_id: str, body: MembershipIn, rt: RuntimeDep
) -> dict[str, Any]:
    return await _admin(
        request,
        rt,
        eco,
        lambda tx, a: _person(
            directory.update_membership(tx, eco, person_id, body.roles, body.active, a)
        ),
    )


@router.get("/clients")
async def list_clients(request: Request, eco: str, rt: RuntimeDep) -> list[dict[str, Any]]:
    return await _admin(
        request, rt, eco, lambda tx, _a: [_client(c) for c in repo.list_clients(tx.s, eco)]
    )


@router.post("/clients", status_code=201)
async def create_client(
    request: Request, eco: str, body: ClientIn, rt: RuntimeDep
) -> dict[str, Any]:
    def work(tx: Tx, actor: str) -> dict[str, Any]:
        fields = body.model_dump(exclude={"client_id", "name"})
        client, secret = directory.create_client(
            tx, eco, body.client_id, body.name, actor=actor, sealer=rt.sealer, **fields
        )
        return {**_client(client), "client_secret": secret}

    return await _admin(request, rt, eco, work)


@router.post("/keys/rotate")
async def rotate_keys(request: Request, eco: str, rt: RuntimeDep) -> dict[str, Any]:
    def work(tx: Tx, _actor: str) -> dict[str, Any]:
        eco_row = directory.ecosystem(tx, eco)
        return keys.rotate(tx, eco, rt.sealer, max(eco_row.access_ttl, 3600))

    result: dict[str, Any] = await _admin(request, rt, eco, work)
    rt.keys.invalidate(eco)
    return result


@router.put("/policy")
async def set_policy(request: Request, eco: str, body: PolicyIn, rt: RuntimeDep) -> dict[str, Any]:
    def work(tx: Tx, actor: str) -> dict[str, Any]:
        row = directory.set_policy(
            tx, eco, body.membership_policy, body.admission_rule, body.default_partner, actor
        )
        return {
            "membership_policy": row.membership_policy,
            "admission_rule": row.admission_rule,
            "default_partner": row.default_partner,
        }

    return await _admin(request, rt, eco, work)


@router.put("/exchange-rules")
async def set_exchange_rules(
    request: Request, eco: str, body: ExchangeRulesIn, rt: RuntimeDep
) -> dict[str, Any]:
    await _admin(
        request, rt, eco, lambda tx, a: directory.set_exchange_rules(tx, eco, body.rules, a)
    )
    return {"rules": body.rules}


@router.post("/invitations", status_code=201)
async def invite(request: Request, eco: str, body: InvitationIn, rt: RuntimeDep) -> dict[str, Any]:
    code = await _admin(
        request,
        rt,
        eco,
        lambda tx, a: directory.invite(tx, eco, body.partner, body.roles, body.email, a),
    )
    return {"code": code, "signup_url": f"{rt.settings.issuer(eco)}/signup?invitation={code}"}


class UpstreamIn(BaseModel):
    alias: str
    name: str
    issuer: str
    client_id: str
    client_secret: str
    scope: str | None = None
    mapping: dict[str, Any] = {}


@router.post("/upstreams", status_code=201)
async def register_upstream(
    request: Request, eco: str, body: UpstreamIn, rt: RuntimeDep
) -> dict[str, Any]:
    from identity.http.broker import register_upstream as register

    up = await _admin(request, rt, eco, lambda tx, a: register(tx, rt, eco, body.model_dump(), a))
    return {"alias": up.alias, "name": up.name, "issuer": up.issuer, "mapping": up.mapping}


@router.get("/ecosystem")
async def get_ecosystem(request: Request, eco: str, rt: RuntimeDep) -> dict[str, Any]:
    """The ecosystem's own settings (its operators; the platform's see all at /admin/ecosystems)."""
    return await _admin(
        request,
        rt,
        eco,
        lambda tx, _a: ecosystems.view(directory.ecosystem(tx, eco), rt.settings.issuer(eco)),
    )


@router.patch("/ecosystem")
async def update_ecosystem(
    request: Request, eco: str, body: SettingsIn, rt: RuntimeDep
) -> dict[str, Any]:
    """Name, token lifetimes and membership policy; disabling is for the platform's operators."""

    def work(tx: Tx, actor: str) -> dict[str, Any]:
        row = ecosystems.update(tx, eco, body.model_dump(exclude_none=True), actor)
        return ecosystems.view(row, rt.settings.issuer(eco))

    return await _admin(request, rt, eco, work)
