"""Token verification at the edge: every way a token can be wrong is a 401, checked for real."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from contracts.claims import Role
from contracts.errors import ErrorCode
from gateway.app import create_app
from mesh.errors import MeshError
from mesh.tokens import RemoteJwks, TokenVerifier, issuer_for
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.gateway.conftest import bearer, gateway_settings
from tests.support import tokens as minting
from tests.support.infra import serve_app
from tests.support.services import run_service
from tests.support.tokens import TEST_IDENTITY_URL, TestKeys, TokenFactory

ECHO = "/v1/ecosystems/acme/echo"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(tokens: TokenFactory) -> str:
    """The classic algorithm confusion: HS256 'signed' with the issuer's RSA public key."""
    header = b64(json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": tokens.keys.kid}).encode())
    payload = b64(json.dumps(tokens.claims()).encode())
    mac = hmac.new(tokens.keys.public_pem, f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64(mac.digest())}"


class CountingKeys:
    """A key source that counts lookups, to see when the verifier skips verification."""

    def __init__(self, inner: minting.TestKeys) -> None:
        self.inner = inner
        self.lookups = 0

    async def key(self, issuer: str, kid: str) -> jwt.PyJWK | None:
        self.lookups += 1
        return await self.inner.key(issuer, kid)


@pytest.fixture(scope="module")
def bad(tokens: TokenFactory, test_keys: TestKeys) -> dict[str, str]:
    """One token for every way a token can be wrong."""
    return bad_tokens(tokens, test_keys)


def bad_tokens(tokens: TokenFactory, test_keys: minting.TestKeys) -> dict[str, str]:
    now = int(time.time())
    other = TokenFactory(
        minting.TestKeys(kid=test_keys.kid)
    )  # same kid, another key: bad signature
    return {
        "expired": tokens.mint(expires_in=-120),
        "not_yet_valid": tokens.mint(nbf=now + 600),
        "wrong_audience": tokens.mint(aud="someone-else"),
        "unknown_kid": tokens.mint(headers={"kid": "no-such-key"}),
        "bad_signature": other.mint(),
        "alg_none": jwt.encode(tokens.claims(), "", algorithm="none", headers={"typ": "at+jwt"}),
        "alg_confusion_hs256": hs256_with_public_key(tokens),
        "not_an_access_token": tokens.mint(headers={"typ": "JWT"}),
        "untrusted_issuer": tokens.mint(iss="https://evil.example/eco/acme"),
        "issuer_of_another_eco": tokens.mint(
            eco="acme", iss=issuer_for(TEST_IDENTITY_URL, "globex")
        ),
        "missing_jti": jwt.encode(
            {k: v for k, v in tokens.claims().items() if k != "jti"},
            test_keys.private,
            "RS256",
            headers={"typ": "at+jwt", "kid": test_keys.kid},
        ),
        "garbage": "not.a.jwt",
    }


BAD = [
    "expired",
    "not_yet_valid",
    "wrong_audience",
    "unknown_kid",
    "bad_signature",
    "alg_none",
    "alg_confusion_hs256",
    "not_an_access_token",
    "untrusted_issuer",
    "issuer_of_another_eco",
    "missing_jti",
    "garbage",
]


class TestVerifier:
    @pytest.mark.parametrize("kind", BAD)
    async def test_bad_tokens_are_refused(
        self, bad: dict[str, str], test_keys: TestKeys, kind: str
    ) -> None:
        token = bad[kind]
        with pytest.raises(MeshError) as err:
            await test_keys.verifier().verify(token)
        assert err.value.code is ErrorCode.UNAUTHENTICATED

    async def test_a_good_token_passes(self, tokens: TokenFactory, test_keys: TestKeys) -> None:
        claims = await test_keys.verifier().verify(tokens.mint(sub="ann", roles=[Role.BROKER]))
        assert claims.sub == "ann" and claims.has_role(Role.BROKER)

    async def test_cache_skips_verification_of_a_repeated_token(
        self, tokens: TokenFactory, test_keys: TestKeys
    ) -> None:
        keys = CountingKeys(test_keys)
        verifier = TokenVerifier(keys, TEST_IDENTITY_URL, "partnermesh", cache_size=100)
        token = tokens.mint()
        for _ in range(5):
            await verifier.verify(token)
        assert keys.lookups == 1

    async def test_without_cache_every_call_verifies(
        self, tokens: TokenFactory, test_keys: TestKeys
    ) -> None:
        keys = CountingKeys(test_keys)
        verifier = TokenVerifier(keys, TEST_IDENTITY_URL, "partnermesh", cache_size=0)
        token = tokens.mint()
        for _ in range(3):
            await verifier.verify(token)
        assert keys.lookups == 3

    async def test_cache_never_accepts_a_token_it_refused(
        self, bad: dict[str, str], test_keys: TestKeys
    ) -> None:
        verifier = TokenVerifier(test_keys, TEST_IDENTITY_URL, "partnermesh", cache_size=100)
        for _ in range(2):
            with pytest.raises(MeshError):
                await verifier.verify(bad["bad_signature"])


class TestAtTheEdge:
    @pytest.mark.parametrize("kind", BAD)
    async def test_bad_tokens_get_401_problems(
        self, gateway: httpx.AsyncClient, bad: dict[str, str], kind: str
    ) -> None:
        r = await gateway.get(ECHO, headers=bearer(bad[kind]))
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "unauthenticated"

    @pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "token abc"])
    async def test_malformed_authorization_is_401(
        self, gateway: httpx.AsyncClient, header: str
    ) -> None:
        r = await gateway.get(ECHO, headers={"Authorization": header})
        assert r.status_code == 401

    async def test_token_of_one_ecosystem_on_another_ecosystems_path_is_403(
        self, gateway: httpx.AsyncClient, tokens: TokenFactory
    ) -> None:
        r = await gateway.get("/v1/ecosystems/globex/echo", headers=bearer(tokens.mint(eco="acme")))
        assert r.status_code == 403
        assert "another ecosystem" in r.json()["detail"]


class JwksServer:
    """A real HTTP issuer: OIDC discovery and a JWKS whose keys a test can change."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.discoveries = 0
        self.url = ""
        app = FastAPI()

        @app.get("/eco/{eco}/.well-known/openid-configuration")
        async def discovery(eco: str) -> dict[str, Any]:
            self.discoveries += 1
            return {"issuer": f"{self.url}/eco/{eco}", "jwks_uri": f"{self.url}/eco/{eco}/jwks"}

        @app.get("/eco/{eco}/jwks")
        async def jwks(eco: str) -> dict[str, Any]:
            self.fetches += 1
            return {"keys": self.keys}

        self.app = app


@pytest.fixture
async def issuer() -> AsyncIterator[JwksServer]:
    """A running :class:`JwksServer` on loopback."""
    server = JwksServer()
    async with serve_app(server.app) as url:
        server.url = url
        yield server


class IssuerTokens(TokenFactory):
    """Tokens of one key, with the issuer URL they are minted for."""

    def __init__(self, keys: minting.TestKeys, iss: str) -> None:
        super().__init__(keys)
        self.iss = iss


def factory_for(issuer: JwksServer, kid: str) -> IssuerTokens:
    keys = minting.TestKeys(kid=kid)
    return IssuerTokens(keys, issuer_for(issuer.url, "acme"))


class TestRemoteJwks:
    async def test_unknown_kid_refreshes_once_per_cooldown(self, issuer: JwksServer) -> None:
        k1, k2 = factory_for(issuer, "k1"), factory_for(issuer, "k2")
        issuer.keys = [k1.keys.public_jwk]
        async with httpx.AsyncClient() as http:
            verifier = TokenVerifier(
                RemoteJwks(http, refresh_cooldown=0.5), issuer.url, "partnermesh"
            )
            await verifier.verify(k1.mint(iss=k1.iss))
            assert issuer.fetches == 1
            issuer.keys = [k1.keys.public_jwk, k2.keys.public_jwk]  # the issuer rotates in k2
            new_key_token = k2.mint(iss=k2.iss)
            for _ in range(3):  # inside the cooldown: no refetch, the new kid stays unknown
                with pytest.raises(MeshError):
                    await verifier.verify(new_key_token)
            assert issuer.fetches == 1
            await asyncio.sleep(0.6)
            claims = await verifier.verify(new_key_token)
            assert claims.iss == k2.iss and issuer.fetches == 2
            stranger = factory_for(issuer, "k3")
            with pytest.raises(MeshError):  # a kid the issuer never published
                await verifier.verify(stranger.mint(iss=stranger.iss))

    async def test_made_up_issuers_cost_a_bounded_number_of_fetches(
        self, issuer: JwksServer
    ) -> None:
        k1, stranger = factory_for(issuer, "k1"), factory_for(issuer, "never-published")
        issuer.keys = [k1.keys.public_jwk]
        async with httpx.AsyncClient() as http:
            # A refill rate so low that the test's own duration cannot matter: the burst only.
            source = RemoteJwks(http, fetches_per_second=0.01, max_issuers=2)
            verifier = TokenVerifier(source, issuer.url, "partnermesh")
            for i in range(8):
                eco = f"made-up-{i}"
                token = stranger.mint(eco=eco, iss=issuer_for(issuer.url, eco))
                with pytest.raises(MeshError):
                    await verifier.verify(token)
            assert issuer.discoveries == 1  # the burst; the rest are refused without a fetch
            assert len(source._fetched) <= 2  # and only so many issuers are remembered

    async def test_gateway_builds_its_own_verifier_from_the_issuers_jwks(
        self, issuer: JwksServer, nats_url: str, tmp_path: Path
    ) -> None:
        k1 = factory_for(issuer, "k1")
        issuer.keys = [k1.keys.public_jwk]
        app = create_app(gateway_settings(nats_url, identity_url=issuer.url))
        async with (
            httpx.AsyncClient() as http,
            run_service(
                "profile",
                ProfileSettings,
                models.metadata,
                handlers.register,
                nats_url=nats_url,
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'profile.db'}",
                verifier=TokenVerifier(RemoteJwks(http), issuer.url, "partnermesh"),
            ),
            serve_app(app) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            ok = await client.get(ECHO, headers=bearer(k1.mint(iss=k1.iss)))
            forged = await client.get(
                ECHO, headers=bearer(factory_for(issuer, "k1").mint(iss=k1.iss))
            )
        assert ok.status_code == 200 and ok.json()["eco"] == "acme"
        assert forged.status_code == 401
