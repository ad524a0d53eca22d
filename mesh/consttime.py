"""Constant-time comparison of strings a caller chose (tokens, MACs, nonces, states).

``hmac.compare_digest`` raises ``TypeError`` when a ``str`` holds a non-ASCII character,
so comparing a caller's value with it directly turns ``é`` in a form field into a server
error. :func:`same` compares the UTF-8 bytes (lone surrogates included) instead.
"""

from __future__ import annotations

import hmac


def _raw(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def same(a: str, b: str) -> bool:
    """``a == b``, in time independent of where they differ; False for non-strings."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return hmac.compare_digest(_raw(a), _raw(b))
