"""The OAuth/OIDC protocol endpoints of every ecosystem issuer (thin: decode, call, reply)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from identity.domain import dpop
from identity.domain.factors import ACR_VALUES
from identity.domain.keys import ALGS
from identity.domain.tokens import KNOWN_SCOPES, user_info
from identity.http.runtime import IdentityRuntime, RuntimeDep, client_ip
from identity.oauth.access_tokens import AccessTokenView, decode_own_access_token
from identity.oauth.adapter import StarletteRequest
from identity.oauth.client_auth import ClientSecretJwt
from identity.oauth.exchange import GRANT_TYPE as EXCHANGE_GRANT
from identity.oauth.grants import AUTH_METHODS, RESPONSE_MODES, person_subject
from identity.oauth.introspection import Introspection, Revocation
from identity.store.models import Ecosystem
from identity.store.transaction import Tx, run_tx_collect
from mesh import dpop as proofs
from mesh.dpop import ALGORITHMS, DPoPError

router = APIRouter()
# Grants whose only write is their audit event: those events are group-committed.
STATELESS_GRANTS = frozenset(
    {"client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"}
)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# Client assertions: private_key_jwt's asymmetric algorithms, client_secret_jwt's HS256.
ASSERTION_ALGS = ["RS256", "PS256", "ES256", *ClientSecretJwt.ALGORITHMS]


def dpop_token_error(exc: DPoPError) -> JSONResponse:
    """A refused proof at the token endpoint: an OAuth error response (RFC 9449 §5, §8)."""
    headers = dict(NO_STORE)
    if exc.nonce:
        headers[proofs.NONCE_HEADER] = exc.nonce
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, 400, headers=headers)


def dpop_resource_error(exc: DPoPError) -> JSONResponse:
    """A refused token or proof at userinfo: 401 with a DPoP challenge (RFC 9449 §7.1)."""
    headers = {"WWW-Authenticate": proofs.challenge(exc), **NO_STORE}
    if exc.nonce:
        headers[proofs.NONCE_HEADER] = exc.nonce
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, 401, headers)


def metadata(rt: IdentityRuntime, eco: Ecosystem) -> dict[str, Any]:
    """What this issuer supports, exactly (each list is what the code accepts)."""
    iss = rt.settings.issuer(eco.slug)
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks",
        "introspection_endpoint": f"{iss}/introspect",
        "revocation_endpoint": f"{iss}/revoke",
        "end_session_endpoint": f"{iss}/logout",
        "scopes_supported": sorted(KNOWN_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGS),
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": Introspection.CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": Revocation.CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": list(ALGORITHMS),
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "azp",
            "at_hash",
            "sid",
            "name",
            "preferred_username",
            "email",
            "eco",
            "partner",
            "roles",
            "amr",
            "acr",
        ],
        "acr_values_supported": list(ACR_VALUES),
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "pushed_authorization_request_endpoint": f"{iss}/par",
        "require_pushed_authorization_requests": eco.require_pushed_authorization_requests,
        **logout_device_registration(iss),
    }


def logout_device_registration(iss: str) -> dict[str, Any]:
    """Back-Channel Logout 1.0, Device Authorization Grant (RFC 8628), Dynamic Client
    Registration (RFC 7591)."""
    return {
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "device_authorization_endpoint": f"{iss}/device_authorization",
        "registration_endpoint": f"{iss}/register",
    }


async def _known(rt: IdentityRuntime, eco: str) -> Ecosystem:
    return await rt.tx(lambda tx: rt.enter(tx, eco).eco)


@router.get("/eco/{eco}/.well-known/openid-configuration")
@router.get("/eco/{eco}/.well-known/oauth-authorization-server")
@router.get("/.well-known/oauth-authorization-server/eco/{eco}")
@router.get("/.well-known/openid-configuration/eco/{eco}")
async def discovery(eco: str, rt: RuntimeDep) -> JSONResponse:
    row = await _known(rt, eco)
    return JSONResponse(metadata(rt, row), headers={"Cache-Control": "public, max-age=300"})


@router.get("/eco/{eco}/jwks")
async def jwks(eco: str, rt: RuntimeDep) -> JSONResponse:
    doc = await rt.tx(lambda tx: (rt.enter(tx, eco), rt.keys.jwks(tx, eco))[1])
    return JSONResponse(doc, headers={"Cache-Control": "public, max-age=60"})


async def oauth_request(request: Request, rt: IdentityRuntime) -> StarletteRequest:
    form = await request.form() if request.method == "POST" else None
    items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)] if form else []
    uri = rt.settings.public_url.rstrip("/") + request.url.path
    return StarletteRequest(
        request.method, uri, request.headers, list(request.query_params.multi_items()), items
    )


def to_response(
    status: int, body: Any, headers: Any, extra: dict[str, str] | None = None
) -> Response:
    hdrs = dict(headers or [])
    hdrs.update(extra or {})
    content = body if isinstance(body, str) else json.dumps(body)
    hdrs.setdefault("Content-Type", "application/json")
    hdrs.update(NO_STORE)
    return Response(content=content, status_code=status, headers=hdrs)


def unreadable_credentials() -> Response:
    """RFC 6749 §5.2 ``invalid_client`` for client credentials no server could read
    (authlib's Basic parser raises ValueError on a non-ASCII value)."""
    body = {"error": "invalid_client", "error_description": "the Authorization header is not ASCII"}
    return to_response(401, body, {"WWW-Authenticate": 'Basic error="invalid_client"'})


async def _endpoint(request: Request, eco: str, rt: IdentityRuntime, name: str) -> Response:
    if not request.headers.get("authorization", "").isascii():
        return unreadable_credentials()
    oreq = await oauth_request(request, rt)
    proof = None
    if name == "token":  # RFC 9449: a DPoP proof binds what this request issues
        try:
            proof = await rt.dpop.token_proof(
                request.headers.getlist("dpop"), rt.settings.issuer(eco), eco
            )
        except DPoPError as exc:
            return dpop_token_error(exc)

    grant_type = oreq.payload.data.get("grant_type")

    def work(tx: Tx) -> tuple[int, Any, Any]:
        call = rt.enter(tx, eco, client_ip(request), cached=True)
        call.extras["dpop"] = proof
        # a client of an allied ecosystem is known here for a token exchange only
        call.extras["exchange"] = name == "token" and grant_type == EXCHANGE_GRANT
        if name == "token":
            return rt.server.create_token_response(oreq)  # type: ignore[no-any-return]
        return rt.server.create_endpoint_response(name, oreq)  # type: ignore[no-any-return]

    if name == "token" and grant_type in STATELESS_GRANTS:
        result, events = await run_tx_collect(rt.db, work)
        if events:
            await rt.group.add(events)  # durable before the token leaves
        return to_response(*result, extra=rt.dpop.nonce_headers(eco) if proof else None)
    return to_response(*await rt.tx(work), extra=rt.dpop.nonce_headers(eco) if proof else None)


@router.post("/eco/{eco}/token")
async def token(request: Request, eco: str, rt: RuntimeDep) -> Response:
    return await _endpoint(request, eco, rt, "token")


@router.post("/eco/{eco}/introspect")
async def introspect(request: Request, eco: str, rt: RuntimeDep) -> Response:
    return await _endpoint(request, eco, rt, "introspection")


@router.post("/eco/{eco}/revoke")
async def revoke(request: Request, eco: str, rt: RuntimeDep) -> Response:
    return await _endpoint(request, eco, rt, "revocation")


@router.api_route("/eco/{eco}/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request, eco: str, rt: RuntimeDep) -> Response:
    url = f"{rt.settings.issuer(eco)}/userinfo"
    try:  # Bearer, or DPoP with a proof (RFC 9449 §7)
        token, proof = await rt.dpop.resource_credentials(
            request.headers.get("authorization"),
            request.headers.getlist("dpop"),
            request.method,
            url,
        )
    except DPoPError as exc:
        return dpop_resource_error(exc)

    def work(tx: Tx) -> dict[str, Any] | None:
        rt.enter(tx, eco)
        claims = decode_own_access_token(token) if token else None
        if not claims or AccessTokenView(claims).is_revoked():
            return None
        dpop.check_binding(claims, proof)
        if "openid" not in claims.get("scope", "").split():
            return None
        subject = person_subject(claims["sub"], None)
        return user_info(subject, claims["scope"], eco) if subject else None

    try:
        info = await rt.tx(work)
    except DPoPError as exc:
        return dpop_resource_error(exc)
    realm = f'Bearer realm="{rt.settings.issuer(eco)}"'
    if token is None:  # RFC 6750 §3.1: no credentials, no error code, just the challenge
        return Response(status_code=401, headers={"WWW-Authenticate": realm, **NO_STORE})
    if info is None:
        challenge = (
            f'{realm}, error="invalid_token", error_description="token invalid or lacks openid"'
        )
        return JSONResponse({"error": "invalid_token"}, 401, {"WWW-Authenticate": challenge})
    return JSONResponse(info, headers=NO_STORE)
