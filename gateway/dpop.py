"""DPoP (RFC 9449) at the edge: sender-constrained access tokens on every route.

A token bound to a key (``cnf.jkt``) must arrive as ``Authorization: DPoP <token>``
with one ``DPoP`` proof header: signed by that key, ``ath`` = the token's hash, ``htm``
and ``htu`` naming this request, ``iat`` within the window, ``jti`` not seen before
(:class:`mesh.dpop.ProofChecker`; with ``PM_GATEWAY_REDIS_URL`` the ``jti`` cache is
shared by every replica). ``htu`` is compared with the gateway's external URL
(``PM_GATEWAY_PUBLIC_URL`` + the request path; without that setting, the scheme and
``Host`` the request arrived with), so a gateway behind a proxy checks what clients
actually called. A bound token sent as ``Bearer`` is refused (401, ``WWW-Authenticate:
DPoP error="invalid_token"``, RFC 9449 §7.1); unbound bearer tokens work as before.

The caller keeps the proof: :func:`gateway.forward.call_operation` sends it to the
service with the token (``Authorization: DPoP``, ``DPoP`` NATS headers), where
:func:`mesh.dpop.nats_caller` checks signature, key and ``ath`` again (zero trust).
A mashup's sub-requests inherit the mashup request's caller, hence its proven key and
its proof: the edge checked that proof against ``POST …/mashup`` once, and each service
re-checks it against the token, not against a URL of its own.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Scope

from contracts.errors import ErrorCode
from gateway.auth import ANONYMOUS, Caller
from gateway.http import RequestHeaders
from gateway.settings import GatewaySettings
from mesh import dpop
from mesh.dpop import DPoPChallenge, DPoPError, NonceSource, ProofChecker
from mesh.errors import MeshError
from mesh.replay import ReplayCache, SharedReplay
from mesh.tokens import TokenVerifier

log = logging.getLogger(__name__)


class EdgeDPoP:
    """The gateway's proof policy: window, replay cache, optional nonces, external URL."""

    def __init__(self, settings: GatewaySettings, redis_client: Any = None) -> None:
        self.base = settings.public_url.rstrip("/")
        nonces = NonceSource(settings.secret_key, settings.dpop_nonce_period_s)
        local = ReplayCache(settings.dpop_replay_cache_size)
        self.shared = (
            SharedReplay(redis_client, settings.rate_limit_key_prefix, local)
            if redis_client is not None
            else None
        )
        self.checker = ProofChecker(
            max_age=settings.dpop_max_age_s,
            leeway=settings.dpop_leeway_s,
            replay=None if self.shared else local,
            nonces=nonces,
        )
        self.demand_nonce = settings.dpop_nonce

    def url(self, scope: Scope) -> str:
        """The URL this request was sent to, as a client names it in ``htu``."""
        raw = scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) else scope["path"]
        path = path.split("?", 1)[0]
        if self.base:
            return self.base + path
        host = Headers(scope=scope).get("host", "")
        return f"{scope.get('scheme', 'http')}://{host}{path}"

    async def proven(self, headers: RequestHeaders, scope: Scope, token: str, jkt: str) -> str:
        """The request's proof, checked against this request, this token and its key."""
        raw = self.checker.single(headers.getlist(dpop.HEADER))
        if raw is None:
            raise DPoPError(dpop.INVALID_PROOF, "a DPoP-bound token needs a DPoP proof header")
        proof = self.checker.verify(
            raw,
            scope["method"],
            self.url(scope),
            access_token=token,
            jkt=jkt,
            require_nonce=self.demand_nonce,
        )
        if self.shared is not None:
            await self.checker.not_replayed_anywhere(proof, self.shared)
        return raw


async def authenticate(
    headers: RequestHeaders, scope: Scope, verifier: TokenVerifier, edge: EdgeDPoP
) -> Caller:
    """Who is calling: ``Bearer`` or ``DPoP`` token, verified (a token sent must be valid)."""
    raw = headers.get("authorization")
    if raw is None:
        return ANONYMOUS
    cred = dpop.credentials(raw)
    if cred is None:
        raise MeshError(
            ErrorCode.UNAUTHENTICATED, "the Authorization header must be 'Bearer <token>'"
        )
    scheme, token = cred
    claims = await verifier.verify(token)
    try:
        jkt = dpop.bound_jkt(claims)
        if jkt is None:
            if scheme == dpop.SCHEME:
                raise DPoPError(dpop.INVALID_TOKEN, "the token is not DPoP-bound; use Bearer")
            return Caller(token, claims)
        if scheme != dpop.SCHEME:
            raise DPoPError(dpop.INVALID_TOKEN, "a DPoP-bound token must use the DPoP scheme")
        return Caller(token, claims, await edge.proven(headers, scope, token, jkt))
    except DPoPError as exc:
        raise DPoPChallenge(exc) from None
