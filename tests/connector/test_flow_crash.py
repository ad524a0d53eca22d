"""kill -9 the connector process in the middle of a flow: it resumes and finishes once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from nats.aio.client import Client

from tests.connector.backends import BackendState, backend_app
from tests.connector.conftest import Mesh
from tests.connector.test_flows import PARTNERS, setup_chain, start, wait_flow
from tests.support.infra import serve_app
from tests.support.tokens import TestKeys

ROOT = Path(__file__).resolve().parents[2]


def issuer_app(test_keys: TestKeys) -> FastAPI:
    """Publishes the test signing key as an OIDC issuer would (discovery + JWKS)."""
    app = FastAPI()

    @app.get("/eco/{eco}/.well-known/openid-configuration")
    async def discovery(eco: str) -> dict[str, Any]:
        return {"issuer": f"{app.state.base}/eco/{eco}", "jwks_uri": f"{app.state.base}/jwks"}

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [test_keys.public_jwk]}

    return app


@pytest.fixture
async def issuer(test_keys: TestKeys) -> AsyncIterator[str]:
    """A loopback issuer the connector process fetches the test JWKS from."""
    app = issuer_app(test_keys)
    async with serve_app(app) as url:
        app.state.base = url
        yield url


@contextmanager
def connector_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.connector"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)


async def wait_ready(nc: Client) -> None:
    for _ in range(200):
        try:
            await nc.request("$SRV.PING.connector", b"", timeout=0.5)
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError("the connector process did not come up")


class TestCrash:
    async def test_kill_9_mid_flow_resumes_and_applies_each_step_once(
        self, mesh: Mesh, nc: Client, nats_url: str, database_url: str, issuer: str, tmp_path: Path
    ) -> None:
        claims: dict[str, Any] = {"iss": f"{issuer}/eco/acme"}
        env = {
            **os.environ,
            "PM_CONNECTOR_NATS_URL": nats_url,
            "PM_CONNECTOR_DATABASE_URL": database_url,
            "PM_CONNECTOR_IDENTITY_URL": issuer,
            "PM_CONNECTOR_ENVIRONMENT": "test",
            "PM_CONNECTOR_FLOW_LEASE_S": "1.5",
            "PM_CONNECTOR_FLOW_POLL_S": "0.1",
            "PM_CONNECTOR_LOG_LEVEL": "WARNING",
            "PM_VAR_DIR": str(tmp_path),
        }
        states = {p: BackendState() for p in PARTNERS}
        states["contoso"].gated = True  # /reserve holds until the test opens the gate
        log = tmp_path / "connector.log"
        async with (
            serve_app(backend_app(states["fabrikam"])) as f,
            serve_app(backend_app(states["contoso"])) as k,
            serve_app(backend_app(states["northwind"])) as n,
        ):
            with connector_process(env, log) as first:
                await wait_ready(nc)
                await setup_chain(mesh, {"fabrikam": f, "contoso": k, "northwind": n}, **claims)
                flow = await start(mesh, **claims)
                await asyncio.wait_for(states["contoso"].reached_gate.wait(), 30)
                first.kill()  # SIGKILL while step 2 is in flight
                first.wait(10)
            states["contoso"].gate.set()  # the back-end applies the reservation anyway
            with connector_process(env, log):
                await wait_ready(nc)
                done = await wait_flow(mesh, flow.id, **claims)
        assert done.status == "completed", log.read_text()[-3000:]
        assert [s.effects for s in states.values()] == [
            {"order": 1},
            {"reservation": 1},
            {"shipment": 1},
        ]
        assert states["fabrikam"].hits["/orders"] == 1  # step 1's state was persisted
        assert states["contoso"].hits["/reserve"] == 2  # step 2 was re-sent after the crash…
        keys = [h.get("idempotency-key") for h in states["contoso"].seen_headers]
        assert keys == [f"flow:{flow.id}:1"] * 2  # …with the same key, so it applied once
