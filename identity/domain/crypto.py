"""Secrets at rest and in transit: random tokens, hashes, AES-GCM, argon2id, CSRF tokens,
PKCE pairs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mesh import consttime


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret (32 bytes = 256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """SHA-256 of a high-entropy value (tokens, client secrets, codes): what is stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time equality, whatever characters a caller sent (mesh.consttime)."""
    return consttime.same(a, b)


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


class Sealer:
    """AES-256-GCM with a key derived (HKDF) from the deployment's key-encryption secret."""

    def __init__(self, secret: str, purpose: bytes = b"partnermesh identity keys") -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
            secret.encode()
        )
        self._aead = AESGCM(key)
        self._mac_key = hashlib.sha256(b"csrf:" + key).digest()
        self._key = key

    def seal(self, plaintext: bytes, context: bytes = b"") -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, context)
        return "v1." + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, context: bytes = b"") -> bytes:
        raw = base64.urlsafe_b64decode(sealed.removeprefix("v1."))
        return self._aead.decrypt(raw[:12], raw[12:], context)

    def mac(self, value: str) -> str:
        return hmac.new(self._mac_key, value.encode(), hashlib.sha256).hexdigest()

    def check_mac(self, value: str, mac: str) -> bool:
        return same(self.mac(value), mac)

    def keyed_hash(self, purpose: bytes, value: str) -> str:
        """HMAC-SHA-256 of ``value`` under a key of its own for ``purpose`` (never the CSRF
        key, whose MACs of chosen values the pages hand out)."""
        key = hashlib.sha256(purpose + b":" + self._key).digest()
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class Passwords:
    """argon2id hashing with the configured cost."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        # Verified when the account does not exist, so timing does not reveal that.
        self._dummy = self._hasher.hash(new_secret())

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored or self._dummy, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False
