"""Identity brokering: people of a partner sign in through their company's OIDC provider.

``/eco/{eco}/broker/{alias}/start`` sends the browser to the upstream provider (code flow
with PKCE, state and nonce kept in a sealed cookie); ``…/callback`` exchanges the code,
verifies the upstream ID token against the upstream's JWKS, applies the ecosystem's
membership policy (claims-gated admission) and the upstream's mapping rules (claims →
partner and roles), then starts a session here.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from identity.domain import directory
from identity.domain import signin as logic
from identity.domain.crypto import pkce_pair
from identity.http import cookies
from identity.http.pages import render, safe_return
from identity.http.runtime import IdentityRuntime, RuntimeDep
from identity.store import repository as repo
from identity.store.models import Person, UpstreamProvider
from identity.store.transaction import Tx
from mesh.errors import conflict, not_found
from mesh.jws import parse_compact

router = APIRouter()
STATE_COOKIE = "pm_broker"


class BrokerError(Exception):
    pass


def _upstream(rt: IdentityRuntime, tx: Tx, eco: str, alias: str) -> dict[str, Any]:
    rt.enter(tx, eco)
    up = repo.get_upstream(tx.s, eco, alias)
    if up is None:
        raise not_found("upstream provider")
    return {
        "issuer": up.issuer,
        "client_id": up.client_id,
        "scope": up.scope,
        "secret": rt.sealer.open(up.client_secret_enc, f"{eco}:{alias}".encode()).decode(),
        "mapping": up.mapping,
        "name": up.name,
    }


async def _meta(rt: IdentityRuntime, issuer: str) -> dict[str, Any]:
    resp = await rt.http.get(f"{issuer}/.well-known/openid-configuration")
    resp.raise_for_status()
    meta: dict[str, Any] = resp.json()
    if meta.get("issuer") != issuer:
        raise BrokerError("the upstream's discovery names another issuer")
    return meta


@router.get("/eco/{eco}/broker/{alias}/start")
async def start(request: Request, eco: str, alias: str, rt: RuntimeDep) -> Response:
    up = await rt.tx(lambda tx: _upstream(rt, tx, eco, alias))
    meta = await _meta(rt, up["issuer"])
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    params = {
        "response_type": "code",
        "client_id": up["client_id"],
        "scope": up["scope"],
        "redirect_uri": f"{rt.settings.issuer(eco)}/broker/{alias}/callback",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    cookie = {
        "s": state,
        "n": nonce,
        "v": verifier,
        "a": alias,
        "r": safe_return(eco, request.query_params.get("return_to")),
    }
    response = RedirectResponse(f"{meta['authorization_endpoint']}?{urlencode(params)}", 302)
    response.set_cookie(
        STATE_COOKIE,
        rt.sealer.seal(json.dumps(cookie).encode(), eco.encode()),
        httponly=True,
        samesite="lax",
        path=f"/eco/{eco}/broker/",
        secure=rt.settings.secure_cookies,
        max_age=600,
    )
    return response


async def _upstream_claims(
    rt: IdentityRuntime, eco: str, alias: str, up: dict[str, Any], code: str, saved: dict[str, Any]
) -> dict[str, Any]:
    meta = await _meta(rt, up["issuer"])
    resp = await rt.http.post(
        meta["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": saved["v"],
            "redirect_uri": f"{rt.settings.issuer(eco)}/broker/{alias}/callback",
        },
        auth=(up["client_id"], up["secret"]),
    )
    if resp.status_code != 200:
        raise BrokerError(f"the upstream refused the code: {resp.json().get('error')}")
    id_token = resp.json().get("id_token")
    if not id_token:
        raise BrokerError("the upstream returned no ID token")
    jwks = (await rt.http.get(meta["jwks_uri"])).json()
    try:  # the kit's parser first (bounded in depth; PyJWT's json.loads is not)
        kid = parse_compact(id_token).header.get("kid")
    except (ValueError, TypeError, AttributeError):
        raise BrokerError("the upstream ID token is malformed") from None
    jwk = next((k for k in jwks.get("keys", []) if k.get("kid") == kid), None)
    if jwk is None:
        raise BrokerError("the upstream ID token's key is not in its JWKS")
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            jwt.PyJWK.from_dict(jwk).key,
            algorithms=["RS256", "PS256", "ES256"],
            audience=up["client_id"],
            issuer=up["issuer"],
        )
    except jwt.PyJWTError as exc:
        raise BrokerError(f"the upstream ID token is invalid: {exc}") from None
    if claims.get("nonce") != saved["n"]:
        raise BrokerError("nonce mismatch")
    return claims


def map_claims(
    mapping: dict[str, Any], claims: dict[str, Any], default_partner: str | None
) -> tuple[str | None, list[str]]:
    """Mapping rules: upstream claims → (partner, roles)."""
    rule = mapping.get("partner")
    if isinstance(rule, dict):
        partner = rule.get("map", {}).get(str(claims.get(rule.get("claim", ""))))
    else:
        partner = rule or default_partner
    roles_rule = mapping.get("roles") or {}
    values = claims.get(roles_rule.get("claim", ""), [])
    values = values if isinstance(values, list) else [values]
    roles = {roles_rule.get("map", {}).get(str(v)) for v in values} - {None}
    return partner, sorted({*roles, *roles_rule.get("default", ["member"])})


def admit(tx: Tx, eco: str, alias: str, up: dict[str, Any], claims: dict[str, Any]) -> Person:
    """The local person for these upstream claims, created on first sign-in if admitted."""
    key = f"{alias}:{claims['sub']}"
    person = repo.person_by_upstream(tx.s, eco, key)
    eco_row = directory.ecosystem(tx, eco)
    if eco_row.membership_policy == "claims" and not directory.admits(
        eco_row.admission_rule, claims
    ):
        raise BrokerError("your account does not meet this ecosystem's admission rule")
    if person is not None:
        if not person.active:
            raise BrokerError("this account is disabled")
        return person
    partner, roles = map_claims(up["mapping"], claims, eco_row.default_partner)
    if partner is None:
        raise BrokerError("no partner of this ecosystem matches your account")
    username = f"{alias}.{claims.get('preferred_username') or claims['sub']}"
    return directory.create_person(
        tx,
        eco,
        username,
        partner,
        str(claims.get("name") or username),
        roles,
        None,
        claims.get("email"),
        actor=f"broker:{alias}",
        upstream=key,
    )


@router.get("/eco/{eco}/broker/{alias}/callback")
async def callback(request: Request, eco: str, alias: str, rt: RuntimeDep) -> Response:
    sealed = request.cookies.get(STATE_COOKIE)
    try:
        saved = json.loads(rt.sealer.open(sealed, eco.encode())) if sealed else None
    except Exception:
        saved = None
    params = request.query_params
    try:
        if not saved or saved.get("a") != alias or params.get("state") != saved.get("s"):
            raise BrokerError("the sign-in state does not match; start again")
        if params.get("error") or not params.get("code"):
            raise BrokerError(f"the upstream provider said: {params.get('error', 'no code')}")
        up = await rt.tx(lambda tx: _upstream(rt, tx, eco, alias))
        claims = await _upstream_claims(rt, eco, alias, up, params["code"], saved)

        def sign_in(tx: Tx) -> str:
            person = admit(tx, eco, alias, up, claims)
            sid, _ = logic.start_session(tx, rt.settings, person, saved.get("r"))
            tx.audit(
                eco,
                "login.succeeded",
                actor=person.id,
                target=person.id,
                partner=person.partner,
                via=f"broker:{alias}",
            )
            return sid

        sid = await rt.tx(sign_in)
    except (BrokerError, httpx.HTTPError) as exc:
        if isinstance(exc, BrokerError) and "admission" in str(exc):
            await rt.tx(
                lambda tx: tx.audit(
                    eco, "login.failed", target=alias, outcome="failure", reason="not_admitted"
                )
            )
        return render(
            request, rt, "message.html", {"title": "Sign-in failed", "detail": str(exc)}, 403
        )
    response = RedirectResponse(saved["r"], 303)
    response.delete_cookie(STATE_COOKIE, path=f"/eco/{eco}/broker/")
    cookies.set_session(response, rt.settings, eco, sid)
    return response


def register_upstream(
    tx: Tx, rt: IdentityRuntime, eco: str, body: dict[str, Any], actor: str
) -> UpstreamProvider:
    directory.ecosystem(tx, eco)
    alias = directory.check_slug("alias", body["alias"])
    if repo.get_upstream(tx.s, eco, alias):
        raise conflict(f"upstream {alias} exists")
    up = UpstreamProvider(
        eco=eco,
        alias=alias,
        name=body["name"],
        issuer=body["issuer"].rstrip("/"),
        client_id=body["client_id"],
        scope=body.get("scope") or "openid profile email",
        client_secret_enc=rt.sealer.seal(body["client_secret"].encode(), f"{eco}:{alias}".encode()),
        mapping=body.get("mapping") or {},
    )
    repo.add(tx.s, up)
    tx.audit(eco, "admin.upstream.created", actor=actor, target=alias)
    return up
