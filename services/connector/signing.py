"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
``v1,`` + base64(HMAC-SHA256(key, content)) where the key is the base64 part of a
``whsec_`` secret. A ``webhook-signature`` header may list several space-separated
signatures (key rotation); one match is enough. Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

PREFIX = "whsec_"


class SignatureError(Exception):
    pass


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, msg_id: str, timestamp: int | str, body: str) -> str:
    content = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def verify(
    secret: str,
    msg_id: str,
    timestamp: str,
    signature_header: str,
    body: str,
    tolerance_s: int = 300,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the message is signed and fresh."""
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise SignatureError("webhook-timestamp is outside the tolerance window")
    expected = sign(secret, msg_id, ts, body).encode()
    for candidate in signature_header.split():
        version, _, _sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(candidate.encode(), expected):
            return
    raise SignatureError("no valid v1 signature")
