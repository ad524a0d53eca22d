"""The little of HTTP the gateway needs, on plain ASGI (no framework in the request path).

:class:`Incoming` is a request as the edge decoded it (one pass over the headers),
:class:`Reply` a complete response the edge sends with its own headers added.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope

from contracts.errors import ErrorCode
from mesh import context
from mesh.errors import MeshError
from mesh.problems import Problem

Headers = list[tuple[bytes, bytes]]
JSON = b"application/json"
PROBLEM_JSON = b"application/problem+json"


class UnsupportedMediaType(Exception):
    pass


class ClientDisconnected(Exception):
    """The client went away before its body arrived."""


class Incoming:
    """One request: what the endpoints read, decoded once by the edge."""

    __slots__ = ("headers", "info", "method", "params", "path", "receive", "scope")

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        headers: RequestHeaders,
        info: Any,
        params: dict[str, str],
    ) -> None:
        self.scope = scope
        self.receive = receive
        self.headers = headers  # lower-case names; the first of repeated fields
        self.info = info
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.params = params

    @property
    def client_ip(self) -> str:
        client = self.scope.get("client")
        return client[0] if client else "-"

    def query_lists(self) -> dict[str, list[str]]:
        """Query parameters grouped by name, in order (parsed as Starlette does)."""
        raw: bytes = self.scope.get("query_string", b"")
        grouped: dict[str, list[str]] = {}
        if raw:
            for key, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
                grouped.setdefault(key, []).append(value)
        return grouped

    async def body(self, limit: int) -> bytes:
        """The body, refusing more than ``limit`` bytes even without a Content-Length."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise MeshError(
                    ErrorCode.PAYLOAD_TOO_LARGE, f"the request body exceeds {limit} bytes"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        ctype = self.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if raw.strip() and not (ctype == "application/json" or ctype.endswith("+json")):
            raise UnsupportedMediaType()
        return raw


class Reply:
    """A complete response: status, body and headers (content-length is added on send)."""

    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: bytes | None = JSON,
        headers: Headers | None = None,
    ) -> None:
        self.status = status
        self.body = body
        hdrs: Headers = []
        if not (status < 200 or status in (204, 304)):
            hdrs.append((b"content-length", str(len(body)).encode()))
        if content_type is not None:
            hdrs.append((b"content-type", content_type))
        if headers:
            hdrs.extend(headers)
        self.headers = hdrs

    @classmethod
    def problem(cls, problem: Problem) -> Reply:
        """``problem`` as a reply; its document names the request being served."""
        body = problem.json(context.request_id.get())
        headers = encode_headers(problem.headers) if problem.headers else None
        return cls(problem.status, body, PROBLEM_JSON, headers)

    @classmethod
    def of(cls, response: Any) -> Reply:
        """A Starlette response with a body in memory (e.g. an HTML page) as a reply."""
        reply = cls(response.status_code, response.body, None)
        reply.headers = list(response.raw_headers)
        return reply


class StreamReply(Reply):
    """A response whose body is sent as it is produced (Server-Sent Events)."""

    __slots__ = ("chunks",)

    def __init__(self, chunks: AsyncIterator[bytes], content_type: bytes, headers: Headers) -> None:
        super().__init__(200, b"", None, headers)
        self.headers = [(b"content-type", content_type), *headers]  # no content-length
        self.chunks = chunks

    async def send_body(self, send: Any) -> None:
        """Send the chunks as they come; end the response when they end."""
        try:
            async for chunk in self.chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            with contextlib.suppress(Exception):
                await self.chunks.aclose()  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class RequestHeaders(dict[str, str]):
    """Header fields by lower-case name, the first value of a repeated field;
    :meth:`getlist` gives every value (as Starlette's ``Headers`` does)."""

    __slots__ = ("raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        super().__init__()
        self.raw = raw
        for name, value in raw:
            key = name.decode("latin-1").lower()
            if key not in self:
                self[key] = value.decode("latin-1")

    def getlist(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.raw if k.lower() == key]


def decode_headers(raw: list[tuple[bytes, bytes]]) -> RequestHeaders:
    """ASGI header fields, decoded once per request."""
    return RequestHeaders(raw)


def encode_headers(headers: Mapping[str, str]) -> Headers:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
