"""Refresh rotation and reuse detection, introspection (RFC 7662), revocation (RFC 7009)."""

from __future__ import annotations

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.identity.conftest import IdP
from tests.support.identity import refresh_grant


async def _refresh(idp: IdP, refresh_token: str, **extra: str):  # type: ignore[no-untyped-def]
    return await refresh_grant(idp.http, idp.issuer, refresh_token, **extra)


class TestRefresh:
    async def test_rotation_issues_a_new_refresh_token(self, idp: IdP) -> None:
        first = await idp.person_tokens("noah")
        resp = await _refresh(idp, first["refresh_token"])
        assert resp.status_code == 200, resp.text
        second = resp.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        assert (await _refresh(idp, second["refresh_token"])).status_code == 200

    async def test_reuse_revokes_the_whole_family(self, idp: IdP) -> None:
        first = await idp.person_tokens("chloe")
        second = (await _refresh(idp, first["refresh_token"])).json()
        reuse = await _refresh(idp, first["refresh_token"])
        assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
        # the legitimate successor is dead too: the family is revoked
        after = await _refresh(idp, second["refresh_token"])
        assert after.status_code == 400 and after.json()["error"] == "invalid_grant"

    async def test_narrower_scope_allowed_wider_refused(self, idp: IdP) -> None:
        first = await idp.person_tokens("noah", "openid profile:read forum:read")
        narrow = await _refresh(idp, first["refresh_token"], scope="forum:read")
        assert narrow.status_code == 200 and narrow.json()["scope"] == "forum:read"
        wider = await _refresh(idp, narrow.json()["refresh_token"], scope="forum:read admin")
        assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"

    async def test_refresh_token_of_another_client_is_invalid_grant(self, idp: IdP) -> None:
        first = await idp.person_tokens("felix")
        resp = await idp.http.post(
            f"{idp.issuer}/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
            auth=("portal", idp.secret("portal")),
        )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"

    async def test_garbage_refresh_token_is_invalid_grant(self, idp: IdP) -> None:
        resp = await _refresh(idp, "not-a-token")
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"

    async def test_authlib_client_refreshes(self, idp: IdP) -> None:
        tokens = await idp.person_tokens("fatima")
        async with AsyncOAuth2Client(
            client_id="mesh-cli", token=tokens, token_endpoint_auth_method="none"
        ) as client:
            new = await client.refresh_token(
                f"{idp.issuer}/token", refresh_token=tokens["refresh_token"]
            )
        assert new["refresh_token"] != tokens["refresh_token"]


class TestIntrospection:
    async def _introspect(
        self, idp: IdP, token: str, client: str = "northwind-backend", hint: str | None = None
    ) -> httpx.Response:
        data = {"token": token}
        if hint:
            data["token_type_hint"] = hint
        return await idp.http.post(
            f"{idp.issuer}/introspect", data=data, auth=(client, idp.secret(client))
        )

    async def test_active_access_token(self, idp: IdP) -> None:
        token = (await idp.cc("contoso-backend", "directory:read")).json()["access_token"]
        body = (await self._introspect(idp, token)).json()
        assert body["active"] is True and body["client_id"] == "contoso-backend"
        assert body["scope"] == "directory:read" and body["partner"] == "contoso"

    async def test_refresh_token_and_unknown_token(self, idp: IdP) -> None:
        tokens = await idp.person_tokens("noah")
        body = (await self._introspect(idp, tokens["refresh_token"], hint="refresh_token")).json()
        assert body["active"] is True and body["token_type"] == "refresh_token"
        assert (await self._introspect(idp, "nonsense")).json() == {"active": False}

    async def test_needs_client_authentication(self, idp: IdP) -> None:
        resp = await idp.http.post(f"{idp.issuer}/introspect", data={"token": "x"})
        assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"

    async def test_bad_hint_is_unsupported_token_type(self, idp: IdP) -> None:
        resp = await self._introspect(idp, "x", hint="id_token")
        assert resp.json()["error"] == "unsupported_token_type"


class TestRevocation:
    async def test_revoked_access_token_is_inactive(self, idp: IdP) -> None:
        token = (await idp.cc("fabrikam-backend", "directory:read")).json()["access_token"]
        auth = ("fabrikam-backend", idp.secret("fabrikam-backend"))
        resp = await idp.http.post(f"{idp.issuer}/revoke", data={"token": token}, auth=auth)
        assert resp.status_code == 200
        body = (
            await idp.http.post(f"{idp.issuer}/introspect", data={"token": token}, auth=auth)
        ).json()
        assert body == {"active": False}

    async def test_public_client_revokes_its_refresh_token(self, idp: IdP) -> None:
        tokens = await idp.person_tokens("chloe")
        resp = await idp.http.post(
            f"{idp.issuer}/revoke",
            data={
                "token": tokens["refresh_token"],
                "token_type_hint": "refresh_token",
                "client_id": "mesh-cli",
            },
        )
        assert resp.status_code == 200
        assert (await _refresh(idp, tokens["refresh_token"])).json()["error"] == "invalid_grant"

    async def test_another_clients_token_cannot_be_revoked(self, idp: IdP) -> None:
        token = (await idp.cc("contoso-backend", "directory:read")).json()["access_token"]
        resp = await idp.http.post(
            f"{idp.issuer}/revoke",
            data={"token": token},
            auth=("northwind-backend", idp.secret("northwind-backend")),
        )
        assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"

    async def test_unknown_token_is_ok(self, idp: IdP) -> None:
        resp = await idp.http.post(
            f"{idp.issuer}/revoke",
            data={"token": "unknown"},
            auth=("northwind-backend", idp.secret("northwind-backend")),
        )
        assert resp.status_code == 200
