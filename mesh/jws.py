"""Compact JWS parsing shared by access-token and DPoP-proof verification.

One light parse (PyJWT checks base64 character by character in Python): strict base64url
segments, JSON-object header and payload, the signing input and the signature. Nothing
returned is trusted until the signature over ``signing_input`` verifies.

PyJWT and joserfc parse a token's JSON with ``json.loads``, which a deeply nested header
turns into a ``RecursionError``; code that hands a caller's token to them calls
:func:`parse_compact` first (its ValueError is the caller's error), and reads unverified
members (``kid``, ``iss``) from its result rather than from ``jwt.get_unverified_header``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from jwt.algorithms import get_default_algorithms

from mesh import safejson

# Asymmetric algorithms only: a symmetric one (HS256 keyed with a public key) or "none"
# is never looked up, whatever a header says.
ASYMMETRIC = {
    name: alg
    for name, alg in get_default_algorithms().items()
    if name in ("RS256", "PS256", "ES256", "EdDSA")
}

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_decode(part: str) -> bytes:
    """Unpadded base64url, refusing any character outside its alphabet."""
    if not _B64URL.fullmatch(part):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from None


def _json_object(part: str) -> dict[str, Any]:
    # Bounded in depth (mesh.safejson): a header nested a thousand levels is malformed,
    # not a RecursionError.
    return safejson.loads_object(b64url_decode(part))


@dataclass(frozen=True, slots=True)
class Compact:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def parse_compact(token: str) -> Compact:
    """The parts of ``header.payload.signature``; ValueError when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    return Compact(
        _json_object(parts[0]),
        _json_object(parts[1]),
        f"{parts[0]}.{parts[1]}".encode("ascii"),
        b64url_decode(parts[2]),
    )
