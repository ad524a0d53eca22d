"""Per-ecosystem signing keys: generation, encryption at rest, rotation with overlap, JWKS.

States: ``next`` (published in JWKS, not yet signing), ``active`` (signs), ``retired``
(published until every token it signed has expired, then dropped). A rotation promotes
``next`` to ``active``, so a key is always in JWKS before anything is signed with it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from identity.domain.crypto import Sealer
from identity.store import repository as repo
from identity.store.models import Ecosystem, SigningKey
from identity.store.transaction import Tx

ALG = "RS256"  # ID tokens unless a client asks for another (OIDC's default)
ALGS = ("RS256", "ES256")  # every ecosystem holds keys of both, rotated together
# Access tokens unless the ecosystem chose RS256: smaller, and ten times cheaper to sign.
ACCESS_TOKEN_ALG = "ES256"
# A retired key stays published this long past the longest token lifetime.
RETIRE_LEEWAY_S = 300


@dataclass(frozen=True)
class Signer:
    kid: str
    alg: str
    key: PrivateKeyTypes


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, used as the key id."""
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canon = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).decode().rstrip("=")


def new_key(eco: str, state: str, sealer: Sealer, alg: str = ALG) -> SigningKey:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
    else:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    kid = _thumbprint(public_jwk)
    public_jwk.update(kid=kid, use="sig", alg=alg)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(
        kid=kid,
        eco=eco,
        alg=alg,
        state=state,
        public_jwk=public_jwk,
        private_enc=sealer.seal(pem, kid.encode()),
        created_at=datetime.now(UTC),
    )


class KeyRing:
    """Decrypted signing keys and JWKS per ecosystem, cached for a few seconds."""

    def __init__(self, sealer: Sealer, ttl: float = 10.0) -> None:
        self.sealer = sealer
        self.ttl = ttl
        self._signers: dict[tuple[str, str], tuple[float, Signer]] = {}
        self._jwks: dict[str, tuple[float, dict[str, Any]]] = {}

    def invalidate(self, eco: str) -> None:
        for alg in ALGS:
            self._signers.pop((eco, alg), None)
        self._jwks.pop(eco, None)

    def signer(self, tx: Tx, eco: str, alg: str = ALG) -> Signer:
        cached = self._signers.get((eco, alg))
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return self.reload_signer(tx, eco, alg)

    def reload_signer(self, tx: Tx, eco: str, alg: str) -> Signer:
        """The active key of ``eco`` for ``alg`` read afresh from the database and cached
        (the cached one stays in use until then)."""
        active = [k for k in repo.keys_of(tx.s, eco) if k.state == "active" and k.alg == alg]
        if not active:
            ensure_keys(tx, eco, self.sealer)
            active = [k for k in repo.keys_of(tx.s, eco) if k.state == "active" and k.alg == alg]
        row = active[-1]
        pem = self.sealer.open(row.private_enc, row.kid.encode())
        # AES-GCM authenticated the key we generated ourselves: re-checking an RSA key's
        # mathematics would only block the event loop (tens of ms) on every reload.
        key = serialization.load_pem_private_key(pem, None, unsafe_skip_rsa_key_validation=True)
        signer = Signer(row.kid, row.alg, key)
        self._signers[(eco, alg)] = (time.monotonic(), signer)
        return signer

    def jwks(self, tx: Tx, eco: str) -> dict[str, Any]:
        cached = self._jwks.get(eco)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        now = datetime.now(UTC)
        keys = [dict(k.public_jwk) for k in repo.keys_of(tx.s, eco) if published(k, now)]
        doc = {"keys": keys}
        self._jwks[eco] = (time.monotonic(), doc)
        return doc

    def signer_age(self, eco: str, alg: str) -> float | None:
        cached = self._signers.get((eco, alg))
        return None if cached is None else time.monotonic() - cached[0]

    def cached_signer(self, eco: str, alg: str) -> Signer | None:
        """The signer of ``eco`` for ``alg`` if it is cached and fresh (no database)."""
        cached = self._signers.get((eco, alg))
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return None

    def public_key(self, tx: Tx, eco: str, kid: str) -> Any:
        jwk = self.public_jwk(tx, eco, kid)
        return jwk.key if jwk is not None else None

    def public_jwk(self, tx: Tx, eco: str, kid: str) -> jwt.PyJWK | None:
        """A published key of ``eco`` by id; its ``algorithm_name`` is the only alg to accept."""
        for k in self.jwks(tx, eco)["keys"]:
            if k["kid"] == kid:
                return jwt.PyJWK.from_dict(k)
        self.invalidate(eco)
        for k in self.jwks(tx, eco)["keys"]:
            if k["kid"] == kid:
                return jwt.PyJWK.from_dict(k)
        return None


def access_token_alg(eco: Ecosystem | None) -> str:
    """The algorithm of an ecosystem's access tokens (ES256 unless it chose RS256)."""
    return (eco.access_token_alg if eco is not None else None) or ACCESS_TOKEN_ALG


def published(key: SigningKey, now: datetime) -> bool:
    """Every key is in JWKS except a retired one whose tokens have all expired."""
    if key.state != "retired" or key.retire_until is None:
        return True
    until = key.retire_until if key.retire_until.tzinfo else key.retire_until.replace(tzinfo=UTC)
    return until > now


def ensure_keys(tx: Tx, eco: str, sealer: Sealer) -> None:
    """An ecosystem always has one active and one next key per algorithm."""
    present = {(k.alg, k.state) for k in repo.keys_of(tx.s, eco)}
    for alg in ALGS:
        for state in ("active", "next"):
            if (alg, state) not in present:
                repo.add(tx.s, new_key(eco, state, sealer, alg))


def rotate(tx: Tx, eco: str, sealer: Sealer, max_token_ttl: int) -> dict[str, Any]:
    """Per algorithm: next → active, active → retired (published until its tokens expire),
    and a new next. Returns the kids of the ecosystem's access-token keys plus ``by_alg``."""
    access_alg = access_token_alg(repo.get_ecosystem(tx.s, eco))
    ensure_keys(tx, eco, sealer)
    now = datetime.now(UTC)
    repo.drop_expired_keys(tx.s, eco, now)
    keys = repo.keys_of(tx.s, eco)
    by_alg: dict[str, dict[str, str]] = {}
    for alg in ALGS:
        retired = [k for k in keys if k.alg == alg and k.state == "active"]
        promoted = next(k for k in keys if k.alg == alg and k.state == "next")
        for k in retired:
            k.state = "retired"
            k.retire_until = now + timedelta(seconds=max_token_ttl + RETIRE_LEEWAY_S)
        promoted.state = "active"
        tx.s.flush()
        upcoming = new_key(eco, "next", sealer, alg)
        repo.add(tx.s, upcoming)
        by_alg[alg] = {
            "active": promoted.kid,
            "next": upcoming.kid,
            "retired": ",".join(k.kid for k in retired),
        }
    tx.audit(eco, "key.rotated", target=by_alg[access_alg]["active"], keys=by_alg)
    return {**by_alg[access_alg], "by_alg": by_alg}
