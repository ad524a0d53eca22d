"""Portal test fixtures: a whole mesh started in-process, seeded through the gateway."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from identity.cli import seed
from identity.domain.crypto import Passwords
from identity.settings import IdentitySettings
from tests.portal import content
from tests.portal.mesh import Mesh, start_mesh
from tests.support import infra

DATABASES = ("identity", "profile", "collaboration", "matching", "connector", "portal")


@pytest.fixture(scope="session")
def demo_hashes() -> dict[str, str]:
    """argon2id hashes of the demo password, computed once per test session."""
    s = IdentitySettings()
    pw = Passwords(s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism)
    return seed.hash_demo_passwords(pw)


@pytest.fixture(scope="session", params=infra.database_engines())
async def mesh(
    request: pytest.FixtureRequest,
    nats_url: str,
    postgres_admin_url: str | None,
    tmp_path_factory: pytest.TempPathFactory,
    demo_hashes: dict[str, str],
) -> AsyncIterator[Mesh]:
    """Identity, gateway, profile, collaboration, matching and the portal, seeded with content;
    every database on the engine of the parameter (SQLite files, or fresh PostgreSQL ones).

    It has a NATS server of its own, so its services' durable consumers and the events in
    its stream are never shared with other tests' services.
    """
    workdir = tmp_path_factory.mktemp("portal-mesh")
    async with AsyncExitStack() as stack:
        nats_url = stack.enter_context(infra.local_nats())
        urls = {}
        for name in DATABASES:
            if request.param == "sqlite":
                urls[name] = f"sqlite+aiosqlite:///{workdir / f'{name}.db'}"
            else:
                assert postgres_admin_url is not None
                url, db = await infra.create_pg_database(postgres_admin_url)
                stack.push_async_callback(infra.drop_pg_database, postgres_admin_url, db)
                urls[name] = url
        mesh = await stack.enter_async_context(start_mesh(nats_url, urls, workdir, demo_hashes))
        mesh.seeded = await content.seed(mesh)
        yield mesh


@pytest.fixture(scope="session")
async def demo(mesh: Mesh) -> AsyncIterator[dict[str, Any]]:
    """The demo back-ends of `make run` (contoso, northwind, fabrikam) on loopback, seeded in
    the connector exactly as `make run` seeds them; yields their base URLs by partner."""
    import httpx

    from deploy.demo import connector as demo_connector
    from deploy.demo.backends import Backend, app_for

    assert mesh.workdir is not None
    var = mesh.workdir / "demo-var"
    var.mkdir(exist_ok=True)
    clients = json.loads((mesh.workdir / "demo-identity.json").read_text())["clients"]
    async with AsyncExitStack() as stack:
        urls = {}
        for partner in ("contoso", "northwind", "fabrikam"):
            backend = Backend(partner, var, mesh.gateway_url, mesh.issuer)
            urls[partner] = await stack.enter_async_context(infra.serve_app(app_for(backend)))
        async with httpx.AsyncClient(base_url=mesh.gateway_url, timeout=30) as api:
            await demo_connector.seed(
                api, mesh.tokens, "acme", backends=urls, var=var, clients=clients
            )
        yield urls


@pytest.fixture(scope="session")
async def globex(mesh: Mesh, demo_hashes: dict[str, str]) -> AsyncIterator[Mesh]:
    """A second ecosystem (``globex``) with a portal of its own: the other side of alliances."""
    from tests.portal.allied import allied_portal

    async with allied_portal(mesh, demo_hashes) as other:
        yield other
