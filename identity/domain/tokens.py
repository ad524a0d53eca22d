"""What goes into tokens: scope policy, access-token claims (RFC 9068), ID tokens."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from contracts.claims import ACCESS_TOKEN_TYP, ALL_SCOPES, Claims, Role, Scope
from identity.domain.keys import Signer

# authentication context classes: ``…:pwd`` one factor, ``…:mfa`` more than one
# (identity.domain.factors names what reaches which)
ACR_PWD = "urn:partnermesh:acr:pwd"
ACR_MFA = "urn:partnermesh:acr:mfa"
# RFC 8176 methods that are each a factor of their own: a password (known), an app's
# one-time code or a hardware-held key (possessed), and the user verification an
# authenticator did itself (its PIN or biometric: known or inherent)
FACTOR_METHODS = frozenset({"pwd", "otp", "hwk", "user"})


def multi_factor(amr: Iterable[str] | None) -> bool:
    """Whether a sign-in with ``amr`` used more than one factor: ``mfa`` said so, or two
    methods of :data:`FACTOR_METHODS` (a passkey with user verification, ``hwk user``,
    is two: the key held and the PIN or biometric that unlocked it, RFC 8176 §2)."""
    methods = set(amr or ())
    return "mfa" in methods or len(methods & FACTOR_METHODS) >= 2


def acr_of(amr: Sequence[str] | None) -> str | None:
    """The authentication context class a sign-in with ``amr`` reached (None: unknown)."""
    if not amr:
        return None
    return ACR_MFA if multi_factor(amr) else ACR_PWD


OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
KNOWN_SCOPES = ALL_SCOPES | OIDC_SCOPES

# Scopes only some roles may hold; every other scope is open to any member.
SCOPE_ROLES: dict[str, frozenset[str]] = {
    Scope.ADMIN.value: frozenset({Role.OPERATOR.value}),
    Scope.BROKER_CURATE.value: frozenset({Role.BROKER.value, Role.OPERATOR.value}),
    Scope.CONNECTOR_ADMIN.value: frozenset({Role.PARTNER_ADMIN.value, Role.OPERATOR.value}),
}


class UnknownScope(ValueError):
    pass


@dataclass(frozen=True)
class Subject:
    """Whom a token speaks for: a person, or a client acting for its partner."""

    sub: str
    partner: str | None
    roles: tuple[str, ...]
    name: str | None = None
    email: str | None = None
    username: str | None = None
    is_person: bool = True
    auth_time: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def get_user_id(self) -> str:
        return self.sub


def roles_allow(scope: str, roles: tuple[str, ...] | list[str]) -> bool:
    needed = SCOPE_ROLES.get(scope)
    return needed is None or bool(needed.intersection(roles))


def grant_scope(requested: str | None, client_scopes: list[str], roles: tuple[str, ...]) -> str:
    """requested ∩ what the client may ask for ∩ what the subject's roles allow.

    No requested scope means everything the client and roles allow. A scope this
    provider does not know raises :class:`UnknownScope` (``invalid_scope``).
    """
    wanted = set((requested or "").split()) or set(client_scopes)
    unknown = wanted - KNOWN_SCOPES
    if unknown:
        raise UnknownScope(" ".join(sorted(unknown)))
    allowed = {s for s in wanted if s in client_scopes and roles_allow(s, roles)}
    return " ".join(sorted(allowed))


def mint_access_token(
    signer: Signer,
    iss: str,
    audience: str,
    eco: str,
    subject: Subject,
    client_id: str,
    scope: str,
    ttl: int,
    act: dict[str, Any] | None = None,
    fed: dict[str, Any] | None = None,
    cnf: dict[str, Any] | None = None,
    issued_at: int | None = None,
) -> tuple[str, dict[str, Any]]:
    payload = access_claims(
        iss, audience, eco, subject, client_id, scope, ttl, act, fed, cnf, issued_at
    )
    return sign_access_token(signer, payload), payload


def access_claims(
    iss: str,
    audience: str,
    eco: str,
    subject: Subject,
    client_id: str,
    scope: str,
    ttl: int,
    act: dict[str, Any] | None = None,
    fed: dict[str, Any] | None = None,
    cnf: dict[str, Any] | None = None,
    issued_at: int | None = None,
) -> dict[str, Any]:
    """The RFC 9068 payload of an access token, validated as :class:`Claims` (``issued_at``:
    an ``iat`` other than now, at most a second ahead: see :mod:`identity.oauth.exchange`)."""
    now = issued_at or int(time.time())
    claims = Claims(
        iss=iss,
        sub=subject.sub,
        aud=audience,
        exp=now + ttl,
        iat=now,
        jti=uuid.uuid4().hex,
        client_id=client_id,
        scope=scope,
        eco=eco,
        partner=subject.partner,
        roles=[Role(r) for r in subject.roles],
        act=act,  # type: ignore[arg-type]
        fed=fed,  # type: ignore[arg-type]
        cnf=cnf,  # type: ignore[arg-type]
    )
    return claims.to_jwt_payload()


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def sign_access_token(signer: Signer, payload: dict[str, Any]) -> str:
    """The compact JWS of an access token: the bytes PyJWT would produce (sorted compact
    header ``alg kid typ``, compact payload), signed with ``cryptography`` directly, which
    spares PyJWT's per-call key checks on the hot path (RS256 or ES256 only)."""
    return sign_payload(signer, json.dumps(payload, separators=(",", ":")).encode())


def sign_payload(signer: Signer, body: bytes) -> str:
    """The compact JWS of the JSON payload ``body`` (see :func:`sign_access_token`)."""
    signing_input = _header_segment(signer.alg, signer.kid) + _b64(body)
    key = signer.key
    kind = _KINDS.get(type(key)) or _kind_of(key)
    if signer.alg == "ES256" and kind == "EC":
        ec_key = cast(ec.EllipticCurvePrivateKey, key)  # checked by _kind_of
        r, s = decode_dss_signature(ec_key.sign(signing_input, _ECDSA_SHA256))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif signer.alg == "RS256" and kind == "RSA":
        signature = cast(rsa.RSAPrivateKey, key).sign(signing_input, _PKCS1, _SHA256)
    else:
        raise ValueError(f"cannot sign access tokens with {signer.alg} and this key")
    return (signing_input + b"." + _b64(signature)).decode()


_KINDS: dict[type, str] = {}  # concrete key class -> "EC" / "RSA" / "" (ABC checks, once)


def _kind_of(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        kind = "EC"
    elif isinstance(key, rsa.RSAPrivateKey):
        kind = "RSA"
    else:
        kind = "?"
    _KINDS[type(key)] = kind
    return kind


@functools.lru_cache(maxsize=256)
def _header_segment(alg: str, kid: str) -> bytes:
    """``base64url(header) + "."``, constant per key: encoded once, not once per token."""
    header = json.dumps(
        {"alg": alg, "kid": kid, "typ": ACCESS_TOKEN_TYP}, separators=(",", ":"), sort_keys=True
    ).encode()
    return _b64(header) + b"."


_SHA256 = hashes.SHA256()
_PKCS1 = padding.PKCS1v15()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).decode().rstrip("=")


def user_info(subject: Subject, scope: str, eco: str) -> dict[str, Any]:
    scopes = set(scope.split())
    info: dict[str, Any] = {"sub": subject.sub, "eco": eco, "roles": list(subject.roles)}
    if subject.partner:
        info["partner"] = subject.partner
    if "profile" in scopes:
        info["name"] = subject.name
        info["preferred_username"] = subject.username
    if "email" in scopes and subject.email:
        info["email"] = subject.email
    return info


def mint_id_token(
    signer: Signer,
    iss: str,
    eco: str,
    client_id: str,
    subject: Subject,
    scope: str,
    ttl: int,
    nonce: str | None,
    access_token: str | None,
) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": client_id,
        "azp": client_id,
        "iat": now,
        "exp": now + ttl,
        "auth_time": subject.auth_time or now,
        "sid": subject.extra.get("sid"),
    }
    amr = subject.extra.get("amr")
    if amr:  # RFC 8176 methods of the sign-in, and the class they reach (OIDC Core §2)
        payload["amr"] = list(amr)
        payload["acr"] = acr_of(amr)
    payload.update(user_info(subject, scope, eco))
    if nonce:
        payload["nonce"] = nonce
    if access_token:
        payload["at_hash"] = half_hash(access_token)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, signer.key, signer.alg, headers={"kid": signer.kid})  # type: ignore[arg-type]
