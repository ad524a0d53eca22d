"""A whole mesh for portal tests, in the test's event loop: real identity (seeded with the demo
ecosystem), the gateway, the profile, collaboration and matching services on real NATS, and
the portal itself, each on a free loopback port."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from contracts.claims import ALL_SCOPES, DEFAULT_AUDIENCE
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from identity.cli import commands, seed
from identity.cli.devclient import login
from identity.domain import directory
from identity.http.app import create_app as create_identity
from identity.settings import IdentitySettings
from mesh.runtime import ServiceRuntime
from mesh.tokens import RemoteJwks, TokenVerifier
from portal.app import create_app as create_portal
from portal.settings import PortalSettings
from services.collaboration import handlers as collab_handlers
from services.collaboration import models as collab_models
from services.collaboration.settings import CollaborationSettings
from services.connector import handlers as connector_handlers
from services.connector import models as connector_models
from services.connector.settings import ConnectorSettings
from services.matching import handlers as matching_handlers
from services.matching import models as matching_models
from services.matching.settings import MatchingSettings
from services.profile import handlers as profile_handlers
from services.profile import models as profile_models
from services.profile.settings import ProfileSettings
from tests.support import infra
from tests.support.identity import serve_idp
from tests.support.services import run_service

ECO = "acme"
CLIENT = "portal-test"
CLI_REDIRECT = "http://127.0.0.1:8099/callback"
ALL = "openid profile " + " ".join(sorted(ALL_SCOPES))


def _registers(register: Callable[[ServiceRuntime], object]) -> Callable[[ServiceRuntime], None]:
    """``register`` as :func:`run_service` takes it: what it returns (the service) is unused."""

    def run(rt: ServiceRuntime) -> None:
        register(rt)

    return run


SERVICES = (
    ("profile", ProfileSettings, profile_models.metadata, _registers(profile_handlers.register)),
    (
        "collaboration",
        CollaborationSettings,
        collab_models.metadata,
        _registers(collab_handlers.register),
    ),
    (
        "matching",
        MatchingSettings,
        matching_models.metadata,
        _registers(matching_handlers.register),
    ),
    (
        "connector",
        ConnectorSettings,
        connector_models.metadata,
        _registers(connector_handlers.register),
    ),
)
# Test back-ends live on loopback, which the connector refuses unless allowed.
EXTRA = {"connector": {"egress_allow": ["127.0.0.0/8"]}}


@dataclass
class Mesh:
    identity_url: str
    gateway_url: str
    portal_url: str
    portal_app: Any
    tokens: dict[str, str] = field(default_factory=dict)
    subs: dict[str, str] = field(default_factory=dict)
    seeded: dict[str, Any] = field(default_factory=dict)
    workdir: Path | None = None
    nats_url: str = ""
    database_urls: dict[str, str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return f"{self.identity_url}/eco/{ECO}"

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=f"{self.gateway_url}/v1/ecosystems/{ECO}", timeout=10)

    def bearer(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[username]}"}


def _portal_client(portal_url: str) -> Any:
    """A confidential client like the demo ``portal``, redirecting to the test portal's port."""
    spec = dict(seed.CLIENTS["portal"])
    spec.update(
        redirect_uris=[f"{portal_url}/auth/callback"], post_logout_redirect_uris=[f"{portal_url}/"]
    )

    def work(tx: Any) -> str:
        _row, secret = directory.create_client(tx, ECO, CLIENT, actor="test", **spec)
        return str(secret)

    return work


async def _identity(
    stack: contextlib.AsyncExitStack,
    nats_url: str,
    database_url: str,
    workdir: Path,
    hashes: dict[str, str],
    portal_url: str,
) -> str:
    port = infra.free_port()
    settings = IdentitySettings(
        public_url=f"http://127.0.0.1:{port}",
        port=port,
        database_url=database_url,
        nats_url=nats_url,
        relay_poll_interval=0.1,
        environment="test",
    )
    await commands.seed_demo(settings, workdir / "demo-identity.json", hashes)
    secret = await commands._with_db(settings, _portal_client(portal_url))
    creds = {"clients": {CLIENT: {"client_id": CLIENT, "client_secret": secret}}}
    (workdir / "portal-client.json").write_text(json.dumps(creds))
    return await stack.enter_async_context(serve_idp(create_identity(settings), port))


@contextlib.asynccontextmanager
async def start_mesh(
    nats_url: str,
    database_urls: dict[str, str],
    workdir: Path,
    hashes: dict[str, str],
    **portal: Any,
) -> AsyncIterator[Mesh]:
    portal_port = infra.free_port()
    portal_url = f"http://127.0.0.1:{portal_port}"
    async with contextlib.AsyncExitStack() as stack:
        identity_url = await _identity(
            stack, nats_url, database_urls["identity"], workdir, hashes, portal_url
        )
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        verifier = TokenVerifier(RemoteJwks(http), identity_url, DEFAULT_AUDIENCE)
        for name, settings_cls, metadata, register in SERVICES:
            extra: dict[str, Any] = dict(EXTRA.get(name, {}))
            if name == "collaboration":  # the VAPID key of this mesh, made on first start
                extra["vapid_key_file"] = str(workdir / "vapid-private.pem")
                extra["push_egress_allow"] = ["127.0.0.0/8"]  # the tests' push receivers
            await stack.enter_async_context(
                run_service(
                    name,
                    settings_cls,
                    metadata,
                    register,
                    nats_url=nats_url,
                    database_url=database_urls[name],
                    verifier=verifier,
                    identity_url=identity_url,
                    **extra,
                )
            )
        gw_settings = GatewaySettings(
            nats_url=nats_url,
            identity_url=identity_url,
            environment="test",
            rate_limits_enabled=False,
            access_log=False,
            request_timeout=5.0,
        )
        gateway_url = await stack.enter_async_context(infra.serve_app(create_gateway(gw_settings)))
        settings = PortalSettings(
            port=portal_port,
            public_url=portal_url,
            gateway_url=gateway_url,
            identity_url=identity_url,
            client_id=CLIENT,
            environment="test",
            credentials_file=str(workdir / "portal-client.json"),
            database_url=database_urls["portal"],
            **portal,
        )
        app = create_portal(settings)
        await stack.enter_async_context(infra.serve_app(app, portal_port))
        mesh = Mesh(
            identity_url,
            gateway_url,
            portal_url,
            app,
            workdir=workdir,
            nats_url=nats_url,
            database_urls=dict(database_urls),
        )
        await _people_tokens(mesh)
        yield mesh


async def _people_tokens(mesh: Mesh) -> None:
    """Real access tokens of every demo person (through the real login pages)."""
    import jwt

    for username in seed.PEOPLE:
        async with httpx.AsyncClient(timeout=10) as browser:
            result = await login(
                browser, mesh.issuer, "mesh-cli", username, seed.PASSWORD, CLI_REDIRECT, ALL
            )
        mesh.tokens[username] = result["access_token"]
        mesh.subs[username] = jwt.decode(
            result["access_token"], options={"verify_signature": False}
        )["sub"]
