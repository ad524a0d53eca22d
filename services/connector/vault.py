"""The vault: secrets sealed with AES-256-GCM under a key derived from ``secret_key``.

A sealed value reads ``<key id>:<base64(nonce | ciphertext)>``; the row id is the
associated data, so a ciphertext copied onto another row does not open. Keys
derived from ``previous_secret_keys`` still open old values, and :meth:`Vault.reseal`
re-encrypts them under the current key (key rotation). Plaintexts never leave the
connector: no reply model has a field for them.
"""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"partnermesh connector vault v1"


def derive_key(secret_key: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"partnermesh-vault", info=_INFO)
    return hkdf.derive(secret_key.encode())


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


class VaultError(Exception):
    """A sealed value cannot be opened with any known key."""


class Vault:
    def __init__(self, secret_key: str, previous: list[str] | tuple[str, ...] = ()) -> None:
        self._current = derive_key(secret_key)
        self.current_id = key_id(self._current)
        self._keys = {key_id(k): k for k in (derive_key(p) for p in previous)}
        self._keys[self.current_id] = self._current

    def seal(self, secret_id: str, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self._current).encrypt(nonce, plaintext.encode(), secret_id.encode())
        return f"{self.current_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, secret_id: str, sealed: str) -> str:
        kid, _, blob = sealed.partition(":")
        key = self._keys.get(kid)
        if key is None:
            raise VaultError("sealed with a key this process does not know")
        raw = base64.b64decode(blob)
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], secret_id.encode()).decode()
        except InvalidTag:
            raise VaultError("sealed value is corrupt or belongs to another row") from None

    def needs_reseal(self, sealed: str) -> bool:
        return not sealed.startswith(self.current_id + ":")
