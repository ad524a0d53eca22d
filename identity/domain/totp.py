"""Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP) and recovery codes.

A person's authenticator app and the provider share a random 160-bit key (shown once
as an ``otpauth://`` URI and as base32 text, kept sealed at rest). A code is accepted
for the current 30-second step and one step either side (clock drift), and only for a
step later than the last one accepted: the same code, or an older one, never counts
twice. Recovery codes are random, shown once, stored as keyed hashes (a MAC under the
deployment's key, so a copy of the database alone cannot test guesses) and spent once.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

import segno

STEP_S = 30
DIGITS = 6
WINDOW = 1  # steps either side of now that still count
KEY_BYTES = 20  # RFC 4226 §4: 160 bits, HMAC-SHA-1's block of key
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def b32(key: bytes) -> str:
    """The key as authenticator apps take it: base32, no padding."""
    return base64.b32encode(key).decode().rstrip("=")


def hotp(key: bytes, counter: int, digits: int = DIGITS, algorithm: str = "sha1") -> str:
    """RFC 4226 §5.3: HMAC, dynamic truncation, the last ``digits`` decimal digits."""
    mac = hmac.new(key, struct.pack(">Q", counter), algorithm).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(now: float) -> int:
    """RFC 6238 §4.2: T = floor((now - T0) / X), T0 = 0, X = 30 s."""
    return int(now // STEP_S)


def totp(key: bytes, now: float, digits: int = DIGITS, algorithm: str = "sha1") -> str:
    return hotp(key, step_at(now), digits, algorithm)


def matching_step(key: bytes, code: str, last_step: int | None, now: float | None = None) -> int:
    """The time step ``code`` is the code of, within the window and later than
    ``last_step``; -1 when there is none (wrong, expired or already used)."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return -1
    current = step_at(time.time() if now is None else now)
    found = -1
    for step in range(current - WINDOW, current + WINDOW + 1):
        # every candidate is compared (constant work whichever matches)
        if hmac.compare_digest(hotp(key, step), code) and (last_step is None or step > last_step):
            found = step
    return found


def otpauth_uri(issuer: str, account: str, key: bytes) -> str:
    """The key-provisioning URI authenticator apps read (Google Authenticator's format)."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode(
        {
            "secret": b32(key),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_S,
        }
    )
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str) -> str:
    """The URI as a QR code, inline SVG markup (no scripts, no style attributes: it
    renders under the pages' CSP)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4, light="#fff", title="QR code"))


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """``count`` codes of 12 characters (~59 bits each), written ``xxxx-xxxx-xxxx``."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def normal_recovery_code(code: str) -> str:
    """A recovery code as typed (any case, with or without dashes or spaces) in the form
    it is hashed in."""
    return "".join(c for c in code.lower() if c.isalnum())


def looks_like_recovery_code(code: str) -> bool:
    norm = normal_recovery_code(code)
    return len(norm) == 12 and all(c in _RECOVERY_ALPHABET for c in norm)
