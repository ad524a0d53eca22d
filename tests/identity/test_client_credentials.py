"""Client credentials: tokens that the mesh's own verifier accepts, and every refusal,
with the token endpoint's lean path on and off (``PM_IDENTITY_LEAN``): the same answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from contracts.claims import Claims
from mesh.errors import MeshError
from mesh.tokens import RemoteJwks, TokenVerifier
from tests.identity.conftest import IdP


@pytest.fixture(scope="module", params=["on", "off"])
def idp_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """This module's provider runs with the lean path on, then off."""
    return {"lean": request.param}


@pytest.fixture
async def verifier(idp: IdP) -> AsyncIterator[TokenVerifier]:
    """The real token verifier of the gateway and services, fetching this provider's JWKS."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield TokenVerifier(RemoteJwks(http), idp.url, "partnermesh", cache_size=0)


@pytest.fixture(scope="module")
async def post_client(idp: IdP) -> tuple[str, str]:
    """A back-end registered for client_secret_post: (client_id, secret)."""
    client_id = f"post-backend-{idp.settings.lean}"  # one per provider of this module
    olivia = (await idp.person_tokens("olivia"))["access_token"]
    created = await idp.http.post(
        f"{idp.issuer}/admin/clients",
        headers={"Authorization": f"Bearer {olivia}"},
        json={
            "client_id": client_id,
            "name": "Post back-end",
            "partner": "contoso",
            "auth_method": "client_secret_post",
            "grant_types": ["client_credentials"],
            "scopes": ["directory:read"],
            "roles": ["member"],
        },
    )
    assert created.status_code == 201, created.text
    return client_id, created.json()["client_secret"]


class TestClientCredentials:
    async def test_token_verifies_with_the_mesh_verifier(
        self, idp: IdP, verifier: TokenVerifier
    ) -> None:
        resp = await idp.cc("northwind-backend", "profile:read profile:write")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] > 0
        assert "refresh_token" not in body
        claims = await verifier.verify(body["access_token"])
        assert claims.iss == idp.issuer and claims.eco == "acme"
        assert claims.partner == "northwind" and claims.client_id == "northwind-backend"
        assert claims.sub == "northwind-backend"
        assert claims.scopes == {"profile:read", "profile:write"}
        header = jwt.get_unverified_header(body["access_token"])
        assert header["typ"] == "at+jwt" and header["kid"]
        payload = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert set(payload) <= set(Claims.model_fields)
        assert {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "eco"} <= set(
            payload
        )

    async def test_a_basic_client_cannot_use_client_secret_post(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "contoso-backend",
                "client_secret": idp.secret("contoso-backend"),
                "scope": "directory:read",
            },
        )
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
        assert resp.json()["error_description"] == (
            "client contoso-backend is registered for client_secret_basic; "
            "this request used client_secret_post"
        )

    async def test_a_post_client_uses_post_only_on_both_paths(
        self, idp: IdP, post_client: tuple[str, str]
    ) -> None:
        client_id, secret = post_client
        form = {"grant_type": "client_credentials", "scope": "directory:read"}
        ok = await idp.http.post(
            f"{idp.issuer}/token", data={**form, "client_id": client_id, "client_secret": secret}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["scope"] == "directory:read"
        # HTTP Basic, the lean path's own request: refused there and on the full path
        for _ in range(2):  # the second one finds the client's row cached
            basic = await idp.http.post(f"{idp.issuer}/token", data=form, auth=(client_id, secret))
            assert basic.status_code == 401, basic.text
            assert basic.json()["error"] == "invalid_client"
            assert "registered for client_secret_post" in basic.json()["error_description"]

    async def test_scope_is_cut_to_what_roles_allow(self, idp: IdP) -> None:
        resp = await idp.cc(
            "fabrikam-backend", "admin broker:curate connector:admin directory:read"
        )
        assert resp.status_code == 200
        # a partner back-end is no operator or broker: admin and broker:curate are dropped
        assert resp.json()["scope"] == "connector:admin directory:read"

    async def test_unknown_scope_is_invalid_scope(self, idp: IdP) -> None:
        resp = await idp.cc("northwind-backend", "profile:read launch:missiles")
        assert resp.status_code == 400
        assert resp.json()["error"] == "invalid_scope"

    async def test_wrong_secret_is_invalid_client(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=("northwind-backend", "not-the-secret"),
        )
        assert resp.status_code == 401
        assert resp.json()["error"] == "invalid_client"

    async def test_unknown_client_is_invalid_client(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token", data={"grant_type": "client_credentials"}, auth=("ghost", "x")
        )
        assert resp.status_code == 401
        assert resp.json()["error"] == "invalid_client"

    async def test_public_client_may_not_use_client_credentials(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials", "client_id": "mesh-cli"},
        )
        assert resp.status_code in (400, 401)
        assert resp.json()["error"] == "invalid_client"

    async def test_client_without_the_grant_is_unauthorized_client(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=("portal", idp.secret("portal")),
        )
        assert resp.status_code == 400
        assert resp.json()["error"] == "unauthorized_client"

    async def test_unsupported_grant_type(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "password"},
            auth=("northwind-backend", idp.secret("northwind-backend")),
        )
        assert resp.status_code == 400
        assert resp.json()["error"] == "unsupported_grant_type"

    async def test_secret_of_one_ecosystem_does_not_open_another(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.url}/eco/other/token",
            data={"grant_type": "client_credentials"},
            auth=("northwind-backend", idp.secret("northwind-backend")),
        )
        assert resp.status_code == 404

    async def test_expired_or_tampered_token_is_refused(
        self, idp: IdP, verifier: TokenVerifier
    ) -> None:
        token = (await idp.cc("northwind-backend", "profile:read")).json()["access_token"]
        head, body, sig = token.split(".")
        with pytest.raises(MeshError):
            await verifier.verify(f"{head}.{body}.{sig[:-6]}AAAAAA")


class TestAuditGroupCommit:
    async def test_every_concurrent_token_has_its_audit_event_in_the_outbox(self, idp: IdP) -> None:
        import asyncio

        from tests.support.identity import outbox_events

        responses = await asyncio.gather(
            *(idp.cc("fabrikam-backend", "directory:read") for _ in range(40))
        )
        jtis = {
            jwt.decode(r.json()["access_token"], options={"verify_signature": False})["jti"]
            for r in responses
        }
        assert len(jtis) == 40
        events = await outbox_events(idp.settings.database_url)
        details = [e["data"].get("details") or {} for e in events]
        audited = [d["jti"] for d in details if d.get("jti")]  # events of issued tokens
        # each token was answered only after its event was committed, and has one event
        assert jtis <= set(audited) and len(audited) == len(set(audited))
