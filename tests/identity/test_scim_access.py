"""Who may provision whom through SCIM, and what deprovisioning takes away.

A directory's token reaches its own partner's people only; no, a revoked, an expired or
another ecosystem's token is 401; an OAuth access token is no SCIM token and a SCIM token
is no OAuth access token (identity's own endpoints and the gateway refuse it). Partner
admins manage their own partner's tokens only. Deactivating someone through SCIM cuts
them off as disabling does: refresh tokens, access tokens and sign-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text

from gateway.app import create_app as create_gateway
from gateway.app import default_verifier
from identity.cli.devclient import LoginFailed, login
from identity.store import models
from mesh.db import Database
from services.profile import handlers as profile_handlers
from services.profile import models as profile_models
from services.profile.settings import ProfileSettings
from tests.gateway.conftest import gateway_settings
from tests.identity.conftest import CLI_REDIRECT, IdP
from tests.identity.scim_support import (
    USER,
    Directory,
    admin_call,
    assert_scim_error,
    bearer,
    issue_directory,
    unique,
)
from tests.support.identity import outbox_events, refresh_grant
from tests.support.infra import serve_app
from tests.support.services import run_service

PASSWORD = "provisioned-password-1"


@pytest.fixture(scope="module")
def idp_overrides() -> dict[str, Any]:
    """acme is the platform ecosystem here, so a second ecosystem can be created."""
    return {"platform_ecosystem": "acme"}


@pytest.fixture(scope="module")
async def tokens(idp: IdP) -> dict[str, str]:
    names = ("olivia", "nadia", "carlos", "noah")
    return {n: (await idp.person_tokens(n))["access_token"] for n in names}


@pytest.fixture(scope="module")
async def northwind(idp: IdP, tokens: dict[str, str]) -> Directory:
    return await issue_directory(idp, tokens["nadia"], "northwind")


@pytest.fixture(scope="module")
async def contoso(idp: IdP, tokens: dict[str, str]) -> Directory:
    return await issue_directory(idp, tokens["carlos"], "contoso")


async def _sign_in(idp: IdP, username: str, eco: str = "acme") -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as browser:
        return await login(
            browser,
            f"{idp.url}/eco/{eco}",
            "mesh-cli",
            username,
            PASSWORD,
            CLI_REDIRECT,
            "openid profile profile:read",
        )


async def _userinfo(idp: IdP, access_token: str) -> int:
    resp = await idp.http.get(f"{idp.issuer}/userinfo", headers=bearer(access_token))
    return resp.status_code


class TestDeprovisioning:
    async def test_deactivation_cuts_the_person_off_as_disabling_does(
        self, idp: IdP, northwind: Directory, idp_database: str
    ) -> None:
        user = await northwind.create_user(password=PASSWORD)
        signed_in = await _sign_in(idp, user["userName"])
        assert await _userinfo(idp, signed_in["access_token"]) == 200
        off = await northwind.patch(
            "Users", user["id"], {"op": "Replace", "path": "active", "value": "False"}
        )
        assert off.status_code == 200 and off.json()["active"] is False
        assert await _userinfo(idp, signed_in["access_token"]) == 401
        refreshed = await refresh_grant(idp.http, idp.issuer, signed_in["refresh_token"])
        assert refreshed.json()["error"] == "invalid_grant"
        with pytest.raises(LoginFailed, match="login refused"):
            await _sign_in(idp, user["userName"])
        revoked = [
            e["data"]
            for e in await outbox_events(idp_database)
            if e["type"].endswith("identity.token_revoked")
            and e["data"]["reason"] == "person_disabled"
            and any(s["sub"] == user["id"] for s in e["data"]["subjects"])
        ]
        assert revoked, "no token_revoked event with the person's cut-off"
        jti = jwt.decode(signed_in["access_token"], options={"verify_signature": False})["jti"]
        assert jti in {t["jti"] for e in revoked for t in e["tokens"]}
        on = await northwind.patch(
            "Users", user["id"], {"op": "replace", "value": {"active": True}}
        )
        assert on.json()["active"] is True
        assert await _userinfo(idp, (await _sign_in(idp, user["userName"]))["access_token"]) == 200

    async def test_delete_cuts_off_too(self, idp: IdP, northwind: Directory) -> None:
        user = await northwind.create_user(password=PASSWORD)
        signed_in = await _sign_in(idp, user["userName"])
        assert (await northwind.call("DELETE", f"/Users/{user['id']}")).status_code == 204
        assert await _userinfo(idp, signed_in["access_token"]) == 401
        refreshed = await refresh_grant(idp.http, idp.issuer, signed_in["refresh_token"])
        assert refreshed.json()["error"] == "invalid_grant"

    async def test_the_admin_api_sees_what_the_directory_did(
        self, idp: IdP, northwind: Directory, tokens: dict[str, str]
    ) -> None:
        user = await northwind.create_user(active=False)
        people = (await admin_call(idp, tokens["nadia"], "GET", "/people")).json()
        mine = next(p for p in people if p["id"] == user["id"])
        assert mine["partner"] == "northwind" and mine["active"] is False


class TestTokens:
    async def test_no_garbage_or_oauth_token_is_401(
        self, idp: IdP, northwind: Directory, tokens: dict[str, str]
    ) -> None:
        bare = await idp.http.get(f"{northwind.base}/Users")
        assert_scim_error(bare, 401)
        assert bare.headers["www-authenticate"].startswith("Bearer realm=")
        for token in ("garbage", tokens["nadia"], tokens["olivia"]):
            assert_scim_error(await northwind.call("GET", "/Users", token=token), 401)

    async def test_a_scim_token_is_no_oauth_access_token(
        self, idp: IdP, northwind: Directory
    ) -> None:
        people = await admin_call(idp, northwind.token, "GET", "/people")
        assert people.status_code == 401
        assert await _userinfo(idp, northwind.token) == 401
        intro = await idp.http.post(
            f"{idp.issuer}/introspect",
            data={"token": northwind.token},
            auth=("northwind-backend", idp.secret("northwind-backend")),
        )
        assert intro.json() == {"active": False}

    async def test_revoked_and_expired_tokens_are_401(
        self, idp: IdP, tokens: dict[str, str], idp_database: str
    ) -> None:
        directory = await issue_directory(idp, tokens["nadia"], "northwind")
        assert (await directory.call("GET", "/Users")).status_code == 200
        path = f"/partners/northwind/scim-tokens/{directory.token_id}"
        assert (await admin_call(idp, tokens["nadia"], "DELETE", path)).status_code == 204
        assert_scim_error(await directory.call("GET", "/Users"), 401)
        listed = await admin_call(idp, tokens["nadia"], "GET", "/partners/northwind/scim-tokens")
        row = next(t for t in listed.json() if t["id"] == directory.token_id)
        assert row["revoked"] is True and row["last_used_at"]
        assert "token" not in row and "token_hash" not in row
        expiring = await issue_directory(idp, tokens["nadia"], "northwind")
        db = Database(idp_database, models.metadata)
        try:
            async with db.transaction() as s:
                past = datetime.now(UTC) - timedelta(seconds=1)
                await s.execute(
                    text("UPDATE id_scim_tokens SET expires_at = :past WHERE id = :id"),
                    {"past": past, "id": expiring.token_id},
                )
        finally:
            await db.dispose()
        assert_scim_error(await expiring.call("GET", "/Users"), 401)

    async def test_another_ecosystems_token_is_401(
        self, idp: IdP, tokens: dict[str, str], northwind: Directory
    ) -> None:
        body = {
            "slug": "initech",
            "name": "Initech",
            "partner": {"slug": "initech-hq", "name": "Initech HQ"},
            "operator": {"username": "ira", "name": "Ira", "password": PASSWORD},
        }
        made = await idp.http.post(
            f"{idp.url}/admin/ecosystems", json=body, headers=bearer(tokens["olivia"])
        )
        assert made.status_code == 201, made.text
        async with httpx.AsyncClient(timeout=10) as browser:
            ira = await login(
                browser,
                f"{idp.url}/eco/initech",
                "mesh-cli",
                "ira",
                PASSWORD,
                CLI_REDIRECT,
                "openid admin",
            )
        issued = await idp.http.post(
            f"{idp.url}/eco/initech/admin/partners/initech-hq/scim-tokens",
            json={"name": "initech directory"},
            headers=bearer(ira["access_token"]),
        )
        assert issued.status_code == 201, issued.text
        foreign = issued.json()["token"]
        own = await idp.http.get(f"{idp.url}/eco/initech/scim/v2/Users", headers=bearer(foreign))
        assert own.status_code == 200  # a good token, at home
        assert_scim_error(await northwind.call("GET", "/Users", token=foreign), 401)


class TestAdminRoutes:
    async def test_only_the_partners_admins_and_operators_manage_its_tokens(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        path = "/partners/northwind/scim-tokens"
        for who in ("carlos", "noah"):
            assert (
                await admin_call(idp, tokens[who], "POST", path, {"name": "x"})
            ).status_code == 403
            assert (await admin_call(idp, tokens[who], "GET", path)).status_code == 403
        assert (await idp.http.get(f"{idp.issuer}/admin{path}")).status_code == 401
        by_operator = await admin_call(idp, tokens["olivia"], "POST", path, {"name": "op"})
        assert by_operator.status_code == 201
        token_id = by_operator.json()["id"]
        refused = await admin_call(idp, tokens["carlos"], "DELETE", f"{path}/{token_id}")
        assert refused.status_code == 403
        wrong_partner = await admin_call(
            idp, tokens["carlos"], "DELETE", f"/partners/contoso/scim-tokens/{token_id}"
        )
        assert wrong_partner.status_code == 404
        assert (
            await admin_call(idp, tokens["olivia"], "DELETE", f"{path}/{token_id}")
        ).status_code == 204


class TestOnlyItsOwnPeople:
    async def test_another_partners_people_are_not_found(
        self, idp: IdP, northwind: Directory, contoso: Directory
    ) -> None:
        theirs = await northwind.create_user()
        uid = theirs["id"]
        assert_scim_error(await contoso.call("GET", f"/Users/{uid}"), 404)
        op = {"op": "replace", "path": "active", "value": False}
        assert_scim_error(await contoso.patch("Users", uid, op), 404)
        put = {"schemas": [USER], "userName": unique("x")}
        assert_scim_error(await contoso.call("PUT", f"/Users/{uid}", put), 404)
        assert_scim_error(await contoso.call("DELETE", f"/Users/{uid}"), 404)
        assert (await contoso.find("Users", f'id eq "{uid}"'))["totalResults"] == 0
        name = theirs["userName"]
        assert (await contoso.find("Users", f'userName eq "{name}"'))["totalResults"] == 0
        listed = await contoso.find("Users", "userName pr", count="200")
        seen = {r["userName"] for r in listed["Resources"]}
        assert "chloe" in seen and "carlos" in seen and not seen & {"noah", "nadia", name}
        still = await northwind.call("GET", f"/Users/{uid}")
        assert still.status_code == 200 and still.json()["active"] is True

    async def test_people_with_roles_beyond_a_directory_are_read_only(
        self, idp: IdP, tokens: dict[str, str]
    ) -> None:
        hq = await issue_directory(idp, tokens["olivia"], "acme-hq")
        olivia = (await hq.find("Users", 'userName eq "olivia"'))["Resources"][0]
        op = {"op": "replace", "path": "active", "value": False}
        assert_scim_error(await hq.patch("Users", olivia["id"], op), 403)
        assert_scim_error(await hq.call("DELETE", f"/Users/{olivia['id']}"), 403)
        assert (await hq.call("GET", f"/Users/{olivia['id']}")).json()["active"] is True


class TestAtTheGateway:
    async def test_the_gateway_refuses_a_scim_token_and_accepts_an_oauth_one(
        self,
        idp: IdP,
        northwind: Directory,
        tokens: dict[str, str],
        nats_url: str,
        tmp_path: Path,
    ) -> None:
        settings = gateway_settings(nats_url, identity_url=idp.url)
        async with httpx.AsyncClient(timeout=10) as keys_http:
            verifier = default_verifier(settings, keys_http)
            async with (
                run_service(
                    "profile",
                    ProfileSettings,
                    profile_models.metadata,
                    profile_handlers.register,
                    nats_url=nats_url,
                    database_url=f"sqlite+aiosqlite:///{tmp_path / 'profile.db'}",
                    verifier=verifier,
                    identity_url=idp.url,
                ),
                serve_app(create_gateway(settings)) as url,
                httpx.AsyncClient(base_url=url, timeout=10) as gateway,
            ):
                echo = "/v1/ecosystems/acme/echo"
                ok = await gateway.get(
                    echo, params={"message": "hi"}, headers=bearer(tokens["nadia"])
                )
                assert ok.status_code == 200, ok.text
                assert ok.json()["partner"] == "northwind"
                refused = await gateway.get(
                    echo, params={"message": "hi"}, headers=bearer(northwind.token)
                )
                assert refused.status_code == 401, refused.text
                assert refused.headers["content-type"].startswith("application/problem+json")
