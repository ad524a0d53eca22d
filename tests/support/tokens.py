"""Mint real signed access tokens for given claims (for tests that are not about login)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from contracts.claims import ALL_SCOPES, DEFAULT_AUDIENCE, Role
from mesh.tokens import TokenVerifier, issuer_for

TEST_IDENTITY_URL = "http://identity.test"


class TestKeys:
    """A KeySource holding one RSA key pair for every issuer under the test identity URL."""

    def __init__(self, kid: str = "test-key") -> None:
        self.kid = kid
        # Sign with this key object, never with ``private_pem``: PyJWT loads a PEM key on
        # every signature, and loading (with its RSA consistency check) costs a hundred
        # times the signature itself.
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.private.public_key(), as_dict=True
        )
        self.public_jwk.update(kid=kid, use="sig", alg="RS256")
        self.private_pem = self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    async def key(self, issuer: str, kid: str) -> jwt.PyJWK | None:
        if kid == self.kid and issuer.startswith(TEST_IDENTITY_URL + "/eco/"):
            return jwt.PyJWK.from_dict(self.public_jwk)
        return None

    def verifier(self, cache_size: int = 0) -> TokenVerifier:
        return TokenVerifier(self, TEST_IDENTITY_URL, DEFAULT_AUDIENCE, cache_size=cache_size)


class TokenFactory:
    def __init__(self, keys: TestKeys) -> None:
        self.keys = keys

    def claims(
        self,
        eco: str = "acme",
        partner: str | None = "alpha",
        roles: list[Role] | tuple[Role, ...] = (Role.MEMBER,),
        scope: str | None = None,
        sub: str | None = None,
        expires_in: int = 300,
        **extra: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": issuer_for(TEST_IDENTITY_URL, eco),
            "sub": sub or f"user-{uuid.uuid4().hex[:8]}",
            "aud": DEFAULT_AUDIENCE,
            "iat": now,
            "exp": now + expires_in,
            "jti": uuid.uuid4().hex,
            "client_id": "test-client",
            "scope": scope if scope is not None else " ".join(sorted(ALL_SCOPES)),
            "eco": eco,
            "roles": [str(r) for r in roles],
        }
        if partner is not None:
            payload["partner"] = partner
        payload.update(extra)
        return payload

    def mint(self, headers: dict[str, Any] | None = None, **claims: Any) -> str:
        hdrs = {"typ": "at+jwt", "kid": self.keys.kid}
        hdrs.update(headers or {})
        return jwt.encode(self.claims(**claims), self.keys.private, "RS256", headers=hdrs)
