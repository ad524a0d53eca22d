"""Reaching the identity provider from inside the deployment.

Tokens name their issuer by identity's public address (``identity_url``), which a
process inside a cluster may not reach (or should not: out through the ingress and back).
With ``identity_internal_url`` set, every request a process sends under the public
address goes to the internal one instead, the rest of the URL kept: discovery documents,
key sets, the token endpoint. Issuers and the URLs in documents stay public.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def default_tls() -> ssl.SSLContext:
    """httpx's default verifying TLS context (its CA bundle; ``SSL_CERT_FILE`` and
    ``SSL_CERT_DIR`` honoured), made once per process: making one reads and parses every CA
    certificate, tens of milliseconds that each runtime and gateway paid at start."""
    return httpx.create_ssl_context()


class IdentityRoute:
    """Sends URLs under ``public`` to ``internal`` (no ``internal``: unchanged)."""

    def __init__(self, public: str, internal: str = "") -> None:
        self.public = public.rstrip("/")
        self.internal = internal.rstrip("/")

    def fetch_url(self, url: str) -> str:
        if (
            self.internal
            and self.public
            and (url == self.public or url.startswith(self.public + "/"))
        ):
            return self.internal + url[len(self.public) :]
        return url

    def transport(self, inner: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
        """An httpx transport that routes this way (the plain one when nothing is routed)."""
        plain = inner or httpx.AsyncHTTPTransport(verify=default_tls())
        return RoutedTransport(self, plain) if self.internal else plain


class RoutedTransport(httpx.AsyncBaseTransport):
    def __init__(self, route: IdentityRoute, inner: httpx.AsyncBaseTransport) -> None:
        self.route = route
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        routed = self.route.fetch_url(str(request.url))
        if routed != str(request.url):
            request.url = httpx.URL(routed)
            request.headers["Host"] = request.url.netloc.decode("ascii")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
