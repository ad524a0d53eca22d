"""DPoP (RFC 9449): proofs of possession for sender-constrained access tokens.

Shared by the identity provider (token endpoint, userinfo), the gateway (resource
requests) and every service (re-check of what the gateway forwarded).

A proof is a JWS the client signs with its own key for one HTTP request::

    header  {"typ": "dpop+jwt", "alg": "ES256", "jwk": {<public key>}}
    payload {"jti": ..., "htm": "POST", "htu": "https://.../token", "iat": ...,
             "ath": <base64url(SHA-256(access token))>, "nonce": <when demanded>}

:class:`ProofChecker` applies the checks of RFC 9449 §4.3 (one well-formed JWS, ``typ``,
an asymmetric ``alg`` from the allowlist, a public ``jwk`` only, the signature,
``htm``/``htu``, ``iat`` within the window, ``jti`` not replayed, the server's nonce)
and §7 (``ath`` and the token's ``cnf.jkt``). Failures raise :class:`DPoPError`,
carrying the RFC's error code (``invalid_dpop_proof``, ``use_dpop_nonce``,
``invalid_token``) and, for nonces, the ``DPoP-Nonce`` to retry with.

Zero trust behind the gateway (:func:`nats_caller`): a service verifies every token
again, and a token bound to a key (``cnf.jkt``) must arrive as ``Authorization: DPoP
<token>`` with the proof the gateway received in a ``DPoP`` header. The service checks
that proof's signature, that its key's thumbprint is the token's ``jkt``, that ``ath``
is the hash of this token and that ``iat`` is within the window. It does not check
``htm``/``htu`` (the proof names the HTTP request at the edge, not the NATS subject; a
mashup's proof names the mashup request) nor ``jti`` replay (one proof legitimately
reaches several services through a mashup): the edge has checked both. So a process
that can publish on NATS but holds neither the key nor a fresh proof for that very
token cannot use a stolen DPoP-bound token, and a captured proof dies with its window.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
from joserfc import jwk as joserfc_jwk

from contracts.errors import ErrorCode
from mesh.consttime import same
from mesh.errors import MeshError
from mesh.jws import ASYMMETRIC, b64url_decode, parse_compact
from mesh.replay import ReplayCache, SharedReplay

PROOF_TYP = "dpop+jwt"
HEADER = "DPoP"
NONCE_HEADER = "DPoP-Nonce"
SCHEME = "DPoP"
# Asymmetric algorithms only: never "none", never a MAC (HS*).
ALGORITHMS: tuple[str, ...] = ("ES256", "RS256", "PS256", "EdDSA")
ALGS_PARAM = " ".join(ALGORITHMS)
_KTY_OF_ALG = {"ES256": "EC", "RS256": "RSA", "PS256": "RSA", "EdDSA": "OKP"}
_CURVE_OF_ALG = {"ES256": {"P-256"}, "EdDSA": {"Ed25519", "Ed448"}}
# RFC 7638 §3.2: the required members of each key type, the only ones hashed.
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
# Members that would reveal private key material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_MAX_PROOF_BYTES = 8192
MIN_RSA_BITS = 2048

INVALID_PROOF = "invalid_dpop_proof"
USE_NONCE = "use_dpop_nonce"
INVALID_TOKEN = "invalid_token"


class DPoPError(Exception):
    """A refused proof or binding: ``error`` is the RFC 9449 code."""

    def __init__(self, error: str, description: str, nonce: str | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.nonce = nonce


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(key: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK (the ``jkt`` of ``cnf``)."""
    members = _THUMBPRINT_MEMBERS.get(str(key.get("kty")))
    if members is None or any(not isinstance(key.get(m), str) for m in members):
        raise DPoPError(INVALID_PROOF, "the proof's jwk is not a supported public key")
    return str(joserfc_jwk.thumbprint({m: key[m] for m in members}))


def access_token_hash(token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII access token)), RFC 9449 §4.2.

    (UTF-8 only so that a non-ASCII value, never a valid token, cannot raise.)"""
    return b64url(hashlib.sha256(token.encode()).digest())


def normalize_htu(uri: str) -> str:
    """The URI as compared for ``htu``: no query, no fragment, RFC 3986 §6.2.2–6.2.3
    normalization (case of scheme and host, default port, empty path, percent-encoding)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{unquote(parts.path) or '/'}"


def credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(scheme, token)`` of an ``Authorization: Bearer|DPoP <token>`` value, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    scheme, token = scheme.lower(), token.strip()
    if scheme not in ("bearer", "dpop") or not token or " " in token:
        return None
    return ("DPoP" if scheme == "dpop" else "Bearer"), token


def bound_jkt(claims: Any) -> str | None:
    """The ``cnf.jkt`` a token is bound to (``Claims`` or a claims dict), or None.

    A token with a ``cnf`` this code cannot check (another confirmation method, such as
    an mTLS certificate thumbprint) is refused rather than taken as a bearer token.
    """
    cnf = claims.get("cnf") if isinstance(claims, dict) else getattr(claims, "cnf", None)
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else getattr(cnf, "jkt", None)
    if not isinstance(jkt, str) or not jkt:
        raise DPoPError(INVALID_TOKEN, "the token is bound by a confirmation method not supported")
    return jkt


@dataclass(frozen=True)
class Proof:
    """A verified proof: its key's thumbprint and the claims that were checked."""

    jkt: str
    jti: str
    htm: str
    htu: str
    iat: int
    ath: str | None
    nonce: str | None
    raw: str


class NonceSource:
    """Server nonces (RFC 9449 §8) without shared state: HMAC of the current time slot.

    A nonce is valid in its slot and the next one, so every replica sharing the secret
    accepts it for ``period`` to ``2 * period`` seconds.
    """

    def __init__(self, secret: str, period: int = 300, purpose: str = "dpop-nonce") -> None:
        self._key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
        self.period = period

    def _at(self, slot: int) -> str:
        return b64url(hmac.new(self._key, str(slot).encode(), hashlib.sha256).digest()[:18])

    def current(self, now: float | None = None) -> str:
        return self._at(int((now or time.time()) // self.period))

    def valid(self, nonce: object, now: float | None = None) -> bool:
        """``nonce`` (a proof's claim: any JSON value) is a current nonce."""
        if not isinstance(nonce, str) or not nonce:
            return False
        slot = int((now or time.time()) // self.period)
        return any(same(nonce, self._at(s)) for s in (slot, slot - 1))


REPLAYED = "the proof was already used (jti replayed)"


def _replay_key(proof: Proof) -> str:
    return f"{proof.jkt}:{proof.jti}"


class ProofChecker:
    """Verifies proofs with one policy: window, replay cache, optional server nonces."""

    def __init__(
        self,
        max_age: float = 60.0,
        leeway: float = 10.0,
        replay: ReplayCache | None = None,
        nonces: NonceSource | None = None,
        algorithms: Sequence[str] = ALGORITHMS,
    ) -> None:
        self.max_age = max_age
        self.leeway = leeway
        self.replay = replay
        self.nonces = nonces
        self.algorithms = tuple(a for a in algorithms if a in _KTY_OF_ALG)

    def single(self, values: Sequence[str]) -> str | None:
        """The one ``DPoP`` header value of a request (None when absent)."""
        if not values:
            return None
        if len(values) > 1:
            raise DPoPError(INVALID_PROOF, "send exactly one DPoP header")
        return values[0]

    def verify(
        self,
        proof: str,
        htm: str | None,
        htu: str | None,
        access_token: str | None = None,
        jkt: str | None = None,
        require_nonce: bool = False,
        check_replay: bool = True,
    ) -> Proof:
        """All checks of RFC 9449 §4.3; with ``access_token`` also ``ath`` and, with
        ``jkt``, the key the token is bound to (§7.1).

        ``htm``/``htu`` None: not checked (see the module docstring for who may skip them).
        """
        _, claims, proof_jkt = self._signed(proof)
        now = time.time()
        iat = claims["iat"]
        if iat < now - self.max_age - self.leeway or iat > now + self.leeway:
            raise DPoPError(INVALID_PROOF, "the proof's iat is outside the acceptable window")
        if htm is not None and claims["htm"] != htm:
            raise DPoPError(INVALID_PROOF, "the proof's htm does not match the request method")
        if htu is not None and normalize_htu(claims["htu"]) != normalize_htu(htu):
            raise DPoPError(INVALID_PROOF, "the proof's htu does not match the request URI")
        result = Proof(
            jkt=proof_jkt,
            jti=claims["jti"],
            htm=claims["htm"],
            htu=claims["htu"],
            iat=int(iat),
            ath=claims.get("ath"),
            nonce=claims.get("nonce"),
            raw=proof,
        )
        if access_token is not None:
            check_ath(result, access_token)
        if jkt is not None:
            check_key(result, jkt)
        if require_nonce and self.nonces and not self.nonces.valid(result.nonce, now):
            raise DPoPError(USE_NONCE, "use the server's DPoP nonce", self.nonces.current(now))
        if check_replay and self.replay is not None:
            if self.replay.seen(_replay_key(result), result.iat, self._expiry(result), now):
                raise DPoPError(INVALID_PROOF, REPLAYED)
        return result

    async def not_replayed_anywhere(self, proof: Proof, shared: SharedReplay) -> None:
        """Refuse ``proof`` when a replica sharing ``shared`` (Redis) has seen its ``jti``:
        the replay check of a checker built without a cache of its own."""
        if await shared.seen(_replay_key(proof), proof.iat, self._expiry(proof)):
            raise DPoPError(INVALID_PROOF, REPLAYED)

    def _expiry(self, proof: Proof) -> float:
        """When ``proof`` leaves the acceptance window (its jti need not be kept longer)."""
        return proof.iat + self.max_age + 2 * self.leeway

    def _signed(self, proof: str) -> tuple[dict[str, Any], dict[str, Any], str]:
        """Header, claims and key thumbprint of a well-formed proof whose signature verifies.

        Parsed here rather than by PyJWT (whose base64 check runs in Python per character):
        strict base64url, JSON objects, then the JWA algorithm's own signature check.
        """
        if len(proof) > _MAX_PROOF_BYTES or proof.count(".") != 2:
            raise DPoPError(INVALID_PROOF, "the DPoP header is not a single compact JWS")
        try:
            jws = parse_compact(proof)
        except ValueError:
            raise DPoPError(INVALID_PROOF, "the DPoP proof is malformed") from None
        header, claims = jws.header, jws.payload
        if header.get("typ") != PROOF_TYP:
            raise DPoPError(INVALID_PROOF, "the proof's typ must be dpop+jwt")
        if "crit" in header:
            raise DPoPError(INVALID_PROOF, "the proof names critical extensions")
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise DPoPError(INVALID_PROOF, f"proofs signed with alg {alg!r} are not accepted")
        public, jkt = _public_key(alg, header.get("jwk"))
        try:
            valid = ASYMMETRIC[alg].verify(jws.signing_input, public, jws.signature)
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise DPoPError(INVALID_PROOF, "the proof's signature does not verify")
        _require_claims(claims)
        return header, claims, jkt


_KEYS: OrderedDict[tuple[str, ...], tuple[Any, str]] = OrderedDict()
_KEY_CACHE_SIZE = 4096


def _public_key(alg: str, key: Any) -> tuple[Any, str]:
    """The proof's public key object and its thumbprint; clients reuse a key for many
    proofs, so imports are remembered (bounded) by the key's RFC 7638 members."""
    if not isinstance(key, dict):
        raise DPoPError(INVALID_PROOF, "the proof carries no jwk")
    if _PRIVATE_MEMBERS & key.keys():
        raise DPoPError(INVALID_PROOF, "the proof's jwk contains private key material")
    kty = _KTY_OF_ALG[alg]
    if key.get("kty") != kty or (alg in _CURVE_OF_ALG and key.get("crv") not in _CURVE_OF_ALG[alg]):
        raise DPoPError(INVALID_PROOF, "the proof's jwk does not fit its alg")
    members = _THUMBPRINT_MEMBERS[kty]
    if any(not isinstance(key.get(m), str) for m in members):
        raise DPoPError(INVALID_PROOF, "the proof's jwk is not a supported public key")
    cache_key = (alg, *(key[m] for m in members))
    hit = _KEYS.get(cache_key)
    if hit is not None:
        return hit
    if kty == "RSA" and _rsa_bits(key["n"]) < MIN_RSA_BITS:
        raise DPoPError(INVALID_PROOF, f"RSA proof keys need at least {MIN_RSA_BITS} bits")
    try:
        public = ASYMMETRIC[alg].from_jwk({m: key[m] for m in members})
    except (jwt.PyJWTError, ValueError, TypeError, binascii.Error):
        raise DPoPError(INVALID_PROOF, "the proof's jwk is not a valid public key") from None
    _KEYS[cache_key] = entry = (public, thumbprint(key))
    if len(_KEYS) > _KEY_CACHE_SIZE:
        _KEYS.popitem(last=False)
    return entry


def _rsa_bits(n: Any) -> int:
    """Bit length of an RSA modulus given as base64url (0 when unreadable)."""
    if not isinstance(n, str) or len(n) > 2048:
        return 0
    try:
        return int.from_bytes(b64url_decode(n)).bit_length()
    except ValueError:
        return 0


def check_ath(proof: Proof, access_token: str) -> None:
    """The proof's ``ath`` must be the hash of the access token it accompanies."""
    if not isinstance(proof.ath, str) or not same(proof.ath, access_token_hash(access_token)):
        raise DPoPError(INVALID_PROOF, "the proof's ath is not the hash of this access token")


def check_key(proof: Proof, jkt: str | None) -> None:
    """The proof's key must be the one the token is bound to (``cnf.jkt``)."""
    if jkt is None or not same(proof.jkt, jkt):
        raise DPoPError(INVALID_TOKEN, "the proof's key is not the key the token is bound to")


def _require_claims(claims: dict[str, Any]) -> None:
    for name in ("jti", "htm", "htu"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise DPoPError(INVALID_PROOF, f"the proof lacks {name}")
    if len(claims["jti"]) > 256:
        raise DPoPError(INVALID_PROOF, "the proof's jti is too long")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise DPoPError(INVALID_PROOF, "the proof lacks iat")


def challenge(error: DPoPError | None = None, algs: str = ALGS_PARAM) -> str:
    """A ``WWW-Authenticate: DPoP ...`` value (RFC 9449 §7.1)."""
    if error is None:
        return f'DPoP algs="{algs}"'
    return f'DPoP error="{error.error}", error_description="{error.description}", algs="{algs}"'


class DPoPChallenge(MeshError):
    """A 401 at a resource whose ``headers`` carry the DPoP challenge (and nonce)."""

    def __init__(self, error: DPoPError) -> None:
        super().__init__(ErrorCode.UNAUTHENTICATED, error.description)
        self.dpop_error = error
        self.headers = {"WWW-Authenticate": challenge(error)}
        if error.nonce:
            self.headers[NONCE_HEADER] = error.nonce


# --- the service side (zero trust behind the gateway) -----------------------------------

_SERVICE_CHECKER = ProofChecker()


async def nats_caller(
    verifier: Any, authorization: str | None, proof: str | None
) -> tuple[str | None, Any]:
    """``(token, claims)`` of a NATS request, re-checking a DPoP binding (module docstring).

    ``verifier`` is a :class:`mesh.tokens.TokenVerifier`. No token: ``(None, None)``.
    """
    cred = credentials(authorization)
    if cred is None:
        return None, None
    scheme, token = cred
    claims = await verifier.verify(token)
    try:
        jkt = bound_jkt(claims)
    except DPoPError as exc:
        raise MeshError(ErrorCode.UNAUTHENTICATED, exc.description) from None
    if jkt is None:
        if scheme == SCHEME:
            raise MeshError(ErrorCode.UNAUTHENTICATED, "the DPoP scheme needs a DPoP-bound token")
        return token, claims
    if scheme != SCHEME or not proof:
        raise MeshError(
            ErrorCode.UNAUTHENTICATED, "a DPoP-bound token needs the DPoP scheme and its proof"
        )
    try:
        _SERVICE_CHECKER.verify(proof, None, None, token, jkt, check_replay=False)
    except DPoPError as exc:
        raise MeshError(ErrorCode.UNAUTHENTICATED, exc.description) from None
    return token, claims


def forwarded_headers(token: str | None, proof: str | None) -> dict[str, str]:
    """NATS headers that carry a DPoP-bound token and its proof to a service."""
    if not token or not proof:
        return {}
    return {"Authorization": f"{SCHEME} {token}", HEADER: proof}
