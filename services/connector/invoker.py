"""Calls to partners' back-ends over httpx: authentication, the egress guard, timeouts,
retries with backoff (idempotent methods only), redirects on the same host, a
circuit breaker per back-end and a cap on response size."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from contracts.errors import ErrorCode
from mesh import safejson
from mesh.errors import MeshError
from services.connector import ssrf
from services.connector.breaker import Breakers
from services.connector.settings import ConnectorSettings

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})


class InvokeFailure(MeshError):
    """A call that did not produce a usable response; ``outcome`` goes to the audit."""

    def __init__(
        self,
        code: ErrorCode,
        detail: str,
        outcome: str,
        attempts: int = 0,
        status: int | None = None,
    ) -> None:
        super().__init__(code, detail)
        self.outcome = outcome
        self.attempts = attempts
        self.http_status = status


@dataclass(frozen=True)
class Target:
    """Everything needed to call one back-end (secrets already opened from the vault)."""

    backend_id: str
    eco: str
    base_url: str
    auth_kind: str
    auth: dict[str, Any]
    server_ca_pem: str | None
    version: int


@dataclass
class Result:
    status: int
    body: Any
    attempts: int


@dataclass
class _Token:
    value: str
    expires: float


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that dials only addresses the guard accepts."""

    def __init__(
        self, ctx: ssl.SSLContext | None, allowed: Callable[[], list[ssrf.Network]]
    ) -> None:  # no super().__init__(): it would build a pool (and TLS context) we replace
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ctx,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=ssrf.GuardedBackend(allowed),
        )


@dataclass
class Invoker:
    settings: ConnectorSettings
    breakers: Breakers = field(init=False)
    _allowed: dict[str, list[ssrf.Network]] = field(default_factory=dict)
    _clients: dict[tuple[str, str], httpx.AsyncClient] = field(default_factory=dict)
    _tokens: dict[tuple[str, int], _Token] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.breakers = Breakers(self.settings.breaker_failures, self.settings.breaker_cooldown_s)
        self._static = ssrf.parse_networks(self.settings.egress_allow)

    def set_allowed(self, eco: str, entries: list[str]) -> list[ssrf.Network]:
        self._allowed[eco] = [*self._static, *ssrf.parse_networks(entries)]
        return self._allowed[eco]

    def allowed(self, eco: str) -> list[ssrf.Network]:
        return self._allowed.get(eco, self._static)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    # --- one call, with retries ---------------------------------------------------------------

    async def call(
        self,
        target: Target,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Result:
        attempts = self.settings.max_attempts if method in IDEMPOTENT else 1
        timeout = timeout or self.settings.invoke_timeout_s
        tried = 0
        while True:
            if not self.breakers.allow(target.backend_id):
                raise InvokeFailure(
                    ErrorCode.UNAVAILABLE, "the back-end's circuit is open", "circuit_open", tried
                )
            tried += 1
            try:
                result = await self._once(target, method, path, params, body, headers, timeout)
            except InvokeFailure as exc:
                exc.attempts = tried
                if exc.outcome in ("egress_refused", "auth_failed"):
                    self.breakers.success(target.backend_id)
                    raise
                self.breakers.failure(target.backend_id)
                if tried >= attempts:
                    raise
            else:
                if result.status not in RETRY_STATUSES and result.status < 500:
                    self.breakers.success(target.backend_id)
                    result.attempts = tried
                    return result
                self.breakers.failure(target.backend_id)
                if tried >= attempts:
                    raise InvokeFailure(
                        ErrorCode.BAD_GATEWAY,
                        f"the back-end answered {result.status}",
                        "backend_error",
                        tried,
                        result.status,
                    )
            await asyncio.sleep(self._backoff(tried))

    def _backoff(self, tried: int) -> float:
        base = self.settings.retry_backoff_s * (2.0 ** (tried - 1))
        return base / 2 + random.uniform(0, base / 2)

    async def _once(
        self,
        target: Target,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: Any,
        headers: dict[str, str] | None,
        timeout: float,
    ) -> Result:
        url = target.base_url.rstrip("/") + path
        hdrs = {"Accept": "application/json", **(headers or {})}
        try:
            hdrs.update(await self._auth_headers(target, timeout))
            result = await self._send(target, method, url, params, body, hdrs, timeout)
            if result.status == 401 and target.auth_kind == "oauth2_client_credentials":
                self._tokens.pop((target.backend_id, target.version), None)
                hdrs.update(await self._auth_headers(target, timeout))
                result = await self._send(target, method, url, params, body, hdrs, timeout)
        except httpx.TimeoutException:
            raise InvokeFailure(
                ErrorCode.TIMEOUT, "the back-end did not answer in time", "timeout"
            ) from None
        except ssrf.EgressRefused as exc:
            raise InvokeFailure(
                ErrorCode.BAD_GATEWAY, f"egress refused: {exc}", "egress_refused"
            ) from None
        except httpx.HTTPError as exc:
            refused = "egress refused" in str(exc)
            raise InvokeFailure(
                ErrorCode.BAD_GATEWAY,
                "egress refused" if refused else "the back-end is unreachable",
                "egress_refused" if refused else "unreachable",
            ) from None
        return result

    async def _send(
        self,
        target: Target,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        body: Any,
        hdrs: dict[str, str],
        timeout: float,
    ) -> Result:
        """Send, following redirects only within the same origin, re-checking each hop."""
        client = self._client(target)
        allowed = self.allowed(target.eco)
        origin = httpx.URL(url)
        current = origin
        for _hop in range(self.settings.max_redirects + 1):
            await ssrf.check_url(str(current), allowed)
            request = client.build_request(
                method, current, params=params, json=body, headers=hdrs, timeout=timeout
            )
            resp = await client.send(request, stream=True)
            try:
                if resp.is_redirect and "location" in resp.headers:
                    nxt = current.join(resp.headers["location"])
                    if (nxt.scheme, nxt.host, nxt.port) != (
                        origin.scheme,
                        origin.host,
                        origin.port,
                    ):
                        raise InvokeFailure(
                            ErrorCode.BAD_GATEWAY,
                            "the back-end redirected to another host",
                            "egress_refused",
                        )
                    current, params = nxt, None
                    if resp.status_code == 303:
                        method, body = "GET", None
                    continue
                return Result(resp.status_code, await self._read(resp), 1)
            finally:
                await resp.aclose()
        raise InvokeFailure(ErrorCode.BAD_GATEWAY, "too many redirects", "backend_error")

    async def _read(self, resp: httpx.Response) -> Any:
        chunks, size = [], 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > self.settings.max_response_bytes:
                raise InvokeFailure(
                    ErrorCode.BAD_GATEWAY, "the back-end's response is too large", "backend_error"
                )
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw:
            return None
        try:  # a back-end is untrusted; its reply travels on inside others (RELAY_DEPTH)
            return safejson.loads(raw, safejson.RELAY_DEPTH)
        except ValueError:
            return raw.decode("utf-8", "replace")

    # --- authentication -----------------------------------------------------------------------

    async def _auth_headers(self, target: Target, timeout: float) -> dict[str, str]:
        if target.auth_kind == "api_key":
            return {target.auth["header"]: target.auth["api_key"]}
        if target.auth_kind == "oauth2_client_credentials":
            return {"Authorization": f"Bearer {await self._oauth_token(target, timeout)}"}
        return {}

    async def _oauth_token(self, target: Target, timeout: float) -> str:
        key = (target.backend_id, target.version)
        cached = self._tokens.get(key)
        if cached and cached.expires > time.monotonic():
            return cached.value
        auth = target.auth
        data = {"grant_type": "client_credentials"}
        if auth.get("scope"):
            data["scope"] = auth["scope"]
        await ssrf.check_url(auth["token_url"], self.allowed(target.eco))
        try:
            resp = await self._client(target).post(
                auth["token_url"],
                data=data,
                auth=(auth["client_id"], auth["client_secret"]),
                timeout=timeout,
            )
            payload = safejson.loads(resp.content) if resp.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            payload = {}
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str):
            raise InvokeFailure(
                ErrorCode.BAD_GATEWAY, "the back-end's token endpoint refused", "auth_failed"
            )
        lifetime = float(payload.get("expires_in", 300))
        self._tokens[key] = _Token(token, time.monotonic() + max(lifetime - 30, lifetime / 2))
        return token

    # --- clients ------------------------------------------------------------------------------

    def _client(self, target: Target) -> httpx.AsyncClient:
        tls_id = hashlib.sha256(
            f"{target.version}|{target.server_ca_pem}|{target.auth.get('client_cert_pem')}".encode()
        ).hexdigest()
        key = (target.backend_id, tls_id)
        client = self._clients.get(key)
        if client is None:
            self._retire(target.backend_id)
            tls = target.base_url.startswith("https:") or target.auth_kind == "mtls"
            ctx = self._ssl_context(target) if tls else None  # None: system trust, on demand
            transport = GuardedTransport(ctx, lambda: self.allowed(target.eco))
            client = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
            self._clients[key] = client
        return client

    def _retire(self, backend_id: str) -> None:
        """Close a back-end's clients of older credentials once their calls have ended."""
        grace = self.settings.invoke_timeout_s * self.settings.max_attempts + 5
        loop = asyncio.get_running_loop()
        for key in [k for k in self._clients if k[0] == backend_id]:
            old = self._clients.pop(key)
            loop.call_later(grace, lambda c=old: asyncio.ensure_future(c.aclose()))  # type: ignore[misc]

    @staticmethod
    def _ssl_context(target: Target) -> ssl.SSLContext:
        if target.server_ca_pem:
            ctx = ssl.create_default_context(cadata=target.server_ca_pem)
        else:
            ctx = ssl.create_default_context()
        if target.auth_kind == "mtls":
            with tempfile.TemporaryDirectory(prefix="pm-mtls-") as tmp:
                cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
                for path, pem in (
                    (cert, target.auth["client_cert_pem"]),
                    (key, target.auth["client_key_pem"]),
                ):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "w") as f:
                        f.write(pem)
                ctx.load_cert_chain(cert, key)
        return ctx

    async def post_webhook(self, eco: str, url: str, body: str, headers: dict[str, str]) -> int:
        """POST one signed webhook delivery (redirects are not followed); its status."""
        target = Target(f"webhooks:{eco}", eco, "", "none", {}, None, 0)
        try:
            await ssrf.check_url(url, self.allowed(eco))
            resp = await self._client(target).post(
                url,
                content=body.encode(),
                timeout=self.settings.delivery_timeout_s,
                headers={"Content-Type": "application/json", **headers},
            )
        except ssrf.EgressRefused as exc:
            raise InvokeFailure(
                ErrorCode.BAD_GATEWAY, f"egress refused: {exc}", "egress_refused"
            ) from None
        except httpx.TimeoutException:
            raise InvokeFailure(ErrorCode.TIMEOUT, "timed out", "timeout") from None
        except httpx.HTTPError:
            raise InvokeFailure(ErrorCode.BAD_GATEWAY, "unreachable", "unreachable") from None
        return resp.status_code
