"""Revoking an access token at identity (RFC 7009) makes the gateway and every service
refuse it, through identity's ``token_revoked`` events on NATS; a restarted gateway
replays them, and other tokens keep working."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import nats
import pytest

from contracts.errors import ErrorCode
from contracts.v1.system import ECHO
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from identity.cli import seed
from identity.cli.devclient import login
from mesh.client import call
from mesh.errors import MeshError
from mesh.tokens import RemoteJwks, TokenVerifier
from services.profile import handlers, models
from services.profile.settings import ProfileSettings
from tests.support import infra
from tests.support.identity import refresh_grant, serve_idp, start_idp
from tests.support.services import run_service

CLI_REDIRECT = "http://127.0.0.1:8099/callback"


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Poll ``check`` until it holds (the timeout only bounds a failing test)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def until_refused(api: httpx.AsyncClient, token: str) -> None:
    """Until the gateway answers 401 to ``token``."""

    async def refused() -> bool:
        return (await echo(api, token)).status_code == 401

    await until(refused)


class Mesh:
    def __init__(
        self, idp: str, creds: dict[str, Any], http: httpx.AsyncClient, nc: Any, nats_url: str
    ) -> None:
        self.idp, self.creds, self.http, self.nc, self.nats_url = idp, creds, http, nc, nats_url
        self.issuer = f"{idp}/eco/acme"

    def auth(self, client_id: str) -> tuple[str, str]:
        return client_id, self.creds["clients"][client_id]["client_secret"]

    async def client_token(self, client_id: str = "northwind-backend") -> str:
        resp = await self.http.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "mesh:ping"},
            auth=self.auth(client_id),
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    async def person_tokens(self, username: str, scope: str = "mesh:ping") -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as browser:
            return await login(
                browser, self.issuer, "mesh-cli", username, seed.PASSWORD, CLI_REDIRECT, scope
            )

    async def revoke(self, token: str, hint: str = "access_token", public: bool = False) -> None:
        """Revoke as the token's client: a back-end, or the public CLI client."""
        data = {"token": token, "token_type_hint": hint}
        if public:
            resp = await self.http.post(
                f"{self.issuer}/revoke", data={**data, "client_id": "mesh-cli"}
            )
        else:
            resp = await self.http.post(
                f"{self.issuer}/revoke", data=data, auth=self.auth("northwind-backend")
            )
        assert resp.status_code == 200, resp.text

    async def set_active(self, partner: str, username: str, active: bool) -> None:
        """Disable or enable a person through the admin API, as the operator olivia."""
        olivia = (await self.person_tokens("olivia", "admin"))["access_token"]
        admin = {"Authorization": f"Bearer {olivia}"}
        people = await self.http.get(f"{self.issuer}/admin/people?partner={partner}", headers=admin)
        person = next(p["id"] for p in people.json() if p["username"] == username)
        resp = await self.http.patch(
            f"{self.issuer}/admin/people/{person}", json={"active": active}, headers=admin
        )
        assert resp.status_code == 200, resp.text

    async def service_says(self, token: str) -> str:
        """``ok``, or the error code the profile service answers directly over NATS."""
        try:
            await call(self.nc, ECHO, {"eco": "acme"}, token)
        except MeshError as exc:
            return f"{exc.code.value}: {exc.detail}"
        return "ok"

    @contextlib.asynccontextmanager
    async def gateway(self) -> AsyncIterator[httpx.AsyncClient]:
        """A fresh gateway process's app (its own verifier and token cache)."""
        settings = GatewaySettings(
            nats_url=self.nats_url,
            identity_url=self.idp,
            environment="test",
            port=infra.free_port(),
        )
        async with (
            infra.serve_app(create_gateway(settings), settings.port) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as api,
        ):
            yield api


async def echo(api: httpx.AsyncClient, token: str) -> httpx.Response:
    return await api.get("/v1/ecosystems/acme/echo", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
async def mesh(
    nats_url: str, tmp_path_factory: pytest.TempPathFactory, demo_hashes: dict[str, str]
) -> AsyncIterator[Mesh]:
    """identity (uvicorn) + the profile service, verifying tokens against identity's JWKS."""
    work = tmp_path_factory.mktemp("revocation")
    settings, creds, idp_app = await start_idp(
        nats_url, f"sqlite+aiosqlite:///{work / 'identity.db'}", work, demo_hashes
    )
    async with (
        serve_idp(idp_app, settings.port) as idp_url,
        httpx.AsyncClient(timeout=10) as http,
        run_service(
            "profile",
            ProfileSettings,
            models.metadata,
            handlers.register,
            nats_url=nats_url,
            database_url=f"sqlite+aiosqlite:///{work / 'profile.db'}",
            verifier=TokenVerifier(RemoteJwks(http), idp_url, "partnermesh"),
        ),
    ):
        nc = await nats.connect(nats_url)
        try:
            yield Mesh(idp_url, creds, http, nc, nats_url)
        finally:
            await nc.drain()


class TestAccessTokenRevocation:
    async def test_revoked_token_is_refused_by_gateway_and_service_even_after_restart(
        self, mesh: Mesh
    ) -> None:
        revoked, other = await mesh.client_token(), await mesh.client_token("contoso-backend")
        async with mesh.gateway() as api:
            for token in (revoked, other):  # both verified and cached by gateway and service
                assert (await echo(api, token)).status_code == 200
                assert await mesh.service_says(token) == "ok"

            await mesh.revoke(revoked)

            async def gateway_refuses() -> bool:
                return (await echo(api, revoked)).status_code == 401

            await until(gateway_refuses)
            resp = await echo(api, revoked)
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert resp.json()["code"] == "unauthenticated"
            assert "revoked" in resp.json()["detail"]

            async def service_refuses() -> bool:
                return (await mesh.service_says(revoked)) != "ok"

            await until(service_refuses)
            said = await mesh.service_says(revoked)
            assert said.startswith(ErrorCode.UNAUTHENTICATED.value) and "revoked" in said
            assert (await echo(api, other)).status_code == 200
            assert await mesh.service_says(other) == "ok"

        async with mesh.gateway() as restarted:  # replays the revocations while starting
            resp = await echo(restarted, revoked)
            assert resp.status_code == 401 and "revoked" in resp.json()["detail"]
            assert (await echo(restarted, other)).status_code == 200

    async def test_reused_refresh_token_revokes_the_access_tokens_of_its_family(
        self, mesh: Mesh
    ) -> None:
        first = await mesh.person_tokens("noah")
        refreshed = await refresh_grant(mesh.http, mesh.issuer, first["refresh_token"])
        second = refreshed.json()
        bystander = await mesh.person_tokens("chloe")
        async with mesh.gateway() as api:
            for token in (first["access_token"], second["access_token"]):
                assert (await echo(api, token)).status_code == 200
            reuse = await refresh_grant(mesh.http, mesh.issuer, first["refresh_token"])
            assert reuse.json()["error"] == "invalid_grant"

            async def family_refused() -> bool:
                codes = [(await echo(api, t["access_token"])).status_code for t in (first, second)]
                return codes == [401, 401]

            await until(family_refused)
            assert (await echo(api, bystander["access_token"])).status_code == 200

    async def test_revoking_a_refresh_token_revokes_its_access_token(self, mesh: Mesh) -> None:
        tokens = await mesh.person_tokens("felix")
        async with mesh.gateway() as api:
            assert (await echo(api, tokens["access_token"])).status_code == 200
            await mesh.revoke(tokens["refresh_token"], "refresh_token", public=True)
            await until_refused(api, tokens["access_token"])

    async def test_disabling_a_person_revokes_their_access_tokens(self, mesh: Mesh) -> None:
        fatima = await mesh.person_tokens("fatima")
        carlos = await mesh.person_tokens("carlos")
        async with mesh.gateway() as api:
            assert (await echo(api, fatima["access_token"])).status_code == 200
            await mesh.set_active("fabrikam", "fatima", False)
            await until_refused(api, fatima["access_token"])
            assert (await echo(api, carlos["access_token"])).status_code == 200
            assert await mesh.service_says(carlos["access_token"]) == "ok"

    async def test_disabling_a_person_cuts_off_tokens_identity_keeps_no_record_of(
        self, mesh: Mesh
    ) -> None:
        """A token exchanged for a person (no refresh row behind it) stops working too."""
        noah = await mesh.person_tokens("noah")
        resp = await mesh.http.post(
            f"{mesh.issuer}/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": noah["access_token"],
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "scope": "mesh:ping",
            },
            auth=mesh.auth("northwind-backend"),
        )
        assert resp.status_code == 200, resp.text
        exchanged = resp.json()["access_token"]
        assert "refresh_token" not in resp.json()
        async with mesh.gateway() as api:
            assert (await echo(api, exchanged)).status_code == 200
            await mesh.set_active("northwind", "noah", False)
            try:
                await until_refused(api, exchanged)
                assert (await mesh.service_says(exchanged)).startswith("unauthenticated")
                assert (await echo(api, await mesh.client_token())).status_code == 200
            finally:
                await mesh.set_active("northwind", "noah", True)

    async def test_revocation_is_idempotent_and_an_unknown_token_changes_nothing(
        self, mesh: Mesh
    ) -> None:
        token = await mesh.client_token()
        await mesh.revoke(token)
        await mesh.revoke(token)  # RFC 7009: still 200
        await mesh.revoke("not-a-token")
        fresh = await mesh.client_token()
        async with mesh.gateway() as api:
            assert (await echo(api, token)).status_code == 401
            assert (await echo(api, fresh)).status_code == 200
