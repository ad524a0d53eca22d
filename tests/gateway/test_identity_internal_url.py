"""The gateway fetches identity's keys at ``identity_internal_url`` while tokens name the
public issuer: inside a cluster the public address is the ingress (or unreachable)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request

from gateway.app import create_app
from mesh.runtime import ServiceRuntime
from tests.gateway.conftest import bearer, gateway_settings
from tests.support.infra import serve_app
from tests.support.tokens import TEST_IDENTITY_URL, TestKeys, TokenFactory

ECHO = "/v1/ecosystems/acme/echo"


def identity_stand_in(jwk: dict[str, Any]) -> tuple[FastAPI, list[str]]:
    """Discovery and keys for /eco/acme, naming only the public (unreachable) address."""
    app, seen = FastAPI(), []
    issuer = f"{TEST_IDENTITY_URL}/eco/acme"

    @app.get("/eco/acme/.well-known/openid-configuration")
    async def discovery(request: Request) -> dict[str, Any]:
        seen.append(request.url.path)
        return {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}

    @app.get("/eco/acme/jwks")
    async def keys(request: Request) -> dict[str, Any]:
        seen.append(request.url.path)
        return {"keys": [jwk]}

    return app, seen


async def call_echo(nats_url: str, token: str, **overrides: str) -> httpx.Response:
    app = create_app(gateway_settings(nats_url, **overrides))  # the default (remote) verifier
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        return await client.get(ECHO, params={"message": "hi"}, headers=bearer(token))


class TestInternalIdentityUrl:
    async def test_keys_come_from_the_internal_address(
        self, nats_url: str, profile: ServiceRuntime, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        stand_in, seen = identity_stand_in(test_keys.public_jwk)
        async with serve_app(stand_in) as internal:
            r = await call_echo(
                nats_url, tokens.mint(eco="acme", sub="noah"), identity_internal_url=internal
            )
        assert r.status_code == 200, r.text
        assert r.json()["sub"] == "noah"
        assert "/eco/acme/jwks" in seen

    async def test_without_it_the_public_address_is_tried_and_the_token_refused(
        self, nats_url: str, profile: ServiceRuntime, test_keys: TestKeys, tokens: TokenFactory
    ) -> None:
        stand_in, seen = identity_stand_in(test_keys.public_jwk)
        async with serve_app(stand_in):
            r = await call_echo(nats_url, tokens.mint(eco="acme", sub="noah"))
        assert r.status_code == 401
        assert seen == []
