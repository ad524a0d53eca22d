"""Browser-facing hardening: security headers with a strict CSP, CSRF tokens, origin checks."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mesh.consttime import same

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(identity_url: str) -> str:
    """No inline scripts or styles, nothing from elsewhere; forms post here (and log out there)."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            f"form-action 'self' {origin_of(identity_url)}",
        ]
    )


class SecurityHeaders:
    """Adds the security headers to every response, and refuses cross-origin unsafe requests."""

    def __init__(self, app: ASGIApp, public_url: str, identity_url: str) -> None:
        self.app = app
        self.origin = origin_of(public_url)
        self.tls = public_url.startswith("https://")
        self.headers = [
            (b"content-security-policy", content_security_policy(identity_url).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if self.tls:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in UNSAFE_METHODS and not self._same_origin(scope):
            await _forbidden(send, self.headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.headers if k not in names]
                if not scope["path"].startswith("/static/") and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _same_origin(self, scope: Scope) -> bool:
        """Browsers send Origin on unsafe requests; when present it must be ours."""
        for key, value in scope.get("headers", []):
            if key == b"origin":
                return bool(value.decode("latin-1") == self.origin)
        return True


async def _forbidden(send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    body = b"Cross-origin request refused."
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def csrf_ok(expected: str, given: Any) -> bool:
    return isinstance(given, str) and bool(given) and same(expected, given)
