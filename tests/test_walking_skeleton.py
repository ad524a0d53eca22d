"""The real path end to end: identity issues a token, the gateway verifies it against
identity's JWKS, forwards over NATS, a service verifies it again and answers."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from identity.domain.crypto import Sealer
from identity.settings import IdentitySettings
from identity.store import repository as identity_repo
from mesh.tokens import RemoteJwks, TokenVerifier
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support import infra
from tests.support.dpop import DPoPKey
from tests.support.identity import serve_idp, start_idp
from tests.support.services import run_service


@pytest.fixture(scope="module")
async def mesh(
    nats_url: str, tmp_path_factory: pytest.TempPathFactory, demo_hashes: dict[str, str]
) -> AsyncIterator[dict[str, Any]]:
    """identity + gateway (uvicorn on loopback) + the profile service, on one real NATS."""
    work = tmp_path_factory.mktemp("skeleton")
    settings, creds, idp_app = await start_idp(
        nats_url, f"sqlite+aiosqlite:///{work / 'identity.db'}", work, demo_hashes
    )
    async with serve_idp(idp_app, settings.port) as idp_url, httpx.AsyncClient() as http:
        verifier = TokenVerifier(RemoteJwks(http), idp_url, "partnermesh")
        gw_settings = GatewaySettings(
            nats_url=nats_url, identity_url=idp_url, environment="test", port=infra.free_port()
        )
        async with (
            run_service(
                "profile",
                ProfileSettings,
                models.metadata,
                handlers.register,
                nats_url=nats_url,
                database_url=f"sqlite+aiosqlite:///{work / 'profile.db'}",
                verifier=verifier,
            ),
            infra.serve_app(create_gateway(gw_settings), gw_settings.port) as gw_url,
            httpx.AsyncClient(base_url=gw_url, timeout=10) as api,
        ):
            yield {"idp": idp_url, "api": api, "creds": creds, "http": http, "settings": settings}


async def client_token(
    mesh: dict[str, Any], client_id: str = "northwind-backend", scope: str = "mesh:ping"
) -> str:
    secret = mesh["creds"]["clients"][client_id]["client_secret"]
    resp = await mesh["http"].post(
        f"{mesh['idp']}/eco/acme/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, secret),
    )
    assert resp.status_code == 200, resp.text
    token: str = resp.json()["access_token"]
    return token


def issuer_signing_key(settings: IdentitySettings) -> tuple[str, rsa.RSAPrivateKey]:
    """The issuer's own active signing key (as if the token had really come from it)."""
    engine = create_engine(settings.database_url.replace("sqlite+aiosqlite", "sqlite"))
    with Session(engine) as s:
        row = next(
            k for k in identity_repo.keys_of(s, "acme") if k.state == "active" and k.alg == "RS256"
        )
        pem = Sealer(settings.key_encryption_secret).open(row.private_enc, row.kid.encode())
    key = serialization.load_pem_private_key(pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)  # an RS256 row
    return row.kid, key


class TestWalkingSkeleton:
    async def test_client_credentials_token_through_gateway_nats_and_service(
        self, mesh: dict[str, Any]
    ) -> None:
        token = await client_token(mesh)
        resp = await mesh["api"].get(
            "/v1/ecosystems/acme/echo",
            params={"message": "hi"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["message"] == "hi"
        assert (body["eco"], body["partner"], body["client_id"]) == (
            "acme",
            "northwind",
            "northwind-backend",
        )
        assert body["service"] == "profile"

    async def test_no_token(self, mesh: dict[str, Any]) -> None:
        resp = await mesh["api"].get("/v1/ecosystems/acme/echo")
        assert resp.status_code == 401
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["code"] == "unauthenticated"

    async def test_bad_signature(self, mesh: dict[str, Any]) -> None:
        head, body, sig = (await client_token(mesh)).split(".")
        forged = f"{head}.{body}.{'A' * len(sig)}"
        resp = await mesh["api"].get(
            "/v1/ecosystems/acme/echo", headers={"Authorization": f"Bearer {forged}"}
        )
        assert resp.status_code == 401
        assert "traceback" not in resp.text.lower()

    async def test_expired_token_signed_by_the_real_issuer(self, mesh: dict[str, Any]) -> None:
        kid, key = issuer_signing_key(mesh["settings"])
        real = jwt.decode(await client_token(mesh), options={"verify_signature": False})
        now = int(time.time())
        expired = jwt.encode(
            {**real, "iat": now - 3600, "exp": now - 600, "jti": uuid.uuid4().hex},
            key,
            "RS256",
            headers={"kid": kid, "typ": "at+jwt"},
        )
        resp = await mesh["api"].get(
            "/v1/ecosystems/acme/echo", headers={"Authorization": f"Bearer {expired}"}
        )
        assert resp.status_code == 401
        assert "expired" in resp.json()["detail"]
        # The same claims, unexpired and signed the same way, pass: the key was right.
        fresh = jwt.encode(
            {**real, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex},
            key,
            "RS256",
            headers={"kid": kid, "typ": "at+jwt"},
        )
        ok = await mesh["api"].get(
            "/v1/ecosystems/acme/echo", headers={"Authorization": f"Bearer {fresh}"}
        )
        assert ok.status_code == 200, ok.text

    async def test_missing_scope_is_forbidden(self, mesh: dict[str, Any]) -> None:
        token = await client_token(mesh, scope="profile:read")
        resp = await mesh["api"].get(
            "/v1/ecosystems/acme/echo", headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 403

    async def test_other_ecosystem_path_is_forbidden(self, mesh: dict[str, Any]) -> None:
        token = await client_token(mesh)
        resp = await mesh["api"].get(
            "/v1/ecosystems/globex/echo", headers={"Authorization": f"Bearer {token}"}
        )
        assert resp.status_code == 403


class TestDPoPEndToEnd:
    async def test_bound_token_through_gateway_nats_and_service(self, mesh: dict[str, Any]) -> None:
        key = DPoPKey()
        client = "contoso-backend"
        token_url = f"{mesh['idp']}/eco/acme/token"
        resp = await mesh["http"].post(
            token_url,
            data={"grant_type": "client_credentials", "scope": "mesh:ping"},
            auth=(client, mesh["creds"]["clients"][client]["client_secret"]),
            headers={"DPoP": key.proof("POST", token_url)},
        )
        assert resp.status_code == 200 and resp.json()["token_type"] == "DPoP", resp.text
        token = resp.json()["access_token"]
        echo = str(mesh["api"].base_url).rstrip("/") + "/v1/ecosystems/acme/echo"
        ok = await mesh["api"].get(echo, headers=key.headers("GET", echo, token))
        assert ok.status_code == 200, ok.text
        assert ok.json()["client_id"] == client
        as_bearer = await mesh["api"].get(echo, headers={"Authorization": f"Bearer {token}"})
        assert as_bearer.status_code == 401
        assert as_bearer.headers["www-authenticate"].startswith("DPoP ")
        stolen = await mesh["api"].get(echo, headers=DPoPKey().headers("GET", echo, token))
        assert stolen.status_code == 401
