"""A real Web Push receiver for the tests: an HTTP server standing in for a browser's push
service (RFC 8030), holding the browser's side of each subscription (a P-256 key pair and
an auth secret). Every message it receives is checked and decrypted as a browser would:

- the VAPID ``Authorization: vapid t=<JWT>, k=<key>`` (RFC 8292): the JWT is ES256,
  signed by ``k``, for this push service's origin, expiring within 24 hours, with a
  ``sub`` contact;
- ``Content-Encoding: aes128gcm`` and a ``TTL``;
- the body decrypted per RFC 8291 with ``http_ece`` and the subscription's private key.

A subscription can be told to answer 410 Gone (an expired subscription).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support import infra


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One subscription's browser side: its keys, and what reached it."""

    name: str
    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    gone: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def subscription(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives the page."""
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)},
        }

    async def next(self, timeout: float = 15.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while not self.received:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received.pop(0)


class PushService:
    """The receiving end of every test subscription; ``problems`` lists what failed a check."""

    def __init__(self) -> None:
        self.url = ""
        self.browsers: dict[str, Browser] = {}
        self.problems: list[str] = []
        self.vapid_keys: set[str] = set()

    def browser(self, name: str) -> Browser:
        b = Browser(name, f"{self.url}/push/{name}")
        self.browsers[name] = b
        return b

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/push/{name}", self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        b = self.browsers.get(request.path_params["name"])
        if b is None:
            return Response(status_code=404)
        if b.gone:
            return Response(status_code=410)
        body = await request.body()
        try:
            vapid = self._check_vapid(request.headers.get("authorization", ""))
            if request.headers.get("content-encoding") != "aes128gcm":
                raise ValueError(f"content-encoding {request.headers.get('content-encoding')}")
            if not request.headers.get("ttl", "").isdigit():
                raise ValueError("no TTL")
            plain = http_ece.decrypt(
                body, private_key=b.key, auth_secret=b.auth, version="aes128gcm"
            )
        except (ValueError, jwt.PyJWTError) as exc:
            self.problems.append(f"{b.name}: {exc}")
            return Response(status_code=400)
        b.received.append({"message": json.loads(plain), "vapid": vapid})
        b.arrived.set()
        return Response(
            status_code=201, headers={"Location": f"{self.url}/message/{len(b.received)}"}
        )

    def _check_vapid(self, header: str) -> dict[str, Any]:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"authorization scheme {scheme!r}, not vapid")
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        raw = unb64url(parts["k"])
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.url))
        claims: dict[str, Any] = jwt.decode(
            parts["t"], public, algorithms=["ES256"], audience=origin
        )
        if not 0 < claims["exp"] - time.time() <= 24 * 3600:
            raise ValueError("the VAPID JWT must expire within 24 hours")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            raise ValueError("the VAPID JWT names no contact (sub)")
        self.vapid_keys.add(parts["k"])
        return claims


@asynccontextmanager
async def push_service() -> AsyncIterator[PushService]:
    service = PushService()
    async with infra.serve_app(service.app()) as url:
        service.url = url
        yield service
