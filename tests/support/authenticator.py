"""A software WebAuthn authenticator: real P-256 keys, real CBOR, real signatures.

It answers ``PublicKeyCredentialCreationOptions`` with "none" attestation and
``PublicKeyCredentialRequestOptions`` with an ES256 assertion, as a browser's
``PublicKeyCredential.toJSON()`` would, for a given origin. Every knob a hostile or
broken client could turn is a parameter: the origin, the RP ID hashed into the
authenticator data, the signature counter, the user verification flag.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    """One credential the authenticator holds (a discoverable one: it keeps the handle)."""

    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int = 0

    def cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )


def _client_data(kind: str, challenge: str, origin: str) -> bytes:
    return json.dumps(
        {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
    ).encode()


class SoftAuthenticator:
    """A passkey authenticator. ``counting=False`` models those that keep the counter at 0."""

    def __init__(self, origin: str, user_verified: bool = True, counting: bool = True) -> None:
        self.origin = origin
        self.user_verified = user_verified
        self.counting = counting
        self.credentials: dict[bytes, Credential] = {}

    def _flags(self, extra: int = 0) -> int:
        return UP | (UV if self.user_verified else 0) | BE | BS | extra

    def create(
        self, options: dict[str, Any], origin: str | None = None, rp_id: str | None = None
    ) -> dict[str, Any]:
        """``navigator.credentials.create()``: a new credential, as the JSON a browser sends."""
        rp = rp_id or options["rp"]["id"]
        cred = Credential(
            os.urandom(32),
            ec.generate_private_key(ec.SECP256R1()),
            rp,
            unb64url(options["user"]["id"]),
        )
        self.credentials[cred.id] = cred
        attested = os.urandom(16) + struct.pack(">H", len(cred.id)) + cred.id + cred.cose_key()
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags(AT)])
            + struct.pack(">I", cred.counter)
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = _client_data("webauthn.create", options["challenge"], origin or self.origin)
        return {
            "id": b64url(cred.id),
            "rawId": b64url(cred.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal", "hybrid"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        credential: bytes | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
        counter: int | None = None,
    ) -> dict[str, Any]:
        """``navigator.credentials.get()``: an assertion by ``credential`` (else the one
        the options allow, else any this authenticator holds for the RP)."""
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials") or []]
        if credential is None:
            mine = [c for c in self.credentials.values() if c.rp_id == options["rpId"]]
            usable = [c for c in mine if not allowed or c.id in allowed]
            credential = usable[0].id
        cred = self.credentials[credential]
        if counter is None:
            if self.counting:
                cred.counter += 1
            counter = cred.counter
        rp = rp_id or options["rpId"]
        auth_data = (
            hashlib.sha256(rp.encode()).digest()
            + bytes([self._flags()])
            + struct.pack(">I", counter)
        )
        client_data = _client_data("webauthn.get", options["challenge"], origin or self.origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = cred.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(cred.id),
            "rawId": b64url(cred.id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(cred.user_handle),
            },
        }
