"""Hostile JSON for tests of every parse boundary: depth bombs and other odd documents.

A document nested :data:`DEPTH` levels is a few kilobytes and makes ``json.loads`` raise
``RecursionError``; each boundary must answer it with a client error, never a 500.
"""

from __future__ import annotations

import base64
import json

DEPTH = 1100


def nested_arrays(depth: int = DEPTH) -> str:
    """``[[[…]]]``: ``depth`` levels in ``2 * depth`` bytes."""
    return "[" * depth + "]" * depth


def nested_objects(depth: int = DEPTH) -> str:
    """``{"a":{"a":…1…}}``: ``depth`` levels of objects."""
    return '{"a":' * depth + "1" + "}" * depth


def object_holding(bomb: str, **members: object) -> str:
    """A JSON object with ``members`` and a member ``x`` holding ``bomb`` (raw JSON)."""
    head = json.dumps(members)[:-1]
    return f'{head}{", " if members else ""}"x": {bomb}}}'


BOMBS = {"arrays": nested_arrays(), "objects": nested_objects()}


def b64url(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def compact(header: str, payload: str, signature: bytes = b"not a signature") -> str:
    """A compact JWS whose header and payload are the given raw JSON texts."""
    return f"{b64url(header)}.{b64url(payload)}.{b64url(signature)}"


ACCESS_HEADER = '{"alg": "RS256", "typ": "at+jwt", "kid": "test-key"}'
CLAIMS = '{"iss": "http://identity.test/eco/acme", "sub": "x", "eco": "acme"}'


def token_bombs() -> dict[str, str]:
    """Access tokens whose header or payload decodes to a depth bomb, by name."""
    out: dict[str, str] = {}
    for kind, bomb in BOMBS.items():
        out[f"header-{kind}"] = compact(bomb, CLAIMS)
        out[f"payload-{kind}"] = compact(ACCESS_HEADER, bomb)
        out[f"header-member-{kind}"] = compact(object_holding(bomb, typ="at+jwt"), CLAIMS)
    return out


# Other documents a caller can send: none may cause a 5xx.
ODD_BODIES = {
    "huge-integer": b'{"a": ' + b"9" * 5000 + b"}",
    "huge-float": b'{"a": 1e400}',
    "nan": b'{"a": NaN}',
    "infinity": b'{"a": -Infinity}',
    "invalid-utf8": b'{"a": "\xff\xfe"}',
    "lone-surrogate": b'{"a": "\\ud800"}',
    "duplicate-keys": b'{"a": 1, "a": 2}',
    "long-string": b'{"a": "' + b"x" * 200_000 + b'"}',
    "trailing-garbage": b'{"a": 1} {',
    "not-an-object": b"[1, 2, 3]",
    "nul": b'{"a": "\\u0000"}',
}
