"""CORS per ecosystem: each ecosystem lists the browser origins that may call its API."""

from __future__ import annotations

import re

_ECO_PATH = re.compile(r"^/v1/ecosystems/([^/]+)(?:/|$)")

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, DPoP, traceparent, tracestate, X-Request-Id"
EXPOSE_HEADERS = (
    "RateLimit, RateLimit-Policy, Retry-After, X-Request-Id, traceparent, "
    "DPoP-Nonce, WWW-Authenticate"
)


def eco_of_path(path: str) -> str | None:
    found = _ECO_PATH.match(path)
    return found.group(1) if found else None


class CorsPolicy:
    def __init__(self, origins: dict[str, list[str]], max_age: int = 600) -> None:
        self.origins = {
            eco: frozenset(o.rstrip("/") for o in allowed) for eco, allowed in origins.items()
        }
        self.max_age = max_age

    def allows(self, path: str, origin: str) -> bool:
        eco = eco_of_path(path)
        if eco is None:
            return False
        allowed = self.origins.get(eco, frozenset())
        return "*" in allowed or origin.rstrip("/") in allowed

    def headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        """Headers of an actual (non-preflight) response to an allowed origin."""
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
            (b"vary", b"Origin"),
        ]

    def raw_headers(self, path: str, origin: bytes) -> list[tuple[bytes, bytes]]:
        """:meth:`headers` for a request's raw Origin header (none when its ecosystem does
        not allow it): for replies written before the request's headers are decoded."""
        if not origin:
            return []
        sent = origin.decode("latin-1")
        return self.headers(sent) if self.allows(path, sent) else []

    def preflight_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", str(self.max_age).encode()),
            (b"vary", b"Origin"),
        ]
