"""RFC 8693 token exchange under ecosystem rules, private_key_jwt, client admin."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.tokens import RemoteJwks, TokenVerifier
from tests.identity.conftest import IdP

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"


async def _exchange(
    idp: IdP, client: str, subject_token: str, secret: str | None = None, **extra: Any
) -> httpx.Response:
    return await idp.http.post(
        f"{idp.issuer}/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": AT,
            **extra,
        },
        auth=(client, secret or idp.secret(client)),
    )


@pytest.fixture(scope="module")
async def olivia(idp: IdP) -> str:
    """An operator's access token (scope admin) for the admin API."""
    return str((await idp.person_tokens("olivia"))["access_token"])


async def _admin(idp: IdP, token: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return await idp.http.request(
        method, f"{idp.issuer}/admin{path}", json=body, headers={"Authorization": f"Bearer {token}"}
    )


class TestTokenExchange:
    async def test_portal_acts_for_a_person_with_act_claim(self, idp: IdP) -> None:
        person = await idp.person_tokens("noah", "openid forum:read forum:write profile:read")
        resp = await _exchange(idp, "portal", person["access_token"], scope="forum:read")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["issued_token_type"] == AT and "refresh_token" not in body
        async with httpx.AsyncClient() as http:
            verifier = TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=0)
            claims = await verifier.verify(body["access_token"])
        original = jwt.decode(person["access_token"], options={"verify_signature": False})
        assert claims.sub == original["sub"] and claims.partner == "northwind"
        assert claims.act is not None and claims.act.sub == "portal"
        assert claims.client_id == "portal" and claims.scope == "forum:read"
        assert claims.exp <= original["exp"]

    async def test_exchange_never_gains_scope(self, idp: IdP) -> None:
        person = await idp.person_tokens("noah", "openid forum:read")
        resp = await _exchange(
            idp, "portal", person["access_token"], scope="forum:read forum:write"
        )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"

    async def test_partner_backend_may_not_act_for_another_partners_people(self, idp: IdP) -> None:
        person = await idp.person_tokens("chloe", "openid forum:read")  # contoso
        mine = await _exchange(idp, "contoso-backend", person["access_token"])
        assert mine.status_code == 200
        theirs = await _exchange(idp, "northwind-backend", person["access_token"])
        assert theirs.status_code == 400 and theirs.json()["error"] == "invalid_request"

    async def test_nested_act_records_the_chain(self, idp: IdP) -> None:
        person = await idp.person_tokens("chloe", "openid forum:read")
        first = (await _exchange(idp, "portal", person["access_token"])).json()["access_token"]
        second = await _exchange(idp, "contoso-backend", first)
        claims = jwt.decode(second.json()["access_token"], options={"verify_signature": False})
        assert claims["act"]["sub"] == "contoso-backend"
        assert claims["act"]["act"]["sub"] == "portal"

    async def test_wrong_audience_is_invalid_target(self, idp: IdP) -> None:
        person = await idp.person_tokens("noah", "openid forum:read")
        resp = await _exchange(idp, "portal", person["access_token"], audience="elsewhere")
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_target"

    async def test_invalid_subject_token_is_invalid_grant(self, idp: IdP) -> None:
        resp = await _exchange(idp, "portal", "eyJhbGciOiJub25lIn0.e30.")
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"

    async def test_public_client_cannot_exchange(self, idp: IdP) -> None:
        person = await idp.person_tokens("noah", "openid forum:read")
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": EXCHANGE,
                "subject_token": person["access_token"],
                "subject_token_type": AT,
                "client_id": "mesh-cli",
            },
        )
        assert resp.json()["error"] == "invalid_client"

    async def test_client_without_rule_or_grant_is_refused(self, idp: IdP, olivia: str) -> None:
        for cid, grants in (
            ("no-rule", ["client_credentials", EXCHANGE]),
            ("no-grant", ["client_credentials"]),
        ):
            created = await _admin(
                idp,
                olivia,
                "POST",
                "/clients",
                {
                    "client_id": cid,
                    "name": cid,
                    "partner": "acme-hq",
                    "grant_types": grants,
                    "scopes": ["forum:read"],
                },
            )
            assert created.status_code == 201, created.text
            idp.creds["clients"][cid] = {"client_secret": created.json()["client_secret"]}
        person = await idp.person_tokens("noah", "openid forum:read")
        no_rule = await _exchange(idp, "no-rule", person["access_token"])
        assert no_rule.status_code == 400 and no_rule.json()["error"] == "invalid_request"
        no_grant = await _exchange(idp, "no-grant", person["access_token"])
        assert no_grant.status_code == 400 and no_grant.json()["error"] == "unauthorized_client"


@pytest.fixture(scope="module")
async def signer(idp: IdP, olivia: str) -> bytes:
    """A client registered with its public key; the private key stays with the test."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    resp = await _admin(
        idp,
        olivia,
        "POST",
        "/clients",
        {
            "client_id": "jwt-backend",
            "name": "JWT back-end",
            "partner": "northwind",
            "auth_method": "private_key_jwt",
            "jwks": {"keys": [jwk]},
            "grant_types": ["client_credentials"],
            "scopes": ["directory:read"],
            "roles": ["member"],
        },
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["client_secret"] is None
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class TestPrivateKeyJwt:
    async def test_authlib_client_authenticates_with_private_key_jwt(
        self, idp: IdP, signer: bytes
    ) -> None:
        token_url = f"{idp.issuer}/token"
        async with AsyncOAuth2Client(
            "jwt-backend",
            signer,
            token_endpoint_auth_method=PrivateKeyJWT(token_url, headers={"kid": "k1"}),
        ) as client:
            token = await client.fetch_token(token_url, grant_type="client_credentials")
        claims = jwt.decode(token["access_token"], options={"verify_signature": False})
        assert claims["client_id"] == "jwt-backend" and claims["partner"] == "northwind"

    def _assertion(self, idp: IdP, key: bytes, jti: str, aud: str | None = None) -> str:
        now = int(time.time())
        return jwt.encode(
            {
                "iss": "jwt-backend",
                "sub": "jwt-backend",
                "aud": aud or idp.issuer,
                "iat": now,
                "exp": now + 60,
                "jti": jti,
            },
            key,
            "RS256",
            headers={"kid": "k1"},
        )

    async def _token(self, idp: IdP, assertion: str) -> httpx.Response:
        return await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion": assertion,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            },
        )

    async def test_replayed_assertion_is_invalid_client(self, idp: IdP, signer: bytes) -> None:
        assertion = self._assertion(idp, signer, uuid.uuid4().hex)
        assert (await self._token(idp, assertion)).status_code == 200
        replay = await self._token(idp, assertion)
        assert replay.status_code in (400, 401) and replay.json()["error"] == "invalid_client"

    async def test_wrong_audience_or_key_is_invalid_client(self, idp: IdP, signer: bytes) -> None:
        wrong_aud = self._assertion(idp, signer, uuid.uuid4().hex, aud="http://elsewhere/token")
        assert (await self._token(idp, wrong_aud)).json()["error"] == "invalid_client"
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        forged = self._assertion(idp, other, uuid.uuid4().hex)
        assert (await self._token(idp, forged)).json()["error"] == "invalid_client"
