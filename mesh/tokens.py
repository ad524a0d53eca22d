"""Access-token verification (RFC 9068) shared by the gateway and every service.

Trust: an issuer is trusted when it is ``<identity_url>/eco/<eco>`` (one issuer per
ecosystem) and the token's ``eco`` claim names that same ecosystem, or when it is
listed explicitly (issuers trusted through an alliance). Keys come from the
issuer's JWKS (discovered, cached, refreshed on an unknown ``kid`` with a
cooldown) or from a static key set (tests, air-gapped deployments).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from typing import Any, Protocol

import httpx
import jwt
from pydantic import ValidationError

from contracts.claims import ACCESS_TOKEN_TYP, Claims
from contracts.errors import ErrorCode
from mesh import safejson
from mesh.errors import MeshError
from mesh.jws import ASYMMETRIC, parse_compact
from mesh.revocation import RevocationList

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = frozenset(ASYMMETRIC)
_REQUIRED = ["exp", "iat", "iss", "sub", "aud", "jti"]


def issuer_for(identity_url: str, eco: str) -> str:
    return f"{identity_url.rstrip('/')}/eco/{eco}"


class KeySource(Protocol):
    async def key(self, issuer: str, kid: str) -> jwt.PyJWK | None: ...


class StaticKeys:
    """Keys given up front: ``{issuer: [public JWK, ...]}``."""

    def __init__(self, jwks: dict[str, list[dict[str, Any]]]) -> None:
        self._keys = {
            (iss, k["kid"]): jwt.PyJWK.from_dict(k) for iss, keys in jwks.items() for k in keys
        }

    def add(self, issuer: str, jwk: dict[str, Any]) -> None:
        self._keys[(issuer, jwk["kid"])] = jwt.PyJWK.from_dict(jwk)

    async def key(self, issuer: str, kid: str) -> jwt.PyJWK | None:
        return self._keys.get((issuer, kid))


class RemoteJwks:
    """JWKS per issuer from OIDC discovery, refreshed on an unknown kid (with a cooldown)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        refresh_cooldown: float = 5.0,
        max_age: float = 300.0,
        max_issuers: int = 1000,
        fetches_per_second: float = 10.0,
    ) -> None:
        self._client = client
        self._cooldown = refresh_cooldown
        self._max_age = max_age
        self._keys: dict[str, dict[str, jwt.PyJWK]] = {}
        self._fetched: OrderedDict[str, float] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        # Tokens name their issuer before they are verified: bound what a flood of
        # made-up issuers can cost (outgoing fetches, remembered issuers).
        self._max_issuers = max_issuers
        self._fetch_rate = fetches_per_second
        self._fetch_budget = self._fetch_burst = max(1.0, 2 * fetches_per_second)
        self._budget_at = time.monotonic()

    async def key(self, issuer: str, kid: str) -> jwt.PyJWK | None:
        keys = self._keys.get(issuer)
        age = time.monotonic() - self._fetched.get(issuer, float("-inf"))
        if keys is not None and kid in keys and age < self._max_age:
            return keys[kid]
        if (keys is None or age >= self._cooldown) and self._may_fetch():
            await self._refresh(issuer)
        return self._keys.get(issuer, {}).get(kid)

    def _may_fetch(self) -> bool:
        now = time.monotonic()
        elapsed, self._budget_at = now - self._budget_at, now
        self._fetch_budget = min(self._fetch_burst, self._fetch_budget + elapsed * self._fetch_rate)
        if self._fetch_budget < 1:
            return False
        self._fetch_budget -= 1
        return True

    def _forget_oldest(self) -> None:
        while len(self._fetched) > self._max_issuers:
            issuer, _ = self._fetched.popitem(last=False)
            self._keys.pop(issuer, None)
            self._locks.pop(issuer, None)

    async def _refresh(self, issuer: str) -> None:
        lock = self._locks.setdefault(issuer, asyncio.Lock())
        async with lock:
            if time.monotonic() - self._fetched.get(issuer, float("-inf")) < self._cooldown:
                return
            self._fetched[issuer] = time.monotonic()
            self._fetched.move_to_end(issuer)
            self._forget_oldest()
            try:
                meta = await self._client.get(f"{issuer}/.well-known/openid-configuration")
                meta.raise_for_status()
                # An issuer is named by the token before it is trusted: its documents
                # are parsed as untrusted JSON (bounded in depth).
                jwks_uri = safejson.loads_object(meta.content)["jwks_uri"]
                resp = await self._client.get(jwks_uri)
                resp.raise_for_status()
                keys = {}
                for k in safejson.loads_object(resp.content).get("keys", []):
                    if k.get("use", "sig") == "sig" and "kid" in k:
                        keys[k["kid"]] = jwt.PyJWK.from_dict(k)
                self._keys[issuer] = keys
            except (
                httpx.HTTPError,
                KeyError,
                ValueError,
                TypeError,  # members of the wrong JSON type
                AttributeError,
                jwt.PyJWKError,
            ) as exc:
                log.warning("jwks fetch failed", extra={"issuer": issuer, "error": str(exc)})


def _unauthenticated(why: str) -> MeshError:
    return MeshError(ErrorCode.UNAUTHENTICATED, why)


class TokenVerifier:
    """Verifies access tokens and caches the verified claims until they expire."""

    def __init__(
        self,
        keys: KeySource,
        identity_url: str,
        audience: str,
        extra_issuers: tuple[str, ...] | list[str] = (),
        leeway: float = 30.0,
        cache_size: int = 10_000,
    ) -> None:
        self.keys = keys
        self.identity_url = identity_url.rstrip("/")
        self.audience = audience
        self.extra_issuers = frozenset(extra_issuers)
        self.leeway = leeway
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, Claims] = OrderedDict()
        # Fed by mesh.revocation.RevocationFeed (identity's token_revoked events).
        self.revoked = RevocationList()

    def eco_of_issuer(self, iss: str) -> str | None:
        prefix = f"{self.identity_url}/eco/"
        if iss.startswith(prefix):
            eco = iss[len(prefix) :]
            if eco and "/" not in eco:
                return eco
        return None

    async def verify(self, token: str) -> Claims:
        key = hashlib.sha256(token.encode()).digest() if self.cache_size else b""
        cached = self._cache.get(key) if self.cache_size else None
        if cached is not None and cached.exp + self.leeway > time.time():
            claims = cached
        else:
            claims = await self._verify(token)
            if self.cache_size:
                self._cache[key] = claims
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        revoked = self.revoked
        if claims.jti in revoked.jtis or (  # revoked at the identity provider (RFC 7009)
            (revoked.cutoffs or revoked.origins) and _cut_off(revoked, claims)
        ):  # or issued before its person or ecosystem was disabled, or its alliance ended
            self._cache.pop(key, None)
            raise _unauthenticated("the access token has been revoked")
        return claims

    async def _verify(self, token: str) -> Claims:
        header, payload, signing_input, signature = _parse(token)
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise _unauthenticated(f"tokens signed with alg {alg!r} are not accepted")
        typ = str(header.get("typ", "")).lower()
        if typ not in (ACCESS_TOKEN_TYP, "application/" + ACCESS_TOKEN_TYP):
            raise _unauthenticated("not an access token (typ must be at+jwt)")
        if "crit" in header or header.get("b64", True) is not True:
            raise _unauthenticated("the token uses JWS extensions this verifier does not know")
        iss = payload.get("iss")
        if not isinstance(iss, str) or not self._trusted(iss, payload):
            raise _unauthenticated("the token's issuer is not trusted here")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _unauthenticated("the token has no key id")
        jwk = await self.keys.key(iss, kid)
        if jwk is None:
            raise _unauthenticated("the token was signed with an unknown key")
        if not _signature_valid(alg, jwk, signing_input, signature):
            raise _unauthenticated("the access token is invalid: the signature does not verify")
        # The payload checked above is the one the signature covers (parsed once).
        self._check_claims(payload)
        try:
            return Claims.model_validate(payload)
        except ValidationError:
            raise _unauthenticated("the access token lacks partnermesh claims") from None

    def _check_claims(self, payload: dict[str, Any]) -> None:
        """RFC 7519 checks: required claims, exp/nbf/iat with leeway, aud, claim types."""
        for claim in _REQUIRED:
            if payload.get(claim) is None:
                raise _unauthenticated(f"the access token is invalid: it has no {claim!r} claim")
        now = time.time()
        exp, iat = _int_claim(payload, "exp"), _int_claim(payload, "iat")
        if exp <= now - self.leeway:
            raise _unauthenticated("the access token has expired")
        if iat > now + self.leeway:
            raise _unauthenticated("the access token is invalid: it is not yet valid (iat)")
        if "nbf" in payload and _int_claim(payload, "nbf") > now + self.leeway:
            raise _unauthenticated("the access token is invalid: it is not yet valid (nbf)")
        aud = payload["aud"]
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise _unauthenticated("the access token is invalid: malformed audience")
        if self.audience not in audiences:
            raise _unauthenticated("the access token is invalid: it is for another audience")
        if not isinstance(payload["sub"], str) or not isinstance(payload["jti"], str):
            raise _unauthenticated("the access token is invalid: sub and jti must be strings")

    def _trusted(self, iss: str, payload: dict[str, Any]) -> bool:
        if iss in self.extra_issuers:
            return True
        eco = self.eco_of_issuer(iss)
        return eco is not None and payload.get("eco") == eco


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, payload, signing input and signature of a compact JWS (one parse)."""
    try:
        jws = parse_compact(token)
    except ValueError:
        raise _unauthenticated("the access token is malformed") from None
    return jws.header, jws.payload, jws.signing_input, jws.signature


def _signature_valid(alg: str, jwk: jwt.PyJWK, signing_input: bytes, signature: bytes) -> bool:
    algorithm = ASYMMETRIC.get(alg)
    if algorithm is None:
        return False
    try:
        return bool(algorithm.verify(signing_input, algorithm.prepare_key(jwk.key), signature))
    except Exception:  # a key of another type than the alg needs, a malformed signature
        return False


def _int_claim(payload: dict[str, Any], name: str) -> int:
    try:
        return int(payload[name])
    except (ValueError, TypeError, OverflowError):
        raise _unauthenticated(f"the access token is invalid: {name} must be an integer") from None


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _cut_off(revoked: RevocationList, claims: Claims) -> bool:
    """Issued before its person or ecosystem was disabled: in its own ecosystem, or, for a
    token exchanged across an alliance, in the ecosystem its subject came from (``fed``);
    or exchanged across an alliance before it was suspended or ended."""
    if revoked.cut(claims.eco, claims.sub, claims.iat):
        return True
    fed = claims.fed
    return fed is not None and (
        revoked.cut(fed.eco, claims.sub, claims.iat)
        or revoked.cut_from(claims.eco, fed.eco, claims.iat)
    )
