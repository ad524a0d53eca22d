"""identity_internal_url: a process fetches identity's documents and keys at an internal
address while tokens (and the documents) keep naming the public issuer."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request

from mesh.identityroute import IdentityRoute
from mesh.settings import MeshSettings
from mesh.tokens import RemoteJwks
from tests.support.infra import serve_app

PUBLIC = "https://id.example.invalid"
ISSUER = f"{PUBLIC}/eco/acme"


def identity_stand_in(jwk: dict[str, Any]) -> tuple[FastAPI, list[str]]:
    """Serves discovery and keys under /eco/acme, naming only the public address."""
    app, seen = FastAPI(), []

    @app.get("/eco/acme/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, Any]:
        seen.append(f"{request.headers['host']}{request.url.path}")
        return {"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"}

    @app.get("/eco/acme/jwks")
    async def keys(request: Request) -> dict[str, Any]:
        seen.append(f"{request.headers['host']}{request.url.path}")
        return {"keys": [jwk]}

    return app, seen


def a_jwk() -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}


class TestIdentityRoute:
    def test_only_urls_under_the_public_address_are_routed(self) -> None:
        route = IdentityRoute(PUBLIC + "/", "http://identity:8081/")
        assert route.fetch_url(f"{ISSUER}/jwks") == "http://identity:8081/eco/acme/jwks"
        assert route.fetch_url(PUBLIC) == "http://identity:8081"
        for elsewhere in (
            "https://id.example.invalid.evil.test/eco/acme",  # a longer host is not it
            "https://partner.example.invalid/eco/acme/jwks",
            "http://id.example.invalid/eco/acme",  # another scheme
        ):
            assert route.fetch_url(elsewhere) == elsewhere
        assert IdentityRoute(PUBLIC).fetch_url(ISSUER) == ISSUER  # none set: unchanged

    def test_settings_route_only_when_an_internal_url_is_set(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PM_IDENTITY_URL", PUBLIC)
        assert MeshSettings().identity_route().fetch_url(ISSUER) == ISSUER
        monkeypatch.setenv("PM_IDENTITY_INTERNAL_URL", "http://identity:8081")
        assert MeshSettings().identity_route().fetch_url(ISSUER) == (
            "http://identity:8081/eco/acme"
        )

    async def test_keys_of_the_public_issuer_are_fetched_internally(self) -> None:
        jwk = a_jwk()
        app, seen = identity_stand_in(jwk)
        async with serve_app(app) as internal:
            transport = IdentityRoute(PUBLIC, internal).transport()
            async with httpx.AsyncClient(transport=transport, timeout=5) as http:
                key = await RemoteJwks(http).key(ISSUER, "k1")
            assert key is not None and key.key_id == "k1"
            host = internal.removeprefix("http://")
            assert seen == [
                f"{host}/eco/acme/.well-known/openid-configuration",
                f"{host}/eco/acme/jwks",
            ]

    async def test_without_the_route_the_public_address_is_not_reached(self) -> None:
        app, seen = identity_stand_in(a_jwk())
        async with serve_app(app):
            transport = IdentityRoute(PUBLIC).transport()
            async with httpx.AsyncClient(transport=transport, timeout=2) as http:
                assert await RemoteJwks(http).key(ISSUER, "k1") is None
        assert seen == []
