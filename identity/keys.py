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
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from identity import repository as repo
from identity.context import Tx
from identity.crypto import Sealer
from identity.models import SigningKey

ALG = "RS256"
# A retired key stays published this long past the longest token lifetime.
RETIRE_LEEWAY_S = 300


@dataclass(frozen=True)
class Signer:
    kid: str
    alg: str
    key: PrivateKeyTypes


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, used as the key id."""
    canon = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canon.encode()).digest()).decode().rstrip("=")


def new_key(eco: str, state: str, sealer: Sealer) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk: dict[str, Any] = json.loads(
        jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key())
    )
    kid = _thumbprint(public_jwk)
    public_jwk.update(kid=kid, use="sig", alg=ALG)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return SigningKey(
        kid=kid,
        eco=eco,
        alg=ALG,
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
        self._signers: dict[str, tuple[float, Signer]] = {}
        self._jwks: dict[str, tuple[float, dict[str, Any]]] = {}

    def invalidate(self, eco: str) -> None:
        self._signers.pop(eco, None)
        self._jwks.pop(eco, None)

    def signer(self, tx: Tx, eco: str) -> Signer:
        cached = self._signers.get(eco)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        active = [k for k in repo.keys_of(tx.s, eco) if k.state == "active"]
        if not active:
            ensure_keys(tx, eco, self.sealer)
            active = [k for k in repo.keys_of(tx.s, eco) if k.state == "active"]
        row = active[-1]
        pem = self.sealer.open(row.private_enc, row.kid.encode())
        signer = Signer(row.kid, row.alg, serialization.load_pem_private_key(pem, None))
        self._signers[eco] = (time.monotonic(), signer)
        return signer

    def jwks(self, tx: Tx, eco: str) -> dict[str, Any]:
        cached = self._jwks.get(eco)
        if cached and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        keys = [dict(k.public_jwk) for k in repo.keys_of(tx.s, eco)]
        doc = {"keys": keys}
        self._jwks[eco] = (time.monotonic(), doc)
        return doc

    def public_key(self, tx: Tx, eco: str, kid: str) -> Any:
        for k in self.jwks(tx, eco)["keys"]:
            if k["kid"] == kid:
                return jwt.PyJWK.from_dict(k).key
        self.invalidate(eco)
        for k in self.jwks(tx, eco)["keys"]:
            if k["kid"] == kid:
                return jwt.PyJWK.from_dict(k).key
        return None


def ensure_keys(tx: Tx, eco: str, sealer: Sealer) -> None:
    """An ecosystem always has one active and one next key."""
    states = {k.state for k in repo.keys_of(tx.s, eco)}
    if "active" not in states:
        repo.add(tx.s, new_key(eco, "active", sealer))
    if "next" not in states:
        repo.add(tx.s, new_key(eco, "next", sealer))


def rotate(tx: Tx, eco: str, sealer: Sealer, max_token_ttl: int) -> dict[str, str]:
    """Promote next → active, active → retired (kept until its tokens expire), add a new next."""
    ensure_keys(tx, eco, sealer)
    now = datetime.now(UTC)
    repo.drop_expired_keys(tx.s, eco, now)
    keys = repo.keys_of(tx.s, eco)
    retired = [k for k in keys if k.state == "active"]
    promoted = next(k for k in keys if k.state == "next")
    for k in retired:
        k.state = "retired"
        k.retire_until = now + timedelta(seconds=max_token_ttl + RETIRE_LEEWAY_S)
    promoted.state = "active"
    tx.s.flush()
    upcoming = new_key(eco, "next", sealer)
    repo.add(tx.s, upcoming)
    tx.audit(eco, "key.rotated", target=promoted.kid, retired=[k.kid for k in retired])
    return {
        "active": promoted.kid,
        "next": upcoming.kid,
        "retired": ",".join(k.kid for k in retired),
    }
