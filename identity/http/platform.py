"""Platform admin API: the ecosystems of this deployment (``/admin/ecosystems``).

Who may call it: operators (role ``operator``, scope ``admin``) of the *platform
ecosystem*, the one named by ``PM_IDENTITY_PLATFORM_ECOSYSTEM``, with an access token of
that ecosystem's issuer. One deployment serving several brands gives each brand its own
ecosystem and its own operators, who manage their ecosystem through
``{iss}/admin/ecosystem`` and everything under it, but cannot create, list or disable
other brands' ecosystems: that is a deployment-level act, reserved to the people who run
the deployment, whom the platform ecosystem holds. Their tokens are ordinary tokens
(short-lived, audited under their subject, revocable) rather than a static bootstrap
secret. Unset, no one may manage ecosystems through the API (the ``create-ecosystem``
command still works on the database). ``make run`` names the demo ecosystem ``acme``;
in production dedicate one (``python -m identity create-ecosystem --eco platform …``).

Denials: no token, an expired, revoked or foreign-signed one → 401; a valid token of
another ecosystem, or of the platform without the operator role or the ``admin`` scope
→ 403.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.claims import Role, Scope
from contracts.errors import ErrorCode
from identity.domain import directory, ecosystems
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.oauth.access_tokens import AccessTokenView, decode_own_access_token
from identity.store import repository as repo
from identity.store.transaction import Tx
from mesh.errors import MeshError
from mesh.jws import parse_compact
from mesh.tokens import bearer

router = APIRouter(prefix="/admin/ecosystems", tags=["admin"])
SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"


class OperatorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,120}$")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    # Without a password the reply carries an invitation for the operator to sign up.
    password: str | None = Field(default=None, min_length=12, max_length=256)


class PartnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)


class SettingsIn(BaseModel):
    """What an ecosystem's settings may be changed to (its own operators' PATCH too)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    access_ttl: int | None = Field(default=None, ge=60, le=24 * 3600)
    refresh_ttl: int | None = Field(default=None, ge=300, le=365 * 24 * 3600)
    membership_policy: Literal["open", "invite", "claims"] | None = None
    admission_rule: dict[str, Any] | None = None
    default_partner: str | None = Field(default=None, pattern=SLUG)
    access_token_alg: Literal["ES256", "RS256"] | None = None
    require_pushed_authorization_requests: bool | None = None


class EcosystemCreate(SettingsIn):
    slug: str = Field(pattern=SLUG)
    name: str = Field(min_length=1, max_length=200)
    partner: PartnerIn | None = None
    operator: OperatorIn | None = None

    @model_validator(mode="after")
    def _operator_needs_partner(self) -> EcosystemCreate:
        if self.operator is not None and self.partner is None:
            raise ValueError("an operator belongs to a partner: give partner too")
        return self


class PlatformUpdate(SettingsIn):
    disabled: bool | None = None


def token_ecosystem(rt: IdentityRuntime, token: str) -> str | None:
    """The ecosystem of this deployment whose issuer a token names (unverified)."""
    try:  # the kit's parser: bounded in depth, unlike PyJWT's json.loads
        iss = parse_compact(token).payload.get("iss", "")
    except ValueError:
        return None
    prefix = rt.settings.issuer("")
    if isinstance(iss, str) and iss.startswith(prefix):
        eco = iss[len(prefix) :]
        return eco if eco and "/" not in eco else None
    return None


def check_platform_operator(rt: IdentityRuntime, tx: Tx, token: str | None) -> str:
    """The caller's subject, when it is an operator of the platform ecosystem."""
    unauthenticated = MeshError(ErrorCode.UNAUTHENTICATED, "a valid access token is needed")
    eco = token_ecosystem(rt, token) if token else None
    if not token or eco is None:
        raise unauthenticated
    try:
        rt.enter(tx, eco)
    except MeshError:
        raise unauthenticated from None
    claims = decode_own_access_token(token)
    if not claims or AccessTokenView(claims).is_revoked():
        raise unauthenticated
    scopes, roles = set(claims.get("scope", "").split()), set(claims.get("roles", []))
    operator = Scope.ADMIN.value in scopes and Role.OPERATOR.value in roles
    if operator and eco == rt.settings.platform_ecosystem:
        return str(claims["sub"])
    raise MeshError(ErrorCode.FORBIDDEN, "operators of the platform ecosystem only")


async def _platform(request: Request, rt: IdentityRuntime, fn: Any) -> Any:
    token = bearer(request.headers.get("authorization"))
    return await rt.tx(lambda tx: fn(tx, check_platform_operator(rt, tx, token)))


def _forget(rt: IdentityRuntime, slug: str) -> None:
    rt.rows.forget(slug)
    rt.keys.invalidate(slug)


@router.post("", status_code=201)
async def create(request: Request, body: EcosystemCreate, rt: RuntimeDep) -> dict[str, Any]:
    token = bearer(request.headers.get("authorization"))
    await rt.tx(lambda tx: check_platform_operator(rt, tx, token))  # before hashing
    op = body.operator
    hashed = await asyncio.to_thread(rt.passwords.hash, op.password) if op and op.password else None
    boot = None
    if body.partner is not None:
        boot = ecosystems.Bootstrap(
            body.partner.slug,
            body.partner.name,
            op.username if op else None,
            op.name if op else None,
            op.email if op else None,
            hashed,
        )
    settings = body.model_dump(exclude_none=True, exclude={"slug", "name", "partner", "operator"})

    def work(tx: Tx, actor: str) -> dict[str, Any]:
        made = ecosystems.create(tx, body.slug, body.name, rt.sealer, actor, settings, boot)
        doc = ecosystems.view(made.ecosystem, rt.settings.issuer(body.slug))
        doc["discovery"] = f"{doc['issuer']}/.well-known/openid-configuration"
        if made.operator is not None:
            doc["operator"] = {"id": made.operator.id, "username": made.operator.username}
        if made.invitation is not None:
            doc["operator_signup_url"] = f"{doc['issuer']}/signup?invitation={made.invitation}"
        return doc

    result: dict[str, Any] = await _platform(request, rt, work)
    _forget(rt, body.slug)
    return result


@router.get("")
async def list_ecosystems(request: Request, rt: RuntimeDep) -> list[dict[str, Any]]:
    def work(tx: Tx, _actor: str) -> list[dict[str, Any]]:
        return [ecosystems.view(e, rt.settings.issuer(e.slug)) for e in ecosystems.listing(tx)]

    result: list[dict[str, Any]] = await _platform(request, rt, work)
    return result


@router.get("/{slug}")
async def get_ecosystem(request: Request, slug: str, rt: RuntimeDep) -> dict[str, Any]:
    def work(tx: Tx, _actor: str) -> dict[str, Any]:
        row = repo.get_ecosystem(tx.s, slug)
        if row is None:
            raise MeshError(ErrorCode.NOT_FOUND, "no such ecosystem")
        return ecosystems.view(row, rt.settings.issuer(slug))

    result: dict[str, Any] = await _platform(request, rt, work)
    return result


@router.patch("/{slug}")
async def update_ecosystem(
    request: Request, slug: str, body: PlatformUpdate, rt: RuntimeDep
) -> dict[str, Any]:
    platform = rt.settings.platform_ecosystem

    def work(tx: Tx, actor: str) -> dict[str, Any]:
        changes = body.model_dump(exclude_none=True, exclude={"disabled"})
        row = ecosystems.update(tx, slug, changes, actor) if changes else None
        if body.disabled is not None:
            row = ecosystems.set_disabled(tx, slug, body.disabled, actor, platform)
        if row is None:
            row = directory.ecosystem(tx, slug)
        return ecosystems.view(row, rt.settings.issuer(slug))

    result: dict[str, Any] = await _platform(request, rt, work)
    _forget(rt, slug)
    return result


@router.delete("/{slug}")
async def disable_ecosystem(request: Request, slug: str, rt: RuntimeDep) -> dict[str, Any]:
    """Disable (kept, and can be enabled again with ``PATCH {"disabled": false}``)."""
    platform = rt.settings.platform_ecosystem

    def work(tx: Tx, actor: str) -> dict[str, Any]:
        row = ecosystems.set_disabled(tx, slug, True, actor, platform)
        return ecosystems.view(row, rt.settings.issuer(slug))

    result: dict[str, Any] = await _platform(request, rt, work)
    _forget(rt, slug)
    return result
