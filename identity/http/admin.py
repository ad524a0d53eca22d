"""Admin API per ecosystem: operators manage everything; brokers may verify partners;
partner admins manage the people of their own company.

Callers present an access token of this ecosystem with scope ``admin`` and role
``operator`` (or ``broker:curate`` and role ``broker`` for partner verification). The
people routes (list, invite, change roles, suspend and reinstate) also admit a partner
admin: a person's token with scope ``profile:write`` and role ``partner_admin``, whose
account is active and still holds that role; it reaches only its own company's people
and grants no role it does not hold itself (:mod:`identity.domain.company_admin`).
An ecosystem's operators manage their own ecosystem (``/ecosystem``: name, lifetimes,
membership policy); creating, listing and disabling ecosystems is the platform admin
API's (:mod:`identity.http.platform`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from identity.domain import company_admin, directory, ecosystems, keys
from identity.domain.company_admin import Admin
from identity.http.platform import SettingsIn
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.oauth.access_tokens import AccessTokenView, decode_own_access_token
from identity.store import repository as repo
from identity.store.transaction import Tx
from mesh.errors import MeshError
from mesh.tokens import bearer

T = TypeVar("T")

router = APIRouter(prefix="/eco/{eco}/admin", tags=["admin"])


class PartnerIn(BaseModel):
    slug: str
    name: str = Field(min_length=1, max_length=200)
    verified: bool = False
    first_admin_email: str | None = Field(
        default=None,
        max_length=254,
        description="invite the company's first admin in the same step (the reply has the link)",
    )


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
    email: str | None = Field(default=None, max_length=254)


def caller_claims(rt: IdentityRuntime, tx: Tx, eco: str, token: str | None) -> dict[str, Any]:
    """The claims of the caller's access token, issued by ``eco`` and not revoked."""
    rt.enter(tx, eco)
    claims = decode_own_access_token(token) if token else None
    if not claims or AccessTokenView(claims).is_revoked():
        raise MeshError(
            ErrorCode.UNAUTHENTICATED, "a valid access token of this ecosystem is needed"
        )
    return claims


def admin_subject(claims: dict[str, Any], broker_ok: bool = False) -> str | None:
    """The caller's subject when ``claims`` let it administer the ecosystem (an operator,
    or a curating broker where ``broker_ok``), else None."""
    scopes, roles = set(claims.get("scope", "").split()), set(claims.get("roles", []))
    if Scope.ADMIN.value in scopes and Role.OPERATOR.value in roles:
        return str(claims["sub"])
    if broker_ok and Scope.BROKER_CURATE.value in scopes and Role.BROKER.value in roles:
        return str(claims["sub"])
    return None


def check_admin(
    rt: IdentityRuntime, tx: Tx, eco: str, token: str | None, broker_ok: bool = False
) -> str:
    """The caller's subject, when its token lets it administer ``eco``."""
    subject = admin_subject(caller_claims(rt, tx, eco, token), broker_ok)
    if subject is None:
        raise MeshError(ErrorCode.FORBIDDEN, "operators of this ecosystem only")
    return subject


def check_people_admin(rt: IdentityRuntime, tx: Tx, eco: str, token: str | None) -> Admin:
    """The caller as an administrator of people: an operator of ``eco`` (every company) or
    an active partner admin (its own company only)."""
    claims = caller_claims(rt, tx, eco, token)
    subject = admin_subject(claims)
    if subject is not None:
        return Admin(subject, None, frozenset())
    return company_admin.partner_admin(tx, eco, claims)


async def _people_admin(
    request: Request, rt: IdentityRuntime, eco: str, fn: Callable[[Tx, Admin], T]
) -> T:
    token = bearer(request.headers.get("authorization"))
    result = await rt.tx(lambda tx: fn(tx, check_people_admin(rt, tx, eco, token)))
    if request.method != "GET":
        rt.rows.forget(eco)
    return result


async def _admin(
    request: Request,
    rt: IdentityRuntime,
    eco: str,
    fn: Callable[..., T],
    *args: Any,
    broker_ok: bool = False,
) -> T:
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
    """A company; with ``first_admin_email``, also the invitation of its first admin (one
    transaction: no company is left that nobody can get into)."""

    def work(tx: Tx, actor: str) -> dict[str, Any]:
        row = _partner(
            directory.create_partner(tx, eco, body.slug, body.name, body.verified, actor)
        )
        if body.first_admin_email:
            roles = [Role.PARTNER_ADMIN.value, Role.MEMBER.value]
            code = directory.invite(tx, eco, body.slug, roles, body.first_admin_email, actor)
            row["invitation"] = _invitation(rt, eco, code, roles, body.first_admin_email)
        return row

    return await _admin(request, rt, eco, work)


def _invitation(
    rt: IdentityRuntime, eco: str, code: str, roles: list[str], email: str | None
) -> dict[str, Any]:
    return {
        "code": code,
        "signup_url": f"{rt.settings.issuer(eco)}/signup?invitation={code}",
        "roles": sorted(set(roles)),
        "email": email,
    }


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
    """Operators: everyone (or one company's); partner admins: their own company's."""

    def work(tx: Tx, admin: Admin) -> list[dict[str, Any]]:
        return [_person(p) for p in repo.list_people(tx.s, eco, admin.company(partner))]

    return await _people_admin(request, rt, eco, work)


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
    """Roles and suspension (``active: false`` cuts the person off: sessions, refresh and
    access tokens are revoked); partner admins only within their company and their roles."""

    def work(tx: Tx, admin: Admin) -> dict[str, Any]:
        company_admin.check_membership_change(tx, eco, admin, person_id, body.roles, body.active)
        return _person(
            directory.update_membership(tx, eco, person_id, body.roles, body.active, admin.sub)
        )

    return await _people_admin(request, rt, eco, work)


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
    """A one-time sign-up link into a company; partner admins invite into their own only,
    with roles they hold themselves."""

    def work(tx: Tx, admin: Admin) -> dict[str, Any]:
        company_admin.check_grant(admin, body.partner, body.roles)
        code = directory.invite(tx, eco, body.partner, body.roles, body.email, admin.sub)
        return _invitation(rt, eco, code, body.roles or ["member"], body.email)

    return await _people_admin(request, rt, eco, work)


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
