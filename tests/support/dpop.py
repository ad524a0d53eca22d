"""A DPoP client key for tests: signs real proofs (RFC 9449), good ones and bad ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from mesh.dpop import access_token_hash, thumbprint


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class DPoPKey:
    """A client's key pair; :meth:`proof` signs a proof, every field overridable."""

    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        self.private: Any
        if alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            algo: Any = jwt.algorithms.ECAlgorithm
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            algo = jwt.algorithms.OKPAlgorithm
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            algo = jwt.algorithms.RSAAlgorithm
        self.public_jwk: dict[str, Any] = json.loads(algo.to_jwk(self.private.public_key()))
        self.private_jwk: dict[str, Any] = json.loads(algo.to_jwk(self.private))

    @property
    def jkt(self) -> str:
        return thumbprint(self.public_jwk)

    def proof(
        self,
        htm: str,
        htu: str,
        token: str | None = None,
        nonce: object = None,  # any JSON value: hostile tests send odd ones
        iat: float | None = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        payload: dict[str, Any] = {
            "jti": jti if jti is not None else uuid.uuid4().hex,
            "htm": htm,
            "htu": htu,
            "iat": int(iat if iat is not None else time.time()),
        }
        if token is not None:
            payload["ath"] = access_token_hash(token)
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims)
        hdr = {"typ": "dpop+jwt", "jwk": self.public_jwk, **(header or {})}
        return jwt.encode(payload, self.private, self.alg, headers=hdr)

    def headers(self, htm: str, htu: str, token: str | None = None, **kw: Any) -> dict[str, str]:
        """``DPoP`` (and, with a token, ``Authorization: DPoP``) request headers."""
        out = {"DPoP": self.proof(htm, htu, token, **kw)}
        if token is not None:
            out["Authorization"] = f"DPoP {token}"
        return out


def unsigned_proof(htm: str, htu: str, jwk: dict[str, Any]) -> str:
    """A proof with ``alg: none`` (must be refused)."""
    payload = {"jti": uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": int(time.time())}
    return jwt.encode(payload, "", "none", headers={"typ": "dpop+jwt", "jwk": jwk})


def hs256_proof(htm: str, htu: str, secret: bytes = b"k" * 32) -> str:
    """A proof MAC'd with HS256 and an oct ``jwk`` (must be refused)."""
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": _b64(secret)}}
    payload = {"jti": uuid.uuid4().hex, "htm": htm, "htu": htu, "iat": int(time.time())}
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{_b64(mac)}"


def tampered(proof: str) -> str:
    """The proof with its payload changed after signing (a bad signature)."""
    head, payload, sig = proof.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["jti"] = uuid.uuid4().hex
    return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
