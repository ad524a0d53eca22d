"""Random identifiers of lean tokens (``jti``) and of their audit events (UUIDv7), drawn
from a pool of operating-system randomness instead of one ``os.urandom`` call each.

Every ``os.urandom`` call is a ``getrandom`` system call, and a lean token needs two
random identifiers: two system calls per token, which on a busy machine are also two
chances for the scheduler to run something else. The pool reads ``POOL`` bytes at once
from the same source (``os.urandom``) and hands each byte out once, so the identifiers
are exactly as random as before: 122 random bits in a version-4 ``jti``, 74 in a
version-7 event id (:func:`contracts.ids.uuid7_hex`'s layout). A child process made by
``fork`` starts with an empty pool (it must not repeat its parent's bytes).

Only the event loop's thread draws from it (the lean path); it is not thread-safe.
"""

from __future__ import annotations

import os

from contracts.ids import uuid7_from

POOL = 4096  # bytes read per getrandom call: 160 lean tokens' worth

_pool = b""
_at = 0


def _take(n: int) -> bytes:
    """``n`` bytes of the pool, never handed out before."""
    global _pool, _at
    end = _at + n
    if end > len(_pool):
        _pool, _at, end = os.urandom(POOL), 0, n
    chunk = _pool[_at:end]
    _at = end
    return chunk


def _forget() -> None:
    global _pool, _at
    _pool, _at = b"", 0


os.register_at_fork(after_in_child=_forget)


def uuid4_hex() -> str:
    """``uuid.uuid4().hex``: random, version 4, RFC 4122 variant."""
    raw = bytearray(_take(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def uuid7_hex() -> str:
    """:func:`contracts.ids.uuid7_hex` (48 bits of Unix milliseconds, 74 random bits)."""
    return uuid7_from(_take(10))
